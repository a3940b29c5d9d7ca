"""Exports a TinyScout checkpoint to models/tinyscout/:

  config.json, model.safetensors (BF16, HF Llama4ForConditionalGeneration names and layouts),
  tokenizer.json, tokenizer_config.json, preprocessor_config.json,
  model.gguf (llama.cpp `llama4` text model) + mmproj.gguf (llama.cpp `clip` file, projector llama4),
  expected.safetensors (what the training code computes on the exported weights, for the test),
  examples/scene-*.png (held-out scenes, with their objects in examples/scenes.json).

Every parameter is rounded to bfloat16 once; both files hold exactly those values (GGUF keeps 1-D
tensors in F32, which represents them exactly). expected.safetensors is computed by model.py in
float64 from the rounded weights.

    /usr/bin/python3 tools/train-demo/export.py --ckpt tools/train-demo/out/ckpt.pt --out models/tinyscout
"""
import argparse
import json
import os
import random
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import CANVAS, make_scene, normalise, render, tokenize_sample, turn  # noqa: E402
from gguf import GGML_BF16, GGML_F32, T_ARR, T_I32, write_gguf  # noqa: E402
from model import TEXT_CONFIG, VISION_CONFIG, TinyScout, text_rope_freqs  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402
from gguf import bf16_bits  # noqa: E402


def write_safetensors(path, tensors, meta=None):
    """tensors: list of (name, np.ndarray, dtype string: F32 / BF16 / I32 / F64)."""
    header, blobs, off = {}, [], 0
    for name, a, dt in tensors:
        if dt == "BF16":
            b = bf16_bits(a).tobytes()
        else:
            b = np.ascontiguousarray(a, dtype={"F32": np.float32, "I32": np.int32, "F64": np.float64}[dt]).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def write_png(path, img):
    h, w, _ = img.shape
    raw = b"".join(b"\0" + img[y].tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


CHAT_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|header_start|>' + message['role'] + '<|header_end|>\\n\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}"
    "{%- for content in message['content'] %}{%- if content['type'] == 'image' %}{{- '<|image|>' }}"
    "{%- elif content['type'] == 'text' %}{{- content['text'] }}{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|eot|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|header_start|>assistant<|header_end|>\\n\\n' }}{%- endif %}"
)


def load(ckpt, tok):
    model = TinyScout(tok.vocab_size, tok.sid("<|patch|>"))
    model.load_state_dict(torch.load(ckpt)["model"])
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    return model


def hf_config(tok):
    t = dict(TEXT_CONFIG)
    t.update(model_type="llama4_text", moe_layers=list(range(t["num_hidden_layers"])), vocab_size=tok.vocab_size,
             max_position_embeddings=131072, hidden_act="silu", bos_token_id=tok.sid("<|begin_of_text|>"),
             eos_token_id=[tok.sid("<|end_of_text|>"), tok.sid("<|eom|>"), tok.sid("<|eot|>")],
             pad_token_id=tok.sid("<|finetune_right_pad|>"), tie_word_embeddings=False, attention_bias=False,
             torch_dtype="bfloat16")
    v = dict(VISION_CONFIG)
    v.update(hidden_act="gelu", multi_modal_projector_bias=False, vision_feature_layer=-1,
             vision_feature_select_strategy="default", model_type="llama4_vision_model")
    return {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "text_config": t,
            "vision_config": v, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
            "boi_token_index": tok.sid("<|image_start|>"), "eoi_token_index": tok.sid("<|image_end|>"),
            "image_token_index": tok.sid("<|patch|>")}


def np_(t):
    return t.detach().to(torch.float32).numpy()


