"""The two measured claims about TinyScout, on held-out scenes (a seed stream training never used),
computed with model.py on the exported weights (bf16-rounded, the numbers moescope's engine reproduces
to ~3e-7 with the same expert choices: tests/tinyscout).

  (1) Expert specialisation: mutual information (bits) between a token's category (colour / shape /
      position / image / function word) and its chosen expert, per layer, against two baselines:
      categories shuffled across tokens (independence), and categories shuffled across word *types*
      (every word keeps one category, but the grouping of words is random: what MI any partition of the
      vocabulary into groups of the same sizes would get, since routing depends a lot on token identity).
  (2) Grounding: pointing game. For each object word (the shape word of "where is the red square?" and of
      captions), the grounding map is the attention from that token to the 36 image tokens; a hit is when
      the peak token's cell centre (28x28 px cells) lies inside the object's box. Maps: mean over all
      layers and heads, and the best single (layer, head) chosen on a separate validation split.
      Random baseline: the expected hit rate of a uniformly random image token (exact, per object).
  Also: greedy answer accuracy on held-out questions (does the model do the task?).

    OMP_NUM_THREADS=1 /usr/bin/python3 tools/train-demo/analyze.py --ckpt tools/train-demo/out/ckpt.pt
"""
import argparse
import json
import math
import os
import random
import sys
from collections import defaultdict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import CATEGORIES, COLOURS, SHAPES, at, make_scene, make_sample, normalise, render, tokenize_sample, turn  # noqa: E402
from export import load  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402
from train import batch_from  # noqa: E402

CELL_PX = 28
GRID6 = 6


def mi_bits(x, y):
    nx, ny = x.max() + 1, y.max() + 1
    j = np.zeros((nx, ny))
    np.add.at(j, (x, y), 1)
    j /= j.sum()
    px, py = j.sum(1, keepdims=True), j.sum(0, keepdims=True)
    nz = j > 0
    return float((j[nz] * np.log2(j[nz] / (px @ py)[nz])).sum())


def entropy_bits(x):
    p = np.bincount(x) / len(x)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def run_batches(model, tok, samples, want, bs=16):
    outs = []
    for i in range(0, len(samples), bs):
        chunk = samples[i:i + bs]
        ids, px = batch_from(chunk, tok)
        with torch.no_grad():
            _, aux = model(ids, px, want=want)
        outs.append((chunk, ids, aux))
    return outs


def patch_labels(objects):
    """What lies under each of the 36 image tokens (6x6 cells of 28 px, row-major): 0 for background,
    else 1 + colour index * 3 + shape index of the object whose box holds the cell centre."""
    out = []
    for t in range(GRID6 * GRID6):
        lab = 0
        for o in objects:
            if hit(t, o["box"]):
                lab = 1 + list(COLOURS).index(o["colour"]) * len(SHAPES) + SHAPES.index(o["shape"])
        out.append(lab)
    return out


def specialisation(model, tok, samples, reps=20):
    L = len(model.language_model.model.layers)
    patch = tok.sid("<|patch|>")
    cats, toks, experts = [], [], [[] for _ in range(L)]
    content, img_experts = [], [[] for _ in range(L)]
    for chunk, ids, aux in run_batches(model, tok, samples, ()):
        T = ids.shape[1]
        for b, s in enumerate(chunk):
            n_tok = len(s["tokens"])
            keep = [i for i in range(n_tok) if s["cats"][i] != 5]  # drop special/markup tokens
            cats += [s["cats"][i] for i in keep]
            toks += [s["tokens"][i] for i in keep]
            img = [i for i in range(n_tok) if s["tokens"][i] == patch]
            if img:
                content += patch_labels(s["objects"])
            for l in range(L):
                top = aux["routes"][l]["topk"].view(-1, T)[b]
                experts[l] += [int(top[i]) for i in keep]
                img_experts[l] += [int(top[i]) for i in img]
    cats, toks, content = np.array(cats), np.array(toks), np.array(content)
    srng = np.random.RandomState(0)
    res = {"tokens": int(len(cats)), "H_category_bits": entropy_bits(cats), "image_tokens": int(len(content)),
           "H_image_content_bits": entropy_bits(content),
           "category_counts": {CATEGORIES[c]: int((cats == c).sum()) for c in range(5)}, "layers": []}
    text = cats != 4
    types = np.unique(toks[text])
    type_cat = {t: int(cats[toks == t][0]) for t in types}
    for l in range(L):
        e = np.array(experts[l])
        mi = mi_bits(cats, e)
        shuf = [mi_bits(srng.permutation(cats), e) for _ in range(reps)]
        mi_text = mi_bits(cats[text], e[text])
        tshuf = []
        for _ in range(reps):
            perm = dict(zip(types, srng.permutation([type_cat[t] for t in types])))
            tshuf.append(mi_bits(np.array([perm[t] for t in toks[text]]), e[text]))
        dom = {}
        for c in range(5):
            m = cats == c
            if m.any():
                cnt = np.bincount(e[m], minlength=model.language_model.cfg["num_local_experts"])
                dom[CATEGORIES[c]] = {"expert": int(cnt.argmax()), "share": round(float(cnt.max() / m.sum()), 3)}
        # Image tokens are all the same token (<|patch|>): whatever their routing says about the picture
        # under them comes from the vision features, not from token identity.
        ie = np.array(img_experts[l])
        mi_img = mi_bits(content, ie)
        ishuf = [mi_bits(srng.permutation(content), ie) for _ in range(reps)]
        obj = content > 0
        res["layers"].append({
            "layer": l, "mi_bits": round(mi, 4), "shuffled_mi_bits_mean": round(float(np.mean(shuf)), 4),
            "image_content_mi_bits": round(mi_img, 4), "image_content_shuffled_mi_bits_mean": round(float(np.mean(ishuf)), 4),
            "image_content_shuffled_mi_bits_max": round(float(np.max(ishuf)), 4),
            "image_object_vs_background_mi_bits": round(mi_bits(obj.astype(int), ie), 4),
            "shuffled_mi_bits_max": round(float(np.max(shuf)), 4), "H_expert_bits": round(entropy_bits(e), 3),
            "text_only_mi_bits": round(mi_text, 4), "word_type_shuffled_mi_bits_mean": round(float(np.mean(tshuf)), 4),
            "word_type_shuffled_mi_bits_max": round(float(np.max(tshuf)), 4), "dominant_expert": dom})
    return res


