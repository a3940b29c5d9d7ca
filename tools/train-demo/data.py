"""Seeded synthetic scenes for TinyScout: coloured shapes on a 3x3 grid of a 168x168 canvas, with
captions, questions/answers and simple text.

Each sample keeps:
  - `text`: the chat-formatted text, with one `<|image|>` placeholder for the image (or none);
  - `tokens`: ids, the placeholder expanded to `<|image_start|><|image|><|patch|>x36<|image_end|>`
    (spec §3.6, single tile: the 168x168 canvas is exactly one tile, so preprocessing is the identity);
  - `cats`: a category per token (see CATEGORIES);
  - `image`: uint8 [168, 168, 3] or None; `objects`: colour, shape, cell and pixel box [x0, y0, x1, y1);
  - `refs`: (token index of an object word, object index) pairs for the pointing game.
"""
import random

import numpy as np

CANVAS = 168
GRID = 3
CELL = CANVAS // GRID  # 56 px = 2x2 image tokens of 28 px (patch 14, pixel shuffle 2)
TOKENS_PER_IMAGE = 36

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (235, 200, 20)}
SHAPES = ["circle", "square", "triangle"]
POSITIONS = {(0, 0): "top left", (0, 1): "top", (0, 2): "top right", (1, 0): "left", (1, 1): "center",
             (1, 2): "right", (2, 0): "bottom left", (2, 1): "bottom", (2, 2): "bottom right"}
NUMBERS = ["zero", "one", "two", "three", "four"]

CATEGORIES = ["function", "colour", "shape", "position", "image", "special"]
CAT_WORDS = {
    "colour": set(COLOURS) | {"colour", "colours"},
    "shape": set(SHAPES) | {"circles", "squares", "triangles", "shape", "shapes"},
    "position": {"top", "bottom", "left", "right", "center", "middle"},
}


def word_category(piece):
    w = piece.strip().lower()
    for c, ws in CAT_WORDS.items():
        if w in ws:
            return CATEGORIES.index(c)
    return 0


def render(objects, rng):
    img = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS]
    for o in objects:
        x0, y0, x1, y1 = o["box"]
        col = np.array(COLOURS[o["colour"]], np.int16) + rng.randint(-15, 15)
        col = np.clip(col, 0, 255).astype(np.uint8)
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
        if o["shape"] == "square":
            m = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        elif o["shape"] == "circle":
            m = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r
        else:  # triangle pointing up
            t = (yy + 0.5 - y0) / (y1 - y0)
            m = (yy >= y0) & (yy < y1) & (np.abs(xx + 0.5 - cx) <= t * r)
        img[m] = col
    return img


def make_scene(rng):
    n = rng.choice([1, 2, 2, 3, 3])
    cells = rng.sample(sorted(POSITIONS), n)
    kinds = rng.sample([(c, s) for c in COLOURS for s in SHAPES], n)
    objects = []
    for (r, c), (colour, shape) in zip(cells, kinds):
        size = rng.randint(34, 46)
        cx = c * CELL + CELL // 2 + rng.randint(-4, 4)
        cy = r * CELL + CELL // 2 + rng.randint(-4, 4)
        x0, y0 = cx - size // 2, cy - size // 2
        objects.append({"colour": colour, "shape": shape, "cell": (r, c), "pos": POSITIONS[(r, c)],
                        "box": [x0, y0, x0 + size, y0 + size]})
    return objects


def at(pos):
    """English picks the preposition by place: "on the left", "in the center", "at the top left". So the word
    after an object's name already depends on where the object is, which gives the object word itself a reason
    to look at its object (the pointing game measures exactly that)."""
    if pos == "center":
        return "in the center"
    return ("on the " if pos in ("left", "right") else "at the ") + pos


def caption(objects):
    parts = [f"a {o['colour']} {o['shape']} {at(o['pos'])}" for o in objects]
    if len(parts) == 1:
        return parts[0] + "."
    return ", ".join(parts[:-1]) + " and " + parts[-1] + "."