def write_hf(model, tok, out):
    tensors = [(k, np_(v), "BF16") for k, v in model.state_dict().items()]
    write_safetensors(os.path.join(out, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(hf_config(tok), f, indent=2)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok.hf_json(), f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>", "pad_token": "<|finetune_right_pad|>",
                   "add_bos_token": True, "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast",
                   "chat_template": CHAT_TEMPLATE}, f, indent=2)
    S = VISION_CONFIG["image_size"]
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "Llama4ImageProcessorFast", "size": {"height": S, "width": S}, "max_patches": 16,
                   "resize_to_max_canvas": False, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
                   "rescale_factor": 1 / 255, "do_normalize": True, "do_rescale": True, "do_resize": True,
                   "do_convert_rgb": True, "resample": 2, "processor_class": "Llama4Processor"}, f, indent=2)


def write_gguf_text(model, tok, path):
    c = TEXT_CONFIG
    sd = {k: np_(v) for k, v in model.state_dict().items()}
    L = "language_model.model."
    Fi = c["intermediate_size"]
    toks = [tok.id_to_str[i] for i in range(tok.vocab_size)]
    kv = {
        "general.architecture": "llama4", "general.name": "TinyScout",
        "llama4.context_length": 131072, "llama4.embedding_length": c["hidden_size"], "llama4.block_count": c["num_hidden_layers"],
        "llama4.feed_forward_length": c["intermediate_size_mlp"], "llama4.attention.head_count": c["num_attention_heads"],
        "llama4.attention.head_count_kv": c["num_key_value_heads"], "llama4.rope.freq_base": float(c["rope_theta"]),
        "llama4.attention.layer_norm_rms_epsilon": float(c["rms_norm_eps"]), "llama4.attention.key_length": c["head_dim"],
        "llama4.attention.value_length": c["head_dim"], "llama4.rope.dimension_count": c["head_dim"],
        "llama4.vocab_size": tok.vocab_size, "llama4.expert_count": c["num_local_experts"],
        "llama4.expert_used_count": c["num_experts_per_tok"], "llama4.expert_feed_forward_length": Fi,
        "llama4.interleave_moe_layer_step": c["interleave_moe_layer_step"],
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama4", "tokenizer.ggml.tokens": toks,
        "tokenizer.ggml.token_type": (T_ARR, (T_I32, [3 if i >= tok.n_bpe else 1 for i in range(tok.vocab_size)])),
        "tokenizer.ggml.merges": [a + " " + b for a, b in tok.merges],
        "tokenizer.ggml.bos_token_id": tok.sid("<|begin_of_text|>"), "tokenizer.ggml.eos_token_id": tok.sid("<|eot|>"),
        "tokenizer.ggml.padding_token_id": tok.sid("<|finetune_right_pad|>"), "tokenizer.ggml.add_bos_token": True,
        "tokenizer.chat_template": CHAT_TEMPLATE,
    }
    plain = text_rope_freqs({**c, "rope_scaling": None})
    div = (plain / text_rope_freqs(c)).numpy().astype(np.float32)
    T = [("token_embd.weight", sd[L + "embed_tokens.weight"], GGML_BF16),
         ("output_norm.weight", sd[L + "norm.weight"], GGML_F32),
         ("output.weight", sd["language_model.lm_head.weight"], GGML_BF16),
         ("rope_freqs.weight", div, GGML_F32)]
    for i in range(c["num_hidden_layers"]):
        p, b = f"{L}layers.{i}.", f"blk.{i}."
        gu, dn = sd[p + "feed_forward.experts.gate_up_proj"], sd[p + "feed_forward.experts.down_proj"]
        T += [(b + "attn_norm.weight", sd[p + "input_layernorm.weight"], GGML_F32),
              (b + "attn_q.weight", sd[p + "self_attn.q_proj.weight"], GGML_BF16),
              (b + "attn_k.weight", sd[p + "self_attn.k_proj.weight"], GGML_BF16),
              (b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"], GGML_BF16),
              (b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"], GGML_BF16),
              (b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"], GGML_F32),
              (b + "ffn_gate_inp.weight", sd[p + "feed_forward.router.weight"], GGML_BF16),
              (b + "ffn_gate_exps.weight", gu[:, :, :Fi].transpose(0, 2, 1), GGML_BF16),  # [E, F, D]
              (b + "ffn_up_exps.weight", gu[:, :, Fi:].transpose(0, 2, 1), GGML_BF16),
              (b + "ffn_down_exps.weight", dn.transpose(0, 2, 1), GGML_BF16),  # [E, D, F]
              (b + "ffn_gate_shexp.weight", sd[p + "feed_forward.shared_expert.gate_proj.weight"], GGML_BF16),
              (b + "ffn_up_shexp.weight", sd[p + "feed_forward.shared_expert.up_proj.weight"], GGML_BF16),
              (b + "ffn_down_shexp.weight", sd[p + "feed_forward.shared_expert.down_proj.weight"], GGML_BF16)]
    write_gguf(path, kv, T)


def write_mmproj(model, path, vtype=GGML_BF16):
    v = VISION_CONFIG
    sd = {k: np_(x) for k, x in model.state_dict().items()}
    V = "vision_model."
    kv = {"general.architecture": "clip", "general.name": "TinyScout vision", "clip.has_vision_encoder": True,
          "clip.projector_type": "llama4", "clip.vision.projection_dim": TEXT_CONFIG["hidden_size"],
          "clip.vision.image_size": v["image_size"], "clip.vision.patch_size": v["patch_size"],
          "clip.vision.embedding_length": v["hidden_size"], "clip.vision.feed_forward_length": v["intermediate_size"],
          "clip.vision.block_count": v["num_hidden_layers"], "clip.vision.attention.head_count": v["num_attention_heads"],
          "clip.vision.image_mean": [0.5] * 3, "clip.vision.image_std": [0.5] * 3,
          "clip.vision.attention.layer_norm_epsilon": float(v["norm_eps"]),
          "clip.vision.projector.scale_factor": int(round(1 / v["pixel_shuffle_ratio"])), "clip.use_gelu": True}
    T = [("v.patch_embd.weight", sd[V + "patch_embedding.linear.weight"], vtype),
         ("v.class_embd", sd[V + "class_embedding"], GGML_F32),
         ("v.position_embd.weight", sd[V + "positional_embedding_vlm"], vtype),
         ("v.pre_ln.weight", sd[V + "layernorm_pre.weight"], GGML_F32), ("v.pre_ln.bias", sd[V + "layernorm_pre.bias"], GGML_F32),
         ("v.post_ln.weight", sd[V + "layernorm_post.weight"], GGML_F32), ("v.post_ln.bias", sd[V + "layernorm_post.bias"], GGML_F32)]
    for i in range(v["num_hidden_layers"]):
        p, b = f"{V}model.layers.{i}.", f"v.blk.{i}."
        for a, h in [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
                     ("attn_out", "self_attn.o_proj"), ("ffn_up", "mlp.fc1"), ("ffn_down", "mlp.fc2")]:
            T += [(f"{b}{a}.weight", sd[p + h + ".weight"], vtype), (f"{b}{a}.bias", sd[p + h + ".bias"], GGML_F32)]
        for a, h in [("ln1", "input_layernorm"), ("ln2", "post_attention_layernorm")]:
            T += [(f"{b}{a}.weight", sd[p + h + ".weight"], GGML_F32), (f"{b}{a}.bias", sd[p + h + ".bias"], GGML_F32)]
    T += [("mm.model.mlp.1.weight", sd[V + "vision_adapter.mlp.fc1.weight"], vtype),
          ("mm.model.mlp.2.weight", sd[V + "vision_adapter.mlp.fc2.weight"], vtype),
          ("mm.model.fc.weight", sd["multi_modal_projector.linear_1.weight"], vtype)]
    write_gguf(path, kv, T)


TEXT_PROMPTS = [
    "a square has four corners. a triangle has",
    "<|header_start|>user<|header_end|>\n\nwhat colour is the sky?<|eot|><|header_start|>assistant<|header_end|>\n\n",
    "the red circle is at the top left. the blue square is in the center. one, two, three,",
]


def expected(model, tok, out, scenes):
    m = model.double().eval()
    T = []
    with torch.no_grad():
        for i, p in enumerate(TEXT_PROMPTS):
            ids = tok.encode(p, bos=True)
            logits, aux = m(torch.tensor([ids]), want=("out",))
            T += [(f"text{i}.tokens", np.array(ids), "I32"), (f"text{i}.logits", logits[0].numpy(), "F32")]
            T += [(f"text{i}.layers.{l}.topk", r["topk"].numpy(), "I32") for l, r in enumerate(aux["routes"])]
            gen = []  # 12 greedy tokens
            while len(gen) < 12:
                lg, _ = m(torch.tensor([ids + gen]))
                gen.append(int(lg[0, -1].argmax()))
            T += [(f"text{i}.greedy", np.array(gen), "I32")]
            print(f"text {i}: {p!r} -> {tok.decode(gen)!r}")
        for i, s in enumerate(scenes):
            text = "<|begin_of_text|>" + turn("user", "<|image|>" + s["question"]) + "<|header_start|>assistant<|header_end|>\n\n"
            smp = tokenize_sample(tok, {"text": text, "objects": s["objects"], "image": None})
            ids = smp["tokens"]
            px = torch.from_numpy(normalise(s["image"]))[None].double()
            logits, aux = m(torch.tensor([ids]), px)
            emb = m.image_embeds(px)[0]
            T += [(f"image{i}.tokens", np.array(ids), "I32"), (f"image{i}.logits", logits[0].numpy(), "F32"),
                  (f"image{i}.image_embeds", emb.numpy(), "F32")]
            T += [(f"image{i}.layers.{l}.topk", r["topk"].numpy(), "I32") for l, r in enumerate(aux["routes"])]
            gen = []  # greedy answer, up to and including <|eot|> (at most 24 tokens)
            while len(gen) < 24 and (not gen or gen[-1] != tok.sid("<|eot|>")):
                lg, _ = m(torch.tensor([ids + gen]), px)
                gen.append(int(lg[0, -1].argmax()))
            T += [(f"image{i}.greedy", np.array(gen), "I32")]
            print(f"image {i}: {s['question']!r} -> {tok.decode(gen)!r}")
    meta = {"text_prompts": json.dumps(TEXT_PROMPTS), "image_prompts": json.dumps([s["question"] for s in scenes])}
    write_safetensors(os.path.join(out, "expected.safetensors"), T, meta)
    model.float()


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--ckpt", default=os.path.join(here, "out", "ckpt.pt"))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "models", "tinyscout"))
    a = ap.parse_args()
    tok = Tokenizer.load(os.path.join(os.path.dirname(a.ckpt), "tokenizer-merges.json"))
    model = load(a.ckpt, tok)
    os.makedirs(os.path.join(a.out, "examples"), exist_ok=True)
    write_hf(model, tok, a.out)
    write_gguf_text(model, tok, os.path.join(a.out, "model.gguf"))
    write_mmproj(model, os.path.join(a.out, "mmproj.gguf"))
    rng = random.Random(987654321)  # held out: not a training seed stream
    scenes, qs = [], ["describe the image.", "where is the {c} {s}?", "what colour is the {s}?"]
    for i in range(3):
        objs = make_scene(rng)
        while len(objs) < 2 or (i == 2 and [o["shape"] for o in objs].count(objs[0]["shape"]) > 1):
            objs = make_scene(rng)
        img = render(objs, rng)
        q = qs[i].format(c=objs[0]["colour"], s=objs[0]["shape"])
        scenes.append({"file": f"examples/scene-{i}.png", "question": q, "objects": objs, "image": img})
        write_png(os.path.join(a.out, scenes[-1]["file"]), img)
    with open(os.path.join(a.out, "examples", "scenes.json"), "w") as f:
        json.dump([{k: v for k, v in s.items() if k != "image"} for s in scenes], f, indent=1)
    expected(model, tok, a.out, scenes)
    print("wrote", a.out, {f: os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out) if os.path.isfile(os.path.join(a.out, f))})


if __name__ == "__main__":
    main()
