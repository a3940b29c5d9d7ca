/**
 * Geometry of image tokens (the grounding map's coordinate system): every image feature row ↔ its
 * tile, its 2×2 block of ViT patches (pixel shuffle, spec §3.3: token Y·12+X merges patches
 * (2Y+dy, 2X+dx)), and the rectangle of the ORIGINAL image it saw, undoing the resize and the
 * bottom/right padding of §3.1. Thumbnail tokens map to the whole image stretched to one tile.
 * Tokens that saw only padding have no rectangle (imageRect = null).
 */
import type { ImagePlan } from "./plan";

export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface ImageTokenGeometry {
  /** Index among this image's feature rows (tiles row-major, thumbnail last). */
  token: number;
  tile: number;
  thumbnail: boolean;
  /** Tile position in the grid (-1 for the thumbnail). */
  tileRow: number;
  tileCol: number;
  /** Merged-token coordinates inside the tile (0..11) and the ViT patches it merges. */
  blockRow: number;
  blockCol: number;
  patches: Array<[number, number]>;
  /** Pixels of the tile (0..S). */
  tileRect: Rect;
  /** Pixels of the padded canvas (local tiles only). */
  canvasRect: Rect | null;
  /** Pixels of the original image (fractional), clipped to it; null when the block is all padding. */
  imageRect: Rect | null;
  /** Share of the block's area that is padding (0 for thumbnail tokens). */
  padding: number;
}

export function imageTokenGeometry(plan: ImagePlan, patch = 14, shuffleFactor = 2): ImageTokenGeometry[] {
  const S = plan.tile, block = patch * shuffleFactor, g = S / block;
  const out: ImageTokenGeometry[] = [];
  const sy = plan.height / plan.resizedHeight, sx = plan.width / plan.resizedWidth;
  for (let tile = 0; tile < plan.tiles; tile++) {
    const thumbnail = plan.thumbnail && tile === plan.tiles - 1;
    const tileRow = thumbnail ? -1 : Math.floor(tile / plan.cols), tileCol = thumbnail ? -1 : tile % plan.cols;
    for (let j = 0; j < g * g; j++) {
      const blockRow = Math.floor(j / g), blockCol = j % g;
      const tileRect = { x0: blockCol * block, y0: blockRow * block, x1: (blockCol + 1) * block, y1: (blockRow + 1) * block };
      const patches: Array<[number, number]> = [];
      for (let dy = 0; dy < shuffleFactor; dy++) for (let dx = 0; dx < shuffleFactor; dx++) patches.push([blockRow * shuffleFactor + dy, blockCol * shuffleFactor + dx]);
      let canvasRect: Rect | null = null, imageRect: Rect | null = null, padding = 0;
      if (thumbnail) {
        imageRect = { x0: (tileRect.x0 * plan.width) / S, y0: (tileRect.y0 * plan.height) / S, x1: (tileRect.x1 * plan.width) / S, y1: (tileRect.y1 * plan.height) / S };
      } else {
        canvasRect = { x0: tileCol * S + tileRect.x0, y0: tileRow * S + tileRect.y0, x1: tileCol * S + tileRect.x1, y1: tileRow * S + tileRect.y1 };
        const cx1 = Math.min(canvasRect.x1, plan.resizedWidth), cy1 = Math.min(canvasRect.y1, plan.resizedHeight);
        const inside = Math.max(0, cx1 - canvasRect.x0) * Math.max(0, cy1 - canvasRect.y0);
        padding = 1 - inside / (block * block);
        if (inside > 0) imageRect = { x0: canvasRect.x0 * sx, y0: canvasRect.y0 * sy, x1: cx1 * sx, y1: cy1 * sy };
      }
      out.push({ token: tile * g * g + j, tile, thumbnail, tileRow, tileCol, blockRow, blockCol, patches, tileRect, canvasRect, imageRect, padding });
    }
  }
  return out;
}
