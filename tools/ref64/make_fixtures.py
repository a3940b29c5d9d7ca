"""Writes tests/fixtures/ref64/<model>/<golden>.safetensors: float64-reference attention probabilities
(stored as F32) for the short goldens, from llama4_ref.py. The goldens come from llama.cpp in float32;
these tell the tests how far the goldens themselves are from float64.

usage: python3 tools/ref64/make_fixtures.py   (from the repository root; numpy required)
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from llama4_ref import forward  # noqa: E402

ROOT = "tests/fixtures"


def read_tokens(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8 : 8 + n])
    s, e = h["tokens"]["data_offsets"]
    return np.frombuffer(b[8 + n + s : 8 + n + e], np.int32)


def write_st(path, tensors):
    header, off, blobs = {}, 0, []
    for k, v in tensors.items():
        a = np.ascontiguousarray(v, np.float32)
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    js = json.dumps(header).encode()
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


for model in ["tiny-scout", "tiny-maverick"]:
    os.makedirs(f"{ROOT}/ref64/{model}", exist_ok=True)
    for g in ["golden-p1", "golden-p2", "golden-p3", "golden-p4"]:
        toks = read_tokens(f"{ROOT}/golden/{model}/{g}/golden.safetensors")
        r = forward(f"{ROOT}/golden/{model}/hf", toks)
        write_st(f"{ROOT}/ref64/{model}/{g}.safetensors", {k: v for k, v in r.items() if k.endswith("attn_probs")})
        print(model, g, len(toks))

# The bf16 hf/ copy stores its norm weights in BF16 while model.gguf (and so the fixture's ref64) keeps
# them in F32: the two are different models (logits 1.4e-2 apart). Its own float64 reference:
os.makedirs(f"{ROOT}/ref64/tiny-scout-bf16-hf", exist_ok=True)
for g in ["golden-p1", "golden-p2", "golden-p3", "golden-p4"]:
    toks = read_tokens(f"{ROOT}/golden/tiny-scout-bf16/{g}/golden.safetensors")
    r = forward(f"{ROOT}/golden/tiny-scout-bf16/hf", toks)
    write_st(f"{ROOT}/ref64/tiny-scout-bf16-hf/{g}.safetensors", {k: v for k, v in r.items() if k == "logits" or k.endswith(".out")})
    print("tiny-scout-bf16/hf", g, len(toks))

# Expert ablation in float64 (issue 4's analytic check): tiny-scout p1 with layer 1's most used expert
# removed (its routed output zeroed; the shared expert stays).
import collections  # noqa: E402


def read_i32(path, name):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8 : 8 + n])
    s, e = h[name]["data_offsets"]
    return np.frombuffer(b[8 + n + s : 8 + n + e], np.int32)


g = f"{ROOT}/golden/tiny-scout/golden-p1/golden.safetensors"
topk = read_i32(g, "layers.1.topk")
expert = collections.Counter(topk.tolist()).most_common(1)[0][0]
r = forward(f"{ROOT}/golden/tiny-scout/hf", read_tokens(g), ablate={(1, int(expert))})
write_st(f"{ROOT}/ref64/tiny-scout/ablate-p1-L1-E{expert}.safetensors", {k: v for k, v in r.items() if k == "logits" or k.endswith(".out")})
print("ablation fixture: layer 1 expert", expert, "on", int((topk == expert).sum()), "of", len(topk), "tokens")
