/**
 * The tile plan of one image (spec §3.1 steps 1-4, §3.5-3.6): which canvas of r×c tiles an H×W image
 * is fitted into, the size it is resized to (never enlarged beyond itself, aspect kept), whether a
 * global thumbnail follows, and how many prompt tokens the image block takes. Pure arithmetic that
 * follows the HF/Meta reference (`find_supported_resolutions`, `get_best_fit`,
 * `get_max_res_without_distortion`) including its float32 scale comparisons and tie rules.
 */

export interface ImagePlanOptions {
  /** Most tiles per image (HF `max_patches`, default 16). */
  maxTiles?: number;
  /** Tile side in pixels (default 336). */
  tile?: number;
  /** ViT patch side (default 14) and pixel-shuffle factor (default 2): tokens per tile = (tile/patch/factor)². */
  patch?: number;
  shuffleFactor?: number;
}

export interface ImagePlan {
  /** Original size. */
  height: number;
  width: number;
  /** Tile grid: rows = height tiles, cols = width tiles. */
  rows: number;
  cols: number;
  canvasHeight: number;
  canvasWidth: number;
  /** Size the image is resized to before bottom/right zero padding to the canvas. */
  resizedHeight: number;
  resizedWidth: number;
  /** Tiles sent to the vision tower: rows·cols local tiles, plus the thumbnail when rows·cols > 1. */
  tiles: number;
  thumbnail: boolean;
  tile: number;
  tokensPerTile: number;
  /** Length of the image block in the prompt (§3.6). */
  promptTokens: number;
}

function check(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw Object.assign(new Error(`image plan: ${name} must be an integer >= ${min}, got ${v}`), { code: "INVALID_PARAMETER" });
}

/** Candidate canvases (rows, cols) in the reference order: tile counts n = max..1, factors ascending, grouped by aspect ratio in first-seen order. */
export function candidateGrids(maxTiles: number): Array<[number, number]> {
  const groups = new Map<number, Array<[number, number]>>();
  for (let n = maxTiles; n >= 1; n--)
    for (let r = 1; r <= n; r++) {
      if (n % r !== 0) continue;
      const key = r / (n / r);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push([r, n / r]);
    }
  return [...groups.values()].flat();
}

export function planImage(height: number, width: number, opts: ImagePlanOptions = {}): ImagePlan {
  const maxTiles = opts.maxTiles ?? 16, S = opts.tile ?? 336, patch = opts.patch ?? 14, factor = opts.shuffleFactor ?? 2;
  check("height", height, 1);
  check("width", width, 1);
  check("maxTiles", maxTiles, 1);
  check("tile", S, 1);
  if (S % (patch * factor) !== 0) throw Object.assign(new Error(`image plan: the tile side ${S} must be a multiple of ${patch * factor} (patch ${patch} × pixel shuffle ${factor})`), { code: "INVALID_PARAMETER" });

  // get_best_fit: scales are float32 (torch divides integer tensors in the default dtype).
  const grids = candidateGrids(maxTiles);
  const scales = grids.map(([r, c]) => Math.min(Math.fround((r * S) / height), Math.fround((c * S) / width)));
  const up = scales.filter((s) => s >= 1);
  const chosen = up.length ? Math.min(...up) : Math.max(...scales.filter((s) => s < 1));
  let best = -1;
  for (let i = 0; i < grids.length; i++) {
    if (scales[i] !== chosen) continue;
    if (best < 0 || grids[i][0] * grids[i][1] < grids[best][0] * grids[best][1]) best = i; // smallest area, first on ties
  }
  const [rows, cols] = grids[best];
  const canvasHeight = rows * S, canvasWidth = cols * S;

  // No upscaling beyond the image's own size (unless a side is below one tile).
  const tH = Math.min(Math.max(height, S), canvasHeight);
  const tW = Math.min(Math.max(width, S), canvasWidth);
  // get_max_res_without_distortion (Python floats).
  const sw = tW / width, sh = tH / height;
  let resizedHeight: number, resizedWidth: number;
  if (sw < sh) {
    resizedWidth = tW;
    resizedHeight = Math.min(Math.floor(height * sw), tH);
  } else {
    resizedHeight = tH;
    resizedWidth = Math.min(Math.floor(width * sh), tW);
  }
  resizedHeight = Math.max(1, resizedHeight);
  resizedWidth = Math.max(1, resizedWidth);

  const n = rows * cols;
  const tokensPerTile = (S / patch / factor) ** 2;
  const promptTokens = n === 1 ? 3 + tokensPerTile : 3 + tokensPerTile + rows * (tokensPerTile * cols + cols);
  return {
    height, width, rows, cols, canvasHeight, canvasWidth, resizedHeight, resizedWidth,
    tiles: n > 1 ? n + 1 : 1, thumbnail: n > 1, tile: S, tokensPerTile, promptTokens,
  };
}

/**
 * The plan of pixel values given directly (`--pixel-values F --grid RxC`): an r×c grid, plus the
 * thumbnail when r·c > 1. The original size is unknown, so it is taken as the canvas (no resize).
 */
export function planFromGrid(rows: number, cols: number, opts: ImagePlanOptions = {}): ImagePlan {
  const S = opts.tile ?? 336, patch = opts.patch ?? 14, factor = opts.shuffleFactor ?? 2;
  check("grid rows", rows, 1);
  check("grid cols", cols, 1);
  const n = rows * cols;
  const tokensPerTile = (S / patch / factor) ** 2;
  return {
    height: rows * S, width: cols * S, rows, cols, canvasHeight: rows * S, canvasWidth: cols * S, resizedHeight: rows * S, resizedWidth: cols * S,
    tiles: n > 1 ? n + 1 : 1, thumbnail: n > 1, tile: S, tokensPerTile,
    promptTokens: n === 1 ? 3 + tokensPerTile : 3 + tokensPerTile + rows * (tokensPerTile * cols + cols),
  };
}

/** "2x3" / "2×3" -> [2, 3]. */
export function parseGrid(s: string): [number, number] {
  const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(s);
  if (!m) throw Object.assign(new Error(`grid: expected RxC (rows x columns, e.g. 1x2), got "${s}"`), { code: "INVALID_PARAMETER" });
  return [Number(m[1]), Number(m[2])];
}