def ground_samples(tok, rng, n):
    out = []
    while len(out) < n:
        objs = make_scene(rng)
        o = rng.choice(objs)
        if rng.random() < 0.5:
            q, a = f"where is the {o['colour']} {o['shape']}?", f"{at(o['pos'])}."
        else:
            from data import caption
            q, a = "describe the image.", caption(objs)
        text = "<|begin_of_text|>" + turn("user", "<|image|>" + q) + turn("assistant", a)
        s = tokenize_sample(tok, {"text": text, "objects": objs, "image": render(objs, rng)})
        if s["refs"]:
            out.append(s)
    return out


def hit(token, box):
    Y, X = divmod(token, GRID6)
    cx, cy = (X + 0.5) * CELL_PX, (Y + 0.5) * CELL_PX
    return box[0] <= cx < box[2] and box[1] <= cy < box[3]


def pointing(model, tok, val_samples, test_samples, query="object"):
    """query "object": the map is read at the object word itself (the claim's definition). query "answer": at
    the token whose next-token prediction is the object's position word ("the" in "... at the | top left"),
    i.e. where the model must know the location (a diagnostic, reported separately)."""
    patch = tok.sid("<|patch|>")
    L = len(model.language_model.model.layers)
    H = model.language_model.cfg["num_attention_heads"]

    def maps(samples):
        rows = []  # (maps [L, H, 36], box)
        for chunk, ids, aux in run_batches(model, tok, samples, ("attn",)):
            for b, s in enumerate(chunk):
                img_pos = [i for i, t in enumerate(s["tokens"]) if t == patch]
                for p, k in s["refs"]:
                    if query == "answer":
                        nxt = [i for i in range(p + 1, len(s["cats"])) if s["cats"][i] == 3]
                        if not nxt:
                            continue
                        p = nxt[0] - 1
                    m = torch.stack([aux["probs"][l][b, :, p, img_pos] for l in range(L)]).numpy()
                    rows.append((m, s["objects"][k]["box"], [o["box"] for o in s["objects"]]))
        return rows

    val, test = maps(val_samples), maps(test_samples)
    acc = lambda rows, f: float(np.mean([hit(int(np.argmax(f(m))), box) for m, box, _ in rows]))
    per_head = {(l, h): acc(val, lambda m, l=l, h=h: m[l, h]) for l in range(L) for h in range(H)}
    best = max(per_head, key=per_head.get)
    rand = float(np.mean([np.mean([hit(t, box) for t in range(GRID6 * GRID6)]) for _, box, _ in test]))
    # "finds objects but not which one": a random token among those inside any object of the scene
    anyobj = float(np.mean([np.mean([hit(t, box) for t in range(GRID6 * GRID6) if any(hit(t, b) for b in boxes)])
                            for _, box, boxes in test]))
    return {"val_refs": len(val), "test_refs": len(test),
            "accuracy_mean_all_heads": round(acc(test, lambda m: m.mean((0, 1))), 4),
            "best_head_on_val": {"layer": best[0], "head": best[1], "val_accuracy": round(per_head[best], 4),
                                 "test_accuracy": round(acc(test, lambda m: m[best[0], best[1]]), 4)},
            "per_layer_mean_heads_test": [round(acc(test, lambda m, l=l: m[l].mean(0)), 4) for l in range(L)],
            "random_baseline": round(rand, 4), "random_object_token_baseline": round(anyobj, 4)}


