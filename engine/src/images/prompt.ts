/**
 * Prompt layout of images (spec §3.6-3.7): each `<|image|>` placeholder a chat template writes is
 * replaced by the image's block (HF processor `_prompt_split_image`):
 *   one tile:  <|image_start|> <|image|> <|patch|>×144 <|image_end|>
 *   r×c tiles: <|image_start|> { (<|patch|>×144 [<|tile_x_separator|> between columns])… <|tile_y_separator|> }×r
 *              <|image|> <|patch|>×144 (thumbnail) <|image_end|>
 * The `<|patch|>` positions, in order, receive the image features (tiles row-major, thumbnail last,
 * images in prompt order). Token ids are looked up by name, so tiny test vocabularies work too.
 */
import { ChatMessage, applyChatTemplate } from "../chat";
import { MoescopeError } from "../errors";
import type { ImageInput } from "./decode";
import type { ImagePlan } from "./plan";

export interface ImageTokenIds {
  imageStart: number;
  imageEnd: number;
  image: number;
  patch: number;
  tileX: number;
  tileY: number;
}

export function imageTokenIds(model: { tokenId(text: string): number }): ImageTokenIds {
  const id = (t: string) => {
    let v: number;
    try {
      v = model.tokenId(t);
    } catch {
      v = -1;
    }
    if (!(v >= 0)) throw new MoescopeError(`the tokenizer has no ${t} token: this model cannot take images`, "MODEL_NO_VISION");
    return v;
  };
  return {
    imageStart: id("<|image_start|>"), imageEnd: id("<|image_end|>"), image: id("<|image|>"), patch: id("<|patch|>"),
    tileX: id("<|tile_x_separator|>"), tileY: id("<|tile_y_separator|>"),
  };
}

/** Where each token of an image block came from: -1 for markup, else the tile (thumbnail = last) and its token index. */
export interface BlockToken {
  id: number;
  tile: number;
  index: number;
}

export function imageBlock(plan: ImagePlan, ids: ImageTokenIds): BlockToken[] {
  const out: BlockToken[] = [];
  const mark = (id: number) => out.push({ id, tile: -1, index: -1 });
  const patches = (tile: number) => { for (let i = 0; i < plan.tokensPerTile; i++) out.push({ id: ids.patch, tile, index: i }); };
  mark(ids.imageStart);
  if (plan.rows * plan.cols > 1) {
    for (let r = 0; r < plan.rows; r++) {
      for (let c = 0; c < plan.cols; c++) {
        patches(r * plan.cols + c);
        if (c < plan.cols - 1) mark(ids.tileX);
      }
      mark(ids.tileY);
    }
    mark(ids.image);
    patches(plan.tiles - 1);
  } else {
    mark(ids.image);
    patches(0);
  }
  mark(ids.imageEnd);
  return out;
}

export interface ImageSpan {
  /** Index of the image among the prompt's images. */
  image: number;
  /** [start, end) of its block in the expanded prompt. */
  start: number;
  end: number;
  /** Prompt position of every image feature row of this image (tiles row-major, thumbnail last). */
  patchPositions: Int32Array;
}

export interface ExpandedPrompt {
  tokens: Int32Array;
  images: ImageSpan[];
  /** All <|patch|> positions in order: where embedOverride rows go. */
  patchPositions: Int32Array;
}

/**
 * Replaces the i-th `<|image|>` of `tokens` by the block of plans[i]. A prompt that already holds
 * `<|patch|>` tokens is taken as expanded and refused (it would double the image).
 */
export function expandImagePlaceholders(tokens: ArrayLike<number>, plans: ImagePlan[], ids: ImageTokenIds): ExpandedPrompt {
  const placeholders = Array.from(tokens).filter((t) => t === ids.image).length;
  if (Array.from(tokens).includes(ids.patch))
    throw new MoescopeError("the prompt already holds <|patch|> tokens; give it with <|image|> placeholders only", "IMAGE_PROMPT");
  if (placeholders !== plans.length)
    throw new MoescopeError(`the prompt has ${placeholders} <|image|> placeholder(s) for ${plans.length} image(s)`, "IMAGE_PROMPT");
  const out: number[] = [];
  const images: ImageSpan[] = [];
  const all: number[] = [];
  let k = 0;
  for (const t of Array.from(tokens)) {
    if (t !== ids.image) {
      out.push(t);
      continue;
    }
    const start = out.length;
    const pos: number[] = [];
    for (const b of imageBlock(plans[k], ids)) {
      if (b.id === ids.patch) pos.push(out.length);
      out.push(b.id);
    }
    images.push({ image: k, start, end: out.length, patchPositions: Int32Array.from(pos) });
    all.push(...pos);
    k++;
  }
  return { tokens: Int32Array.from(out), images, patchPositions: Int32Array.from(all) };
}

export type ImageChatContent = string | Array<{ type: "text"; text: string } | { type: "image"; image: ImageInput }>;
export interface ImageChatMessage {
  role: ChatMessage["role"];
  content: ImageChatContent;
}

/**
 * The chat template with images in user turns: returns the prompt text (one `<|image|>` per image,
 * where it stands in the message) and the images in prompt order. Images outside user turns are refused
 * (the reference template only places them there). Like `model.chat`, it leaves `<|begin_of_text|>` to
 * the tokenizer (which adds it when the model's config says so); pass `bos: true` for the literal text.
 */
export function imageChat(messages: ImageChatMessage[], opts: { addGenerationPrompt?: boolean; bos?: boolean } = {}): { text: string; images: ImageInput[] } {
  const images: ImageInput[] = [];
  for (const m of messages)
    if (typeof m.content !== "string")
      for (const c of m.content)
        if (c.type === "image") {
          if (m.role !== "user") throw new MoescopeError(`images go in user turns (found one in a ${m.role} turn)`, "IMAGE_PROMPT");
          images.push(c.image);
        }
  return { text: applyChatTemplate(messages as ChatMessage[], { ...opts, bos: opts.bos ?? false }), images };
}
