"""Trains TinyScout on the synthetic scenes of data.py.

    OMP_NUM_THREADS=1 /usr/bin/python3 tools/train-demo/train.py          # the defaults made models/tinyscout

Writes out/tokenizer-merges.json, out/ckpt.pt (every 100 steps and at the end) and out/log.txt.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import corpus_for_tokenizer, make_sample, normalise, tokenize_sample  # noqa: E402
from model import TinyScout  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402


def batch_from(samples, tok):
    pad = tok.sid("<|finetune_right_pad|>")
    T = max(len(s["tokens"]) for s in samples)
    ids = torch.full((len(samples), T), pad, dtype=torch.long)
    for i, s in enumerate(samples):
        ids[i, : len(s["tokens"])] = torch.tensor(s["tokens"])
    imgs = [normalise(s["image"]) for s in samples if s["image"] is not None]
    px = torch.from_numpy(np.stack(imgs)) if imgs else None
    return ids, px


def probe_labels(samples):
    """Per image token (6x6 grid of 28-px cells, row-major): its cell index, and the colour / shape of the
    object whose box holds the cell centre (0 = background)."""
    from data import COLOURS, SHAPES
    cols, shps = list(COLOURS), list(SHAPES)
    cell, colour, shape = [], [], []
    for s in samples:
        for t in range(36):
            cy, cx = (t // 6 + 0.5) * 28, (t % 6 + 0.5) * 28
            c = sh = 0
            for o in s["objects"]:
                x0, y0, x1, y1 = o["box"]
                if x0 <= cx < x1 and y0 <= cy < y1:
                    c, sh = cols.index(o["colour"]) + 1, shps.index(o["shape"]) + 1
            cell.append(t)
            colour.append(c)
            shape.append(sh)
    return {"cell": torch.tensor(cell), "colour": torch.tensor(colour), "shape": torch.tensor(shape)}


def get_tokenizer(out):
    path = os.path.join(out, "tokenizer-merges.json")
    if os.path.exists(path):
        return Tokenizer.load(path)
    tok = Tokenizer.train(corpus_for_tokenizer(seed=1234), 400)
    tok.save(path)
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aux", type=float, default=0.003, help="load-balancing loss weight")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--bench", type=int, default=0, help="time this many steps and exit")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--until", type=int, default=0, help="stop after this step (the schedule still follows --steps)")
    ap.add_argument("--aux-vision", type=float, default=0.5,
                    help="weight of training-only probes on the image tokens (cell index, colour, shape under the token centre)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    tok = get_tokenizer(args.out)
    model = TinyScout(tok.vocab_size, tok.sid("<|patch|>"))
    D = model.language_model.cfg["hidden_size"]
    probes = torch.nn.ModuleDict({"cell": torch.nn.Linear(D, 36), "colour": torch.nn.Linear(D, 5), "shape": torch.nn.Linear(D, 4)})
    params = list(model.parameters()) + (list(probes.parameters()) if args.aux_vision else [])
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    step0 = 0
    ckpt = os.path.join(args.out, "ckpt.pt")
    if args.resume and os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        if "probes" in st:
            probes.load_state_dict(st["probes"])
        if len(st["opt"]["param_groups"][0]["params"]) == len(params):
            opt.load_state_dict(st["opt"])
        else:  # probes added on resume: fresh optimizer state for every parameter
            print("optimizer state reset (parameter set changed)")
        step0 = st["step"]
    rng = random.Random(args.seed * 1000003 + 17)
    for _ in range(step0 * args.batch):  # replay the data stream (cheap: the rng only)
        make_sample(rng)
    patch, pad = tok.sid("<|patch|>"), tok.sid("<|finetune_right_pad|>")
    E = model.language_model.cfg["num_local_experts"]
    log = open(os.path.join(args.out, "log.txt"), "a")
    t0 = time.time()
    n_steps = args.bench or args.steps
    warm = 50
    for step in range(step0, min(n_steps, args.until or n_steps)):
        lr = args.lr * min(1, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / n_steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        samples = [tokenize_sample(tok, make_sample(rng)) for _ in range(args.batch)]
        ids, px = batch_from(samples, tok)
        logits, aux = model(ids, px)
        tgt = ids[:, 1:].clone()
        tgt[(tgt == patch) | (tgt == pad)] = -100
        lm = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
        valid = (ids != pad).reshape(-1)
        bal = 0
        for r in aux["routes"]:
            z, top = r["router_logits"][valid], r["topk"][valid]
            f = torch.bincount(top, minlength=E).float() / top.numel()
            bal = bal + E * (f * z.softmax(-1).mean(0)).sum()
        loss = lm + args.aux * bal / len(aux["routes"])
        if args.aux_vision and px is not None:
            emb = model.last_image_embeds.reshape(-1, D)
            lab = probe_labels([s for s in samples if s["image"] is not None])
            pl = sum(F.cross_entropy(probes[k](emb), lab[k]) for k in ("cell", "colour", "shape"))
            loss = loss + args.aux_vision * pl
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == n_steps - 1:
            msg = f"step {step} loss {lm.item():.4f} probes {float(pl) if args.aux_vision and px is not None else 0:.3f} bal {float(bal) / len(aux['routes']):.3f} lr {lr:.2e} t {time.time() - t0:.0f}s"
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if (step + 1) % 100 == 0 or step == n_steps - 1 or step + 1 == args.until:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1, "args": vars(args),
                        "probes": probes.state_dict()}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
    if args.bench:
        print(f"{(time.time() - t0) / args.bench:.3f} s/step")


if __name__ == "__main__":
    main()
