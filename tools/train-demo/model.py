"""TinyScout: an independent PyTorch implementation of the Llama 4 architecture
(/work/shared/docs/llama4-spec.md §1-§3), HF-faithful semantics, float32 or float64.

Parameter names are the Hugging Face `Llama4ForConditionalGeneration` names (spec §5.1), including
the fused expert layout `experts.gate_up_proj` [E, D, 2F] and `experts.down_proj` [E, F, D].
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

TEXT_CONFIG = dict(
    hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
    intermediate_size=64, intermediate_size_mlp=128, num_local_experts=8, num_experts_per_tok=1,
    interleave_moe_layer_step=1, no_rope_layers=[1, 1, 1, 0], attention_chunk_size=8192,
    attn_temperature_tuning=True, floor_scale=8192, attn_scale=0.1, use_qk_norm=True, rms_norm_eps=1e-5,
    rope_theta=500000.0,
    rope_scaling={"rope_type": "llama3", "factor": 16.0, "low_freq_factor": 1.0, "high_freq_factor": 1.0,
                  "original_max_position_embeddings": 8192},
)
VISION_CONFIG = dict(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, image_size=168,
    patch_size=14, num_channels=3, norm_eps=1e-5, rope_theta=10000, pixel_shuffle_ratio=0.5,
    projector_input_dim=128, projector_output_dim=128, vision_output_dim=128,
)


def text_rope_freqs(cfg):
    """ω_j (float64), with llama3 scaling (spec §2.4)."""
    d = cfg["head_dim"]
    w = [1.0 / cfg["rope_theta"] ** (2 * j / d) for j in range(d // 2)]
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        factor, low, high, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        lo_wl, hi_wl = orig / low, orig / high
        out = []
        for f in w:
            wl = 2 * math.pi / f
            if wl < hi_wl:
                out.append(f)
            elif wl > lo_wl:
                out.append(f / factor)
            else:
                s = (orig / wl - low) / (high - low)
                out.append((1 - s) * f / factor + s * f)
        w = out
    return torch.tensor(w, dtype=torch.float64)


def rope_interleaved(x, cos, sin):
    """x [..., T, heads, d]; cos/sin [T, d/2]: pairs (x[2j], x[2j+1]) rotated by the angle."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class TextAttention(nn.Module):
    def __init__(self, cfg, layer):
        super().__init__()
        D, H, Hkv, d = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.H, self.Hkv, self.d = H, Hkv, d
        self.q_proj = nn.Linear(D, H * d, bias=False)
        self.k_proj = nn.Linear(D, Hkv * d, bias=False)
        self.v_proj = nn.Linear(D, Hkv * d, bias=False)
        self.o_proj = nn.Linear(H * d, D, bias=False)
        self.use_rope = bool(cfg["no_rope_layers"][layer])
        self.qk_norm = cfg["use_qk_norm"] and self.use_rope
        self.temp = bool(cfg["attn_temperature_tuning"]) and not self.use_rope
        self.chunk = cfg["attention_chunk_size"] if self.use_rope else None
        self.eps, self.attn_scale, self.floor_scale = cfg["rms_norm_eps"], cfg["attn_scale"], cfg["floor_scale"]

    def forward(self, a, rope, pos, key_mask, want_probs=False):
        B, T, _ = a.shape
        q = self.q_proj(a).view(B, T, self.H, self.d)
        k = self.k_proj(a).view(B, T, self.Hkv, self.d)
        v = self.v_proj(a).view(B, T, self.Hkv, self.d)
        if self.use_rope:
            cos, sin = rope
            q, k = rope_interleaved(q, cos, sin), rope_interleaved(k, cos, sin)
            if self.qk_norm:  # RMS-normalise per head, no weight, after RoPE (spec §2.4.3)
                q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + self.eps)
                k = k * torch.rsqrt(k.pow(2).mean(-1, keepdim=True) + self.eps)
        elif self.temp:  # temperature tuning on q only, by query position (spec §2.4.4)
            s = 1 + self.attn_scale * torch.log(torch.floor((pos.to(torch.float64) + 1) / self.floor_scale) + 1)
            q = q * s.to(q.dtype)[:, None, None]
        g = self.H // self.Hkv
        k = k.repeat_interleave(g, dim=2)
        v = v.repeat_interleave(g, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, d]
        allowed = pos[None, :] <= pos[:, None]
        if self.chunk:
            allowed = allowed & ((pos[None, :] // self.chunk) == (pos[:, None] // self.chunk))
        bias = torch.zeros(allowed.shape, dtype=q.dtype).masked_fill(~allowed, float("-inf"))
        probs = torch.baddbmm(bias.expand(B * self.H, -1, -1), (q * (1 / math.sqrt(self.d))).reshape(B * self.H, T, self.d),
                              k.reshape(B * self.H, T, self.d).transpose(1, 2)).view(B, self.H, T, T).softmax(-1)
        o = (probs @ v).transpose(1, 2).reshape(B, T, self.H * self.d)
        return self.o_proj(o), (probs if want_probs else None)


class Experts(nn.Module):
    def __init__(self, E, D, Fi):
        super().__init__()
        self.gate_up_proj = nn.Parameter(torch.randn(E, D, 2 * Fi) / math.sqrt(D))
        self.down_proj = nn.Parameter(torch.randn(E, Fi, D) / math.sqrt(Fi) * 0.5)
        self.Fi = Fi


class SharedExpert(nn.Module):
    def __init__(self, D, Fi):
        super().__init__()
        self.gate_proj = nn.Linear(D, Fi, bias=False)
        self.up_proj = nn.Linear(D, Fi, bias=False)
        self.down_proj = nn.Linear(Fi, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class TextMoe(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, Fi, E = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_local_experts"]
        self.E = E
        self.router = nn.Linear(D, E, bias=False)
        self.experts = Experts(E, D, Fi)
        self.shared_expert = SharedExpert(D, Fi)

    def forward(self, b):
        shp = b.shape
        x = b.reshape(-1, shp[-1])
        z = self.router(x)  # [N, E]
        top = z.argmax(-1)  # top-1 on raw logits
        gate = torch.sigmoid(z.gather(1, top[:, None]))  # [N, 1]
        xe = x * gate  # the gate scales the expert's INPUT (spec §2.6.4)
        routed = torch.zeros_like(x)
        for e in range(self.E):
            idx = (top == e).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            h = xe[idx] @ self.experts.gate_up_proj[e]
            gt, up = h[:, : self.experts.Fi], h[:, self.experts.Fi:]
            routed = routed.index_add(0, idx, (F.silu(gt) * up) @ self.experts.down_proj[e])
        out = self.shared_expert(x) + routed
        return out.view(shp), {"router_logits": z, "topk": top, "gate": gate[:, 0]}


class DecoderLayer(nn.Module):
    def __init__(self, cfg, layer):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = TextAttention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.feed_forward = TextMoe(cfg)

    def forward(self, h, rope, pos, key_mask, want_probs=False):
        a, probs = self.self_attn(self.input_layernorm(h), rope, pos, key_mask, want_probs)
        h = h + a
        f, route = self.feed_forward(self.post_attention_layernorm(h))
        return h + f, route, probs


class TextModel(nn.Module):
    def __init__(self, cfg, vocab):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, cfg["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class LanguageModel(nn.Module):
    def __init__(self, cfg, vocab):
        super().__init__()
        self.cfg = cfg
        self.model = TextModel(cfg, vocab)
        self.lm_head = nn.Linear(cfg["hidden_size"], vocab, bias=False)
        self.register_buffer("omega", text_rope_freqs(cfg), persistent=False)
        nn.init.normal_(self.model.embed_tokens.weight, std=0.5)

    def forward(self, h, pos, want=()):
        # angles in float64, then cast (exact at any position; spec/golden README)
        ang = pos.to(torch.float64)[:, None] * self.omega[None, :]
        rope = (ang.cos().to(h.dtype), ang.sin().to(h.dtype))
        routes, probs, outs = [], [], []
        for layer in self.model.layers:
            h, r, p = layer(h, rope, pos, None, "attn" in want)
            routes.append(r)
            probs.append(p)
            if "out" in want:
                outs.append(h)
        hn = self.model.norm(h)
        return self.lm_head(hn), {"routes": routes, "probs": probs, "outs": outs, "final_norm": hn}


# ---------------------------------------------------------------- vision (spec §3.2-3.4)

class VisionAttention(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H, self.d = H, C // H
        self.q_proj = nn.Linear(C, C)
        self.k_proj = nn.Linear(C, C)
        self.v_proj = nn.Linear(C, C)
        self.o_proj = nn.Linear(C, C)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        q = rope_interleaved(self.q_proj(x).view(B, T, self.H, self.d), cos, sin).transpose(1, 2)
        k = rope_interleaved(self.k_proj(x).view(B, T, self.H, self.d), cos, sin).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.H, self.d).transpose(1, 2)
        p = ((q * (1 / math.sqrt(self.d))) @ k.transpose(-1, -2)).softmax(-1)  # non-causal
        return self.o_proj((p @ v).transpose(1, 2).reshape(B, T, C))


class VisionMLP(nn.Module):
    def __init__(self, C, Fi):
        super().__init__()
        self.fc1 = nn.Linear(C, Fi)
        self.fc2 = nn.Linear(Fi, C)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU


class VisionLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, eps = cfg["hidden_size"], cfg["norm_eps"]
        self.input_layernorm = nn.LayerNorm(C, eps=eps)
        self.self_attn = VisionAttention(C, cfg["num_attention_heads"])
        self.post_attention_layernorm = nn.LayerNorm(C, eps=eps)
        self.mlp = VisionMLP(C, cfg["intermediate_size"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class PatchEmbedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        p = cfg["patch_size"]
        self.p = p
        self.linear = nn.Linear(cfg["num_channels"] * p * p, cfg["hidden_size"], bias=False)

    def forward(self, px):  # [B, 3, S, S] -> [B, G*G, C]; patch vector ordered (c, ky, kx), patches row-major
        B, Cn, S, _ = px.shape
        G, p = S // self.p, self.p
        u = px.view(B, Cn, G, p, G, p).permute(0, 2, 4, 1, 3, 5).reshape(B, G * G, Cn * p * p)
        return self.linear(u)


class VisionEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList(VisionLayer(cfg) for _ in range(cfg["num_hidden_layers"]))


class VisionAdapterMLP(nn.Module):
    def __init__(self, cin, chid, cout):
        super().__init__()
        self.fc1 = nn.Linear(cin, chid, bias=False)
        self.fc2 = nn.Linear(chid, cout, bias=False)

    def forward(self, x):
        return F.gelu(self.fc2(F.gelu(self.fc1(x))))  # GELU after both


class VisionAdapter(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        r = int(round(1 / cfg["pixel_shuffle_ratio"]))
        self.mlp = VisionAdapterMLP(cfg["hidden_size"] * r * r, cfg["projector_input_dim"], cfg["projector_output_dim"])


class VisionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        C = cfg["hidden_size"]
        G = cfg["image_size"] // cfg["patch_size"]
        self.G = G
        self.r = int(round(1 / cfg["pixel_shuffle_ratio"]))
        self.patch_embedding = PatchEmbedding(cfg)
        self.class_embedding = nn.Parameter(torch.randn(C) * C ** -0.5)
        self.positional_embedding_vlm = nn.Parameter(torch.randn(G * G + 1, C) * C ** -0.5)
        self.layernorm_pre = nn.LayerNorm(C, eps=cfg["norm_eps"])
        self.layernorm_post = nn.LayerNorm(C, eps=cfg["norm_eps"])
        self.model = VisionEncoder(cfg)
        self.vision_adapter = VisionAdapter(cfg)
        # 2-D RoPE angles (spec §3.2.6), CLS (last) has angle 0
        hd = C // cfg["num_attention_heads"]
        nf = hd // 4
        f = torch.tensor([cfg["rope_theta"] ** (-2 * k / (hd // 2)) for k in range(nf)], dtype=torch.float64)
        idx = torch.arange(G * G)
        px, py = (idx % G + 1).to(torch.float64), (idx // G + 1).to(torch.float64)
        ang = torch.cat([px[:, None] * f[None], py[:, None] * f[None]], dim=1)
        ang = torch.cat([ang, torch.zeros(1, hd // 2, dtype=torch.float64)], dim=0)
        self.register_buffer("vang", ang, persistent=False)

    def forward(self, px, want=()):
        x = self.patch_embedding(px)
        B = x.shape[0]
        x = torch.cat([x, self.class_embedding.expand(B, 1, -1)], dim=1)
        x = x + self.positional_embedding_vlm
        x = self.layernorm_pre(x)
        cos, sin = self.vang.cos().to(x.dtype), self.vang.sin().to(x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        x = self.layernorm_post(x)[:, :-1]  # drop CLS
        C, G, r = x.shape[-1], self.G, self.r
        g2 = G // r
        # pixel shuffle, row-major tokens: out[Y*g2+X, (dy*r+dx)*C + c] = f[r*Y+dy, r*X+dx, c]
        x = x.view(B, g2, r, g2, r, C).permute(0, 1, 3, 2, 4, 5).reshape(B, g2 * g2, r * r * C)
        return self.vision_adapter.mlp(x)


class Projector(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.linear_1 = nn.Linear(cin, cout, bias=False)


class TinyScout(nn.Module):
    def __init__(self, vocab, patch_id, text_cfg=TEXT_CONFIG, vision_cfg=VISION_CONFIG):
        super().__init__()
        self.vocab, self.patch_id = vocab, patch_id
        self.language_model = LanguageModel(text_cfg, vocab)
        self.vision_model = VisionModel(vision_cfg)
        self.multi_modal_projector = Projector(vision_cfg["vision_output_dim"], text_cfg["hidden_size"])

    def image_embeds(self, pixels):  # [n_img, 3, S, S] -> [n_img, tokens, D]
        return self.multi_modal_projector.linear_1(self.vision_model(pixels))

    def forward(self, tokens, pixels=None, img_rows=None, want=()):
        """tokens [B, T]; pixels [n_img, 3, S, S] for the images in order; img_rows: batch row of each image
        (each image fills the next <|patch|> run of its row)."""
        h = self.language_model.model.embed_tokens(tokens)
        if pixels is not None and len(pixels):
            emb = self.image_embeds(pixels).to(h.dtype)  # [n_img, n, D]
            self.last_image_embeds = emb  # for training-time probes (train.py --aux-vision)
            mask = tokens == self.patch_id
            h = h.masked_scatter(mask[..., None], emb.reshape(-1, emb.shape[-1]))  # row-major over (batch, position)
        pos = torch.arange(tokens.shape[1])
        return self.language_model(h, pos, want)
