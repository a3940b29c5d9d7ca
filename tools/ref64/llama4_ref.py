"""Float64 reference of the Llama 4 text model (spec §2), independent of the C++ engine.

Reads a Hugging Face checkpoint folder (config.json + model.safetensors) with numpy only and prints,
as JSON, what the engine's exactness tests compare against: attention probabilities, layer outputs,
router logits and logits for a token sequence. Used to tell the engine's own rounding from the
goldens' (llama.cpp float32) rounding.

usage: python3 llama4_ref.py HF_DIR TOKENS_JSON OUT.npz [--ablate L:E]
"""
import json
import struct
import sys

import numpy as np


def load_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8 : 8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s : 8 + n + e]
        if v["dtype"] == "F32":
            a = np.frombuffer(raw, np.float32)
        elif v["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif v["dtype"] == "F16":
            a = np.frombuffer(raw, np.float16)
        else:
            raise ValueError(v["dtype"])
        out[k] = a.astype(np.float64).reshape(v["shape"])
    return out


def rope_freqs(tc):
    d = tc["head_dim"]
    f = tc["rope_theta"] ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    rs = tc.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, low, high, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        wl = 2 * np.pi / f
        out = np.where(wl > orig / low, f / factor, f)
        smooth = (orig / wl - low) / (high - low)
        med = ~(wl < orig / high) & ~(wl > orig / low)
        out = np.where(med, (1 - smooth) * out / factor + smooth * out, out)
        f = out
    return f


def rms(x, w=None, eps=1e-5):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * w if w is not None else y


def rope(x, pos, f):  # x [T, h, d] interleaved pairs
    a = pos[:, None] * f[None, :]
    c, s = np.cos(a)[:, None, :], np.sin(a)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def silu(x):
    return x / (1 + np.exp(-x))


def forward(hf_dir, tokens, ablate=()):
    cfg = json.load(open(hf_dir + "/config.json"))
    tc = cfg.get("text_config", cfg)
    W = load_safetensors(hf_dir + "/model.safetensors")
    p = "language_model." if "language_model.model.embed_tokens.weight" in W else ""
    D, H, Hkv, d = tc["hidden_size"], tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
    eps, chunk = tc["rms_norm_eps"], tc.get("attention_chunk_size", 8192)
    L = tc["num_hidden_layers"]
    nope = tc.get("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(L)]
    moe = set(tc.get("moe_layers") or range(tc.get("interleave_moe_layer_step", 1) - 1, L, tc.get("interleave_moe_layer_step", 1)))
    f = rope_freqs(tc)
    T = len(tokens)
    pos = np.arange(T, dtype=np.float64)
    x = W[p + "model.embed_tokens.weight"][tokens]
    res = {}
    for i in range(L):
        q_ = f"{p}model.layers.{i}."
        a = rms(x, W[q_ + "input_layernorm.weight"], eps)
        q = (a @ W[q_ + "self_attn.q_proj.weight"].T).reshape(T, H, d)
        k = (a @ W[q_ + "self_attn.k_proj.weight"].T).reshape(T, Hkv, d)
        v = (a @ W[q_ + "self_attn.v_proj.weight"].T).reshape(T, Hkv, d)
        use_rope = bool(nope[i])
        if use_rope:
            q, k = rope(q, pos, f), rope(k, pos, f)
            if tc.get("use_qk_norm"):
                q, k = rms(q, None, eps), rms(k, None, eps)
        elif tc.get("attn_temperature_tuning", True):
            s = 1 + tc.get("attn_scale", 0.1) * np.log(np.floor((pos + 1) / tc.get("floor_scale", 8192)) + 1)
            q = q * s[:, None, None]
        kk = np.repeat(k, H // Hkv, axis=1)
        vv = np.repeat(v, H // Hkv, axis=1)
        sc = np.einsum("qhd,khd->hqk", q, kk) / np.sqrt(d)
        qi, ki = np.arange(T)[:, None], np.arange(T)[None, :]
        mask = ki <= qi
        if use_rope:
            mask &= (ki // chunk) == (qi // chunk)
        sc = np.where(mask[None], sc, -np.inf)
        sc = sc - sc.max(-1, keepdims=True)
        pr = np.exp(sc)
        pr /= pr.sum(-1, keepdims=True)
        res[f"layers.{i}.attn_probs"] = pr
        z = np.einsum("hqk,khd->qhd", pr, vv).reshape(T, H * d)
        x = x + z @ W[q_ + "self_attn.o_proj.weight"].T
        b = rms(x, W[q_ + "post_attention_layernorm.weight"], eps)
        if i in moe:
            ff = q_ + "feed_forward."
            z = b @ W[ff + "router.weight"].T
            res[f"layers.{i}.router_logits"] = z
            e = np.argmax(z, axis=-1)
            g = 1 / (1 + np.exp(-z[np.arange(T), e]))
            gu, dn = W[ff + "experts.gate_up_proj"], W[ff + "experts.down_proj"]
            F = dn.shape[1]
            routed = np.zeros_like(x)
            for t in range(T):
                if (i, int(e[t])) in ablate:
                    continue
                xe = g[t] * b[t]
                h2 = xe @ gu[e[t]]
                routed[t] = (silu(h2[:F]) * h2[F:]) @ dn[e[t]]
            sh = (silu(b @ W[ff + "shared_expert.gate_proj.weight"].T) * (b @ W[ff + "shared_expert.up_proj.weight"].T)) @ W[ff + "shared_expert.down_proj.weight"].T
            x = x + sh + routed
        else:
            ff = q_ + "feed_forward."
            x = x + (silu(b @ W[ff + "gate_proj.weight"].T) * (b @ W[ff + "up_proj.weight"].T)) @ W[ff + "down_proj.weight"].T
        res[f"layers.{i}.out"] = x.copy()
    h = rms(x, W[p + "model.norm.weight"], eps)
    res["final_norm"] = h
    res["logits"] = h @ W[p + "lm_head.weight"].T
    return res


if __name__ == "__main__":
    hf, toks, out = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
    ablate = set()
    for a in sys.argv[4:]:
        if a.startswith("--ablate="):
            l, e = a.split("=")[1].split(":")
            ablate.add((int(l), int(e)))
    np.savez(out, **forward(hf, np.array(toks), ablate))