def qa(objects, rng):
    """(question, answer, index of the object the question names or None)."""
    kind = rng.choice(["colour", "where", "where", "what", "count", "exists", "describe", "shape"])
    shapes = [o["shape"] for o in objects]
    if kind == "colour":
        uniq = [o for o in objects if shapes.count(o["shape"]) == 1]
        if uniq:
            o = rng.choice(uniq)
            return f"what colour is the {o['shape']}?", f"the {o['shape']} is {o['colour']}.", objects.index(o)
        kind = "where"
    if kind == "where":
        o = rng.choice(objects)
        return f"where is the {o['colour']} {o['shape']}?", f"{at(o['pos'])}.", objects.index(o)
    if kind == "shape":
        o = rng.choice(objects)
        return f"what shape is {o['colour']}?" if [x["colour"] for x in objects].count(o["colour"]) == 1 else \
            f"what shape is {at(o['pos'])}?", f"a {o['shape']}.", None
    if kind == "what":
        cell = rng.choice(sorted(POSITIONS))
        hit = [o for o in objects if o["cell"] == cell]
        ans = f"a {hit[0]['colour']} {hit[0]['shape']}." if hit else "nothing."
        return f"what is {at(POSITIONS[cell])}?", ans, None
    if kind == "count":
        return "how many shapes are there?", f"{NUMBERS[len(objects)]}.", None
    if kind == "exists":
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        yes = any(o["colour"] == colour and o["shape"] == shape for o in objects)
        return f"is there a {colour} {shape}?", "yes." if yes else "no.", None
    return "describe the image.", caption(objects), None


TEXT_FACTS = [
    "a triangle has three corners.", "a square has four corners.", "a circle has no corners.",
    "a square has four sides.", "a triangle has three sides.", "red, green, blue and yellow are colours.",
    "the sun is yellow.", "grass is green.", "the sky is blue.", "a tomato is red.",
    "one, two, three, four.", "left is the opposite of right.", "top is the opposite of bottom.",
    "the center is in the middle.", "circles, squares and triangles are shapes.",
]


def plain_text(rng):
    parts = rng.sample(TEXT_FACTS, rng.randint(2, 4))
    if rng.random() < 0.5:
        o = rng.choice(make_scene(rng))
        parts.insert(rng.randint(0, len(parts)), f"the {o['colour']} {o['shape']} is {at(o['pos'])}.")
    return " ".join(parts)


def turn(role, content):
    return f"<|header_start|>{role}<|header_end|>\n\n{content}<|eot|>"


def make_sample(rng, p_text=0.15):
    if rng.random() < p_text:
        return {"text": "<|begin_of_text|>" + plain_text(rng) + "<|end_of_text|>", "objects": [], "image": None, "named": []}
    objects = make_scene(rng)
    text, named = "<|begin_of_text|>", []
    for t in range(rng.choice([1, 2, 2, 3])):
        q, a, oi = qa(objects, rng)
        text += turn("user", ("<|image|>" if t == 0 else "") + q) + turn("assistant", a)
        named.append((q, oi))
    return {"text": text, "objects": objects, "image": render(objects, rng), "named": named}


def tokenize_sample(tok, s):
    """Adds tokens, cats and refs (shape-word token index -> object index, for every shape word of a
    question that names an object, and every shape word in an assistant caption)."""
    ids, cats = [], []
    patch = tok.sid("<|patch|>")
    for piece, t in tok.encode_pieces(s["text"]):
        if piece == "<|image|>":
            block = [tok.sid("<|image_start|>"), tok.sid("<|image|>")] + [patch] * TOKENS_PER_IMAGE + [tok.sid("<|image_end|>")]
            ids += block
            cats += [5, 5] + [4] * TOKENS_PER_IMAGE + [5]
        else:
            ids += t
            cats += [5 if piece in tok.special else word_category(piece)] * len(t)
    s["tokens"], s["cats"] = ids, cats
    # Object words: shape words after a "where is the <colour>" / "what colour is the" question, by scanning pieces.
    refs = []
    if s["objects"]:
        pieces = []
        for piece, t in tok.encode_pieces(s["text"]):
            n = TOKENS_PER_IMAGE + 3 if piece == "<|image|>" else len(t)
            pieces.append((piece.strip(), len(pieces), n))
        pos, words = 0, []
        for w, _, n in pieces:
            words.append((w, pos, n))
            pos += n
        for i, (w, p, n) in enumerate(words):
            if w in SHAPES and n == 1 and i >= 1:
                colour = words[i - 1][0] if words[i - 1][0] in COLOURS else None
                match = [k for k, o in enumerate(s["objects"]) if o["shape"] == w and (colour is None or o["colour"] == colour)]
                if len(match) == 1:
                    refs.append((p, match[0]))
    s["refs"] = refs
    return s


def normalise(img):
    """uint8 [H, W, 3] -> float32 [3, H, W], (v/255 - 0.5)/0.5 as the Llama 4 processor (computed in float64,
    rounded to float32 once, as moescope's preprocessing)."""
    return ((img.astype(np.float64) / 255.0 - 0.5) / 0.5).astype(np.float32).transpose(2, 0, 1).copy()


def corpus_for_tokenizer(seed=1234, n=3000):
    rng = random.Random(seed)
    return [make_sample(rng)["text"] for _ in range(n)]
