/**
 * `moescope image-plan --width W --height H [--max-tiles N] [--tile S]`: prints the tile plan of an
 * image of that size as JSON {rows, cols, resized_height, resized_width, tiles, thumbnail,
 * prompt_tokens} (plus the canvas), without reading any image. With `--image FILE` the size is read
 * from the file's header instead.
 */
import { parseArgs, OptionSpec } from "../args";
import { imageInfo } from "./decode";
import { planImage } from "./plan";

const IMAGE_PLAN: OptionSpec = {
  width: { type: "number", help: "image width in pixels" },
  height: { type: "number", help: "image height in pixels" },
  image: { type: "string", help: "read width and height from this image file instead" },
  "max-tiles": { type: "number", help: "most tiles per image (default 16)" },
  tile: { type: "number", help: "tile side in pixels (default 336)" },
};

async function imagePlan(args: string[]): Promise<number> {
  const o = parseArgs("image-plan", args, IMAGE_PLAN);
  let width = o.width as number | undefined, height = o.height as number | undefined;
  if (typeof o.image === "string") ({ width, height } = await imageInfo(o.image));
  if (width === undefined || height === undefined) throw new Error("image-plan: give --width W --height H (or --image FILE)");
  const p = planImage(height, width, { maxTiles: o["max-tiles"] as number | undefined, tile: o.tile as number | undefined });
  const out = {
    rows: p.rows, cols: p.cols, resized_height: p.resizedHeight, resized_width: p.resizedWidth, tiles: p.tiles, thumbnail: p.thumbnail,
    prompt_tokens: p.promptTokens, canvas_height: p.canvasHeight, canvas_width: p.canvasWidth, tokens_per_tile: p.tokensPerTile,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
  return 0;
}

export async function main(command: string, args: string[]): Promise<number> {
  if (command === "image-plan") return imagePlan(args);
  throw new Error(`unknown command ${command}`);
}