def answer_accuracy(model, tok, rng, n):
    eot = tok.sid("<|eot|>")
    stats = defaultdict(lambda: [0, 0])
    for _ in range(n):
        objs = make_scene(rng)
        img = render(objs, rng)
        from data import qa
        q, a, _ = qa(objs, rng)
        kind = q.split()[0] + " " + q.split()[1]
        text = "<|begin_of_text|>" + turn("user", "<|image|>" + q) + "<|header_start|>assistant<|header_end|>\n\n"
        ids = tokenize_sample(tok, {"text": text, "objects": objs, "image": None})["tokens"]
        px = torch.from_numpy(normalise(img))[None]
        gen = []
        with torch.no_grad():
            for _ in range(40):
                logits, _ = model(torch.tensor([ids + gen]), px)
                t = int(logits[0, -1].argmax())
                if t == eot:
                    break
                gen.append(t)
        stats[kind][0] += tok.decode(gen) == a
        stats[kind][1] += 1
    tot = [sum(v[0] for v in stats.values()), sum(v[1] for v in stats.values())]
    return {"exact_match": round(tot[0] / tot[1], 4), "n": tot[1],
            "by_question": {k: f"{v[0]}/{v[1]}" for k, v in sorted(stats.items())}}


def save_heldout(folder, sets):
    """heldout.json: per set, samples with the prompt text (<|image|> placeholder), image file, expanded tokens,
    categories, refs (object-word position, object index) and object boxes."""
    from export import write_png
    os.makedirs(folder, exist_ok=True)
    out, n = {}, 0
    for name, samples in sets.items():
        rows = []
        for s in samples:
            r = {"text": s["text"], "tokens": s["tokens"], "cats": s["cats"], "refs": s["refs"],
                 "boxes": [o["box"] for o in s["objects"]], "image": None,
                 "patch_labels": patch_labels(s["objects"]) if s["image"] is not None else None}
            if s["image"] is not None:
                r["image"] = f"img-{n:04d}.png"
                write_png(os.path.join(folder, r["image"]), s["image"])
                n += 1
            rows.append(r)
        out[name] = rows
    with open(os.path.join(folder, "heldout.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--ckpt", default=os.path.join(here, "out", "ckpt.pt"))
    ap.add_argument("--n-mi", type=int, default=300)
    ap.add_argument("--n-point", type=int, default=240)
    ap.add_argument("--n-qa", type=int, default=120)
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "models", "tinyscout", "claims.json"))
    ap.add_argument("--save-heldout", default="", help="folder to write the held-out sets to (PNGs + heldout.json), for the engine's check")
    a = ap.parse_args()
    torch.set_num_threads(1)
    tok = Tokenizer.load(os.path.join(os.path.dirname(a.ckpt), "tokenizer-merges.json"))
    model = load(a.ckpt, tok).eval()
    rng = random.Random(20261126)
    mi_set = [tokenize_sample(tok, make_sample(rng)) for _ in range(a.n_mi)]
    rng = random.Random(777)
    val_set, test_set = ground_samples(tok, rng, a.n_point // 2), ground_samples(tok, rng, a.n_point)
    if a.save_heldout:
        save_heldout(a.save_heldout, {"mi": mi_set, "point_val": val_set, "point_test": test_set})
    res = {"checkpoint": a.ckpt,
           "specialisation": specialisation(model, tok, mi_set),
           "pointing_game": pointing(model, tok, val_set, test_set),
           "pointing_game_at_answer": pointing(model, tok, val_set, test_set, "answer"),
           "answers": answer_accuracy(model, tok, random.Random(4242), a.n_qa)}
    # Baseline model: the same architecture at its initialisation (train.py: torch.manual_seed(seed) then TinyScout(...)).
    torch.manual_seed(torch.load(a.ckpt)["args"]["seed"] if "args" in torch.load(a.ckpt) else 0)
    from model import TinyScout
    init = TinyScout(tok.vocab_size, tok.sid("<|patch|>")).eval()
    res["untrained"] = {"specialisation": specialisation(init, tok, mi_set), "pointing_game": pointing(init, tok, val_set, test_set),
                        "pointing_game_at_answer": pointing(init, tok, val_set, test_set, "answer")}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
