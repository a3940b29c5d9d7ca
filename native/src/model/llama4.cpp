// Llama 4 text forward pass, read top to bottom (spec §2; Appendix A is the checklist):
//   embed -> for each layer [RMSNorm -> attention (RoPE+chunk mask, or NoPE+temperature) -> +residual
//   -> RMSNorm -> MoE (router -> top-k -> sigmoid gate on the expert INPUT -> expert + shared expert)
//   or dense SwiGLU -> +residual] -> final RMSNorm -> lm_head.
// Every step is followed by one hook call, which applies the run's interventions for that point and
// captures what the plan asks for.
//
// Legend: T tokens, D hidden, H heads, Hkv kv heads, Dh head dim, E experts, K experts/token, F expert ffn, V vocab.
#include "model/llama4.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/quant.h"
#include "ops/quant_blocks.h"
#include "ops/rope.h"
#include "ops/threadpool.h"

namespace moescope {

namespace {

// Micro-batch of a prefill: activations for 512 tokens stay small even for real Scout (D = 5120).
constexpr int64_t kMaxSegment = 512;

void check_cancel(const RunContext& rc) {
  if (rc.cancel && rc.cancel->load(std::memory_order_relaxed)) fail("CANCELLED", "cancelled");
}

// Applies the interventions registered at (point, layer) to x [T, row], then captures it.
void hook(RunContext& rc, HookPoint p, int layer, float* x, int64_t T, int64_t row, const int64_t* pos) {
  if (const Interventions* iv = rc.interventions) {
    for (auto& pt : iv->patches) {
      if (pt.point != p || pt.layer != layer) continue;
      for (size_t k = 0; k < pt.positions.size(); k++)
        for (int64_t t = 0; t < T; t++)
          if (pos[t] == pt.positions[k]) memcpy(x + t * row, pt.values.data() + k * row, row * sizeof(float));
    }
    if (p == HookPoint::ResidPost)
      for (auto& st : iv->steers)
        if (st.layer == layer)
          for (int64_t t = 0; t < T; t++)
            if (pos[t] >= st.pos_begin && pos[t] < st.pos_end) op_axpy(x + t * row, st.vec.data(), 1.0f, row);
  }
  if (rc.capture) rc.capture->add(p, layer, x, T, row, pos);
}

// Temperature tuning of NoPE layers, spec §2.4 item 4: s(p) = 1 + attn_scale * ln(floor((p+1)/floor_scale) + 1).
double attn_temperature(const Llama4Config& c, int64_t p) {
  return 1.0 + c.attn_scale * std::log(std::floor((double)(p + 1) / c.floor_scale) + 1.0);
}

}  // namespace

double attn_temperature_for_test(double attn_scale, double floor_scale, int64_t p) {
  Llama4Config c;
  c.attn_scale = attn_scale;
  c.floor_scale = floor_scale;
  return attn_temperature(c, p);
}

// ---------------------------------------------------------------------------------------------------
// Embedding
void Llama4Model::embed(const int32_t* tokens, int64_t T, const int64_t* pos, float* out, RunContext& rc) const {
  const Llama4Config& c = config_;
  const TypeTraits& tt = *type_traits(weights_.token_embd.type);
  const size_t rb = row_bytes(tt, c.n_embd);
  for (int64_t t = 0; t < T; t++) {
    MOESCOPE_CHECK(tokens[t] >= 0 && tokens[t] < c.n_vocab, "BAD_TOKEN", "token id %d at position %lld is outside the vocabulary (0..%lld)",
                   tokens[t], (long long)pos[t], (long long)c.n_vocab - 1);
    const float* ov = rc.embed_override ? rc.embed_override(pos[t]) : nullptr;
    if (ov) memcpy(out + t * c.n_embd, ov, c.n_embd * sizeof(float));
    else tt.to_float(weights_.token_embd.data + (size_t)tokens[t] * rb, out + t * c.n_embd, c.n_embd);
  }
}

// Rows entering the KV cache: copied (F32) or rounded to bfloat16 once (BF16).
static void kv_store(KvType t, const float* src, int64_t n, uint8_t* dst) {
  if (t == KvType::F32) {
    memcpy(dst, src, n * sizeof(float));
    return;
  }
  uint16_t* d16 = (uint16_t*)dst;
  for (int64_t i = 0; i < n; i++) d16[i] = quant::fp32_to_bf16(src[i]);
}

// ---------------------------------------------------------------------------------------------------
// Attention (spec §2.4)
void Llama4Model::attention(int il, Session& s, const float* x, float* out, int64_t T, const int64_t* pos, RunContext& rc) const {
  const Llama4Config& c = config_;
  const LayerPlan& plan = c.layers[il];
  const LayerWeights& w = weights_.layers[il];
  const int64_t H = c.n_head, Hkv = c.n_head_kv, Dh = c.head_dim;
  const Precision prec = rc.fast ? Precision::Fast : Precision::Exact;
  Scratch::Scope scope(s.scratch);
  float* q = s.scratch.take<float>(T * H * Dh);
  float* k = s.scratch.take<float>(T * Hkv * Dh);
  float* v = s.scratch.take<float>(T * Hkv * Dh);
  float* z = s.scratch.take<float>(T * H * Dh);
  // q = a Wq^T [T, H, Dh], k = a Wk^T and v = a Wv^T [T, Hkv, Dh], in one pass over the thread pool.
  op_matmul_group(default_pool(), {{&w.wq, q, H * Dh}, {&w.wk, k, Hkv * Dh}, {&w.wv, v, Hkv * Dh}}, x, c.n_embd, T, prec);
  hook(rc, HookPoint::Q, il, q, T, H * Dh, pos);
  hook(rc, HookPoint::K, il, k, T, Hkv * Dh, pos);
  hook(rc, HookPoint::V, il, v, T, Hkv * Dh, pos);

  if (plan.use_rope) {
    // Interleaved pairs; the HF checkpoint keeps Meta's row order (no rotate_half permutation).
    op_rope(q, T, H, Dh, pos, c.rope_freq.data());
    op_rope(k, T, Hkv, Dh, pos, c.rope_freq.data());
    // Scout: weightless RMS-norm of each head AFTER RoPE, eps = rms_norm_eps (not MLX's 1e-6).
    if (plan.qk_norm) {
      op_rms_norm(default_pool(), q, nullptr, q, T * H, Dh, c.rms_eps);
      op_rms_norm(default_pool(), k, nullptr, k, T * Hkv, Dh, c.rms_eps);
    }
  } else if (plan.temperature_tuning) {
    // NoPE layers scale only q, by the query's own position.
    for (int64_t t = 0; t < T; t++) {
      const float st = (float)attn_temperature(c, pos[t]);
      for (int64_t i = 0; i < H * Dh; i++) q[t * H * Dh + i] *= st;
    }
  }
  hook(rc, HookPoint::RotQ, il, q, T, H * Dh, pos);
  hook(rc, HookPoint::RotK, il, k, T, Hkv * Dh, pos);

  // Append to the cache. A chunked layer starts over at each chunk boundary (segments never cross one).
  KvLayer& kv = s.layers[il];
  if (plan.chunked_attn) {
    const int64_t chunk_start = pos[0] / c.attn_chunk * c.attn_chunk;
    if (kv.pos0 != chunk_start) { kv.pos0 = chunk_start; kv.n = 0; }
  }
  const int64_t slot0 = pos[0] - kv.pos0;
  MOESCOPE_CHECK(slot0 == kv.n, "INTERNAL", "layer %d: KV cache holds %lld slots but the next position is %lld", il, (long long)kv.n, (long long)pos[0]);
  const size_t eb = kv_elem_bytes(s.kv_type), need = (size_t)(slot0 + T) * Hkv * Dh * eb;
  if (kv.k.size() < need) { kv.k.resize(std::max(need, kv.k.size() * 2)); kv.v.resize(kv.k.size()); }
  kv_store(s.kv_type, k, T * Hkv * Dh, kv.k.data() + slot0 * Hkv * Dh * eb);
  kv_store(s.kv_type, v, T * Hkv * Dh, kv.v.data() + slot0 * Hkv * Dh * eb);
  kv.n = slot0 + T;

  uint8_t* head_mask = nullptr;
  if (rc.interventions)
    for (auto& ah : rc.interventions->ablate_heads)
      if (ah.layer == il && ah.head >= 0 && ah.head < H) {
        if (!head_mask) head_mask = s.scratch.zeros<uint8_t>(H);
        head_mask[ah.head] = 1;
      }

  AttentionArgs a;
  a.q = q; a.k_cache = kv.k.data(); a.v_cache = kv.v.data(); a.kv_type = s.kv_type; a.cache_pos0 = kv.pos0;
  a.T = T; a.H = H; a.Hkv = Hkv; a.Dh = Dh; a.pos = pos;
  a.chunk = plan.chunked_attn ? c.attn_chunk : 0;
  a.out = z;
  a.head_mask = head_mask;
  struct Ctx { CaptureStore* cs; int il; const int64_t* pos; } ctx{rc.capture, il, pos};
  if (rc.capture && rc.capture->plan().wants(HookPoint::Pattern, il)) {
    // Exact probabilities are produced only for captured layers; the others skip the extra writes.
    rc.capture->begin_pattern(il, T, pos);
    a.probs_ctx = &ctx;
    a.probs_dst = [](void* p, int64_t t, int64_t h) {
      auto* cx = (Ctx*)p;
      return cx->cs->pattern_row(cx->il, cx->pos[t], (int)h);
    };
  }
  op_attention(default_pool(), a);
  hook(rc, HookPoint::Z, il, z, T, H * Dh, pos);
  op_matmul(default_pool(), w.wo, z, H * Dh, T, out, c.n_embd, prec);  // o_proj   [T, D]
}

// ---------------------------------------------------------------------------------------------------
// SwiGLU feed-forward (spec §2.5), for T rows: out = (silu(x Wg^T) * x Wu^T) Wd^T. The dense FFN of
// Maverick's even layers, the shared expert, and each routed expert.
static void swiglu(Scratch& sc, const Mat& gate, const Mat& up, const Mat& down, const float* x, float* out, int64_t T,
                   int64_t D, int64_t F, Precision prec) {
  Scratch::Scope scope(sc);
  float* g = sc.take<float>(T * F);
  float* u = sc.take<float>(T * F);
  op_matmul_group(default_pool(), {{&gate, g, F}, {&up, u, F}}, x, D, T, prec);
  op_silu_mul(default_pool(), g, u, T * F);
  op_matmul(default_pool(), down, g, F, T, out, D, prec);
}

// ---------------------------------------------------------------------------------------------------
// MoE feed-forward (spec §2.6)
void Llama4Model::moe(int il, Scratch& sc, const float* x, float* out, int64_t T, const int64_t* pos, RunContext& rc) const {
  const Llama4Config& c = config_;
  const LayerWeights& w = weights_.layers[il];
  const int64_t D = c.n_embd, E = c.n_expert, K = c.n_expert_used, F = c.n_ff_exp;
  const Interventions* iv = rc.interventions;
  const Precision prec = rc.fast ? Precision::Fast : Precision::Exact;

  // 1. Router logits in float32 (always, whatever the weight type).
  Scratch::Scope scope(sc);
  float* logits = sc.take<float>(T * E);
  op_matmul(default_pool(), w.router, x, D, T, logits, E);  // [T, E]
  hook(rc, HookPoint::RouterLogits, il, logits, T, E, pos);

  // 2. Top-k on the raw logits (plus any router bias); 3. gate = sigmoid(raw logit of the chosen expert).
  int32_t* experts = sc.take<int32_t>(T * K);
  float* gates = sc.take<float>(T * K);
  uint8_t* zeroed = sc.zeros<uint8_t>(T * K);
  float* sel = sc.take<float>(E);
  int32_t* order = sc.take<int32_t>(E);
  for (int64_t t = 0; t < T; t++) {
    const float* z = logits + t * E;
    std::copy(z, z + E, sel);
    if (iv)
      for (auto& rb : iv->router_biases)
        if (rb.layer == il) for (int64_t e = 0; e < E; e++) sel[e] += rb.bias[e];
    for (int64_t e = 0; e < E; e++) order[e] = (int32_t)e;
    // Ties go to the lower expert index (stable), like llama.cpp's argsort.
    std::stable_sort(order, order + E, [&](int32_t a, int32_t b) { return sel[a] > sel[b]; });
    int64_t next = 0;
    for (int64_t j = 0; j < K; j++) {
      int32_t e = order[next++];
      if (iv) {
        for (auto& ab : iv->ablate_experts) {
          if (ab.layer != il || ab.expert != e) continue;
          if (ab.reroute) {  // next best expert that is not ablated in this layer
            auto ablated = [&](int32_t x) {
              for (auto& a2 : iv->ablate_experts) if (a2.layer == il && a2.expert == x) return true;
              return false;
            };
            while (next < E && ablated(order[next])) next++;
            if (next < E) e = order[next++];
          } else {
            zeroed[t * K + j] = 1;
          }
        }
        for (auto& rp : iv->replays) {
          int64_t r = pos[t] - rp.pos0;
          if (rp.layer == il && r >= 0 && (size_t)((r + 1) * rp.k) <= rp.experts.size() && j < rp.k) e = rp.experts[r * rp.k + j];
        }
        for (auto& fr : iv->force_routes)
          if (fr.layer == il && (fr.pos < 0 || fr.pos == pos[t]) && j == 0) e = fr.expert;
      }
      MOESCOPE_CHECK(e >= 0 && e < E, "BAD_INTERVENTION", "layer %d: expert %d is outside 0..%lld", il, e, (long long)E - 1);
      experts[t * K + j] = e;
      gates[t * K + j] = 1.0f / (1.0f + std::exp(-z[e]));
    }
  }
  if (rc.capture) rc.capture->add_int(HookPoint::ExpertIndices, il, experts, T, K, pos);
  hook(rc, HookPoint::ExpertWeights, il, gates, T, K, pos);

  // 4. Routed experts, batched by expert: gather the tokens routed to e, scale each INPUT row by its
  //    gate (not the output: SwiGLU is not linear), run the expert once on the group, scatter back.
  float* routed = sc.zeros<float>(T * D);
  // Group the (token, gate) pairs by expert (counting sort; tokens stay in order within an expert).
  int64_t* first = sc.zeros<int64_t>(E + 1);  // expert e's pairs are first[e] .. first[e+1]-1
  for (int64_t i = 0; i < T * K; i++)
    if (!zeroed[i]) first[experts[i] + 1]++;
  int64_t max_rows = 0;
  for (int64_t e = 0; e < E; e++) {
    max_rows = std::max(max_rows, first[e + 1]);
    first[e + 1] += first[e];
  }
  int64_t* row_token = sc.take<int64_t>(T * K);
  float* row_gate = sc.take<float>(T * K);
  int64_t* fill = sc.take<int64_t>(E);
  std::copy(first, first + E, fill);
  for (int64_t i = 0; i < T * K; i++)
    if (!zeroed[i]) {
      const int64_t r = fill[experts[i]]++;
      row_token[r] = i / K;
      row_gate[r] = gates[i];
    }
  float* xin = sc.take<float>(max_rows * D);
  float* y = sc.take<float>(max_rows * D);
  for (int64_t e = 0; e < E; e++) {
    const int64_t r0 = first[e], n = first[e + 1] - r0;
    if (n == 0) continue;  // weights of experts nobody chose are never touched
    for (int64_t r = 0; r < n; r++)
      for (int64_t d = 0; d < D; d++) xin[r * D + d] = x[row_token[r0 + r] * D + d] * row_gate[r0 + r];
    swiglu(sc, w.gate_exps.expert(e), w.up_exps.expert(e), w.down_exps.expert(e), xin, y, n, D, F, prec);
    for (int64_t r = 0; r < n; r++) op_axpy(routed + row_token[r0 + r] * D, y + r * D, 1.0f, D);
  }
  hook(rc, HookPoint::RoutedOut, il, routed, T, D, pos);

  // 5. Shared expert on the un-scaled input.
  swiglu(sc, w.shexp_gate, w.shexp_up, w.shexp_down, x, out, T, D, F, prec);
  hook(rc, HookPoint::SharedOut, il, out, T, D, pos);

  // 6. FFN(b) = shared + routed.
  op_add(default_pool(), out, routed, T * D);
}

// ---------------------------------------------------------------------------------------------------
// One segment: T tokens that stay inside one attention chunk.
std::vector<float> Llama4Model::forward_segment(Session& s, const int32_t* tokens, int64_t T, RunContext& rc) const {
  const Llama4Config& c = config_;
  const int64_t D = c.n_embd;
  Scratch::Scope scope(s.scratch);
  int64_t* pos = s.scratch.take<int64_t>(T);
  for (int64_t t = 0; t < T; t++) pos[t] = s.n_past + t;

  float* x = s.scratch.take<float>(T * D);
  float* a = s.scratch.take<float>(T * D);
  float* f = s.scratch.take<float>(T * D);
  embed(tokens, T, pos, x, rc);  // h = embed_tokens[ids]   [T, D]
  hook(rc, HookPoint::Embed, 0, x, T, D, pos);

  const Precision prec = rc.fast ? Precision::Fast : Precision::Exact;
  for (int il = 0; il < (int)c.n_layer; il++) {
    const LayerWeights& w = weights_.layers[il];
    hook(rc, HookPoint::ResidPre, il, x, T, D, pos);
    op_rms_norm(default_pool(), x, w.attn_norm.data(), a, T, D, c.rms_eps);  // a = RMSNorm(h)
    hook(rc, HookPoint::Ln1, il, a, T, D, pos);
    attention(il, s, a, f, T, pos, rc);                    // h += Attention(a)
    hook(rc, HookPoint::AttnOut, il, f, T, D, pos);
    op_add(default_pool(), x, f, T * D);
    hook(rc, HookPoint::ResidMid, il, x, T, D, pos);
    op_rms_norm(default_pool(), x, w.ffn_norm.data(), a, T, D, c.rms_eps);   // b = RMSNorm(h)
    hook(rc, HookPoint::Ln2, il, a, T, D, pos);
    if (c.layers[il].is_moe) moe(il, s.scratch, a, f, T, pos, rc);                // h += FFN(b)
    else swiglu(s.scratch, w.ffn_gate, w.ffn_up, w.ffn_down, a, f, T, D, c.n_ff, prec);  //   (dense)
    hook(rc, HookPoint::MlpOut, il, f, T, D, pos);
    op_add(default_pool(), x, f, T * D);
    hook(rc, HookPoint::ResidPost, il, x, T, D, pos);
    check_cancel(rc);
  }

  // Final norm and head for the rows asked for (and the rows the capture plan wants).
  int64_t r0 = T - std::min(T, std::max<int64_t>(0, rc.logits_last));
  if (rc.capture && (rc.capture->plan().any(HookPoint::LnFinal) || rc.capture->plan().any(HookPoint::Logits)))
    for (int64_t t = 0; t < r0; t++)
      if (rc.capture->plan().in_range(pos[t])) { r0 = t; break; }
  const int64_t R = T - r0;
  std::vector<float> logits;
  if (R > 0) {
    float* h = s.scratch.take<float>(R * D);
    op_rms_norm(default_pool(), x + r0 * D, weights_.output_norm.data(), h, R, D, c.rms_eps);
    hook(rc, HookPoint::LnFinal, 0, h, R, D, pos + r0);
    logits.resize(R * c.n_vocab);
    op_matmul(default_pool(), weights_.output, h, D, R, logits.data(), c.n_vocab, prec);  // logits = h lm_head^T
    hook(rc, HookPoint::Logits, 0, logits.data(), R, c.n_vocab, pos + r0);
    const int64_t keep = std::min(R, std::max<int64_t>(0, rc.logits_last));
    logits.erase(logits.begin(), logits.end() - keep * c.n_vocab);
  }
  s.n_past += T;
  s.tokens.insert(s.tokens.end(), tokens, tokens + T);
  return logits;
}

std::vector<float> Llama4Model::forward(Session& s, const int32_t* tokens, int64_t T, RunContext& rc) const {
  std::vector<float> out;
  bool any_chunked = false;
  for (auto& L : config_.layers) any_chunked |= L.chunked_attn;
  int64_t done = 0;
  const int64_t want = rc.logits_last;
  while (done < T) {
    int64_t n = std::min(T - done, kMaxSegment);
    if (any_chunked) n = std::min(n, config_.attn_chunk - (s.n_past % config_.attn_chunk));
    RunContext seg = rc;
    // Rows of this segment that fall in the last `want` rows of the whole call.
    seg.logits_last = std::max<int64_t>(0, std::min(n, want - (T - done - n)));
    std::vector<float> l = forward_segment(s, tokens + done, n, seg);
    if (out.empty()) out = std::move(l);  // a decode step: no copy of its V logits
    else out.insert(out.end(), l.begin(), l.end());
    done += n;
  }
  return out;
}

Session Llama4Model::new_session(int64_t max_len, KvType kv_type) const {
  Session s;
  s.kv_type = kv_type;
  s.layers.resize(config_.n_layer);
  const int64_t kv_row = config_.n_head_kv * config_.head_dim;
  for (int64_t il = 0; il < config_.n_layer; il++) {
    // Chunked layers never hold more than one chunk; global layers hold the whole run.
    int64_t slots = config_.layers[il].chunked_attn ? std::min(max_len, config_.attn_chunk) : max_len;
    s.layers[il].k.resize((size_t)std::max<int64_t>(slots, 1) * kv_row * kv_elem_bytes(kv_type));
    s.layers[il].v.resize(s.layers[il].k.size());
  }
  return s;
}

uint64_t Llama4Model::active_bytes_per_token() const {
  const Llama4Config& c = config_;
  uint64_t b = weights_.output.bytes();
  for (int64_t il = 0; il < c.n_layer; il++) {
    const LayerWeights& w = weights_.layers[il];
    b += w.wq.bytes() + w.wk.bytes() + w.wv.bytes() + w.wo.bytes();
    if (c.layers[il].is_moe)
      b += w.router.bytes() + (uint64_t)c.n_expert_used * (w.gate_exps.base.bytes() + w.up_exps.base.bytes() + w.down_exps.base.bytes()) +
           w.shexp_gate.bytes() + w.shexp_up.bytes() + w.shexp_down.bytes();
    else
      b += w.ffn_gate.bytes() + w.ffn_up.bytes() + w.ffn_down.bytes();
  }
  return b;
}

}  // namespace moescope
