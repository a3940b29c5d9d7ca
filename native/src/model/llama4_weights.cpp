#include "model/llama4_weights.h"

#include <functional>
#include <set>

#include "common/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "ops/quant.h"

namespace moescope {

size_t Mat::bytes() const {
  const TypeTraits* tt = type_traits(type);
  return in_major ? (size_t)n_in * row_bytes(*tt, n_out) : (size_t)n_out * row_bytes(*tt, n_in);
}

namespace {

// Looks tensors up by name, checks shapes, and remembers which names were used so that
// leftovers can be reported (a checkpoint with tensors we do not understand is not this model).
class Binder {
 public:
  Binder(std::string source, const std::vector<TensorView>& all, std::function<const TensorView*(const std::string&)> find)
      : source_(std::move(source)), all_(all), find_(std::move(find)) {}

  const TensorView& get(const std::string& name, std::vector<int64_t> ne) {
    const TensorView* t = find_(name);
    MOESCOPE_CHECK(t, "MODEL_MISSING_TENSOR", "%s: tensor %s is missing", source_.c_str(), name.c_str());
    MOESCOPE_CHECK(t->ne == ne, "MODEL_SHAPE_MISMATCH", "%s: tensor %s has shape (ggml order) %s, expected %s", source_.c_str(),
                   name.c_str(), t->shape_str().c_str(), TensorView{"", 0, ne}.shape_str().c_str());
    const TypeTraits* tt = type_traits(t->type);
    MOESCOPE_CHECK(tt && tt->supported, "MODEL_UNSUPPORTED_TYPE", "%s: tensor %s has type %s, which moescope cannot compute with yet",
                   source_.c_str(), name.c_str(), tt ? tt->name : "unknown");
    used_.insert(name);
    bytes_ += t->nbytes;
    return *t;
  }
  bool has(const std::string& name) const { return find_(name) != nullptr; }

  // Out-major matrix [n_out, n_in] (ggml ne = {n_in, n_out}).
  Mat mat(const std::string& name, int64_t n_in, int64_t n_out) {
    const TensorView& t = get(name, {n_in, n_out});
    return Mat{t.data, t.type, n_in, n_out, row_bytes(*type_traits(t.type), n_in), false, t.name.c_str()};
  }
  std::vector<float> vec(const std::string& name, int64_t n) {
    const TensorView& t = get(name, {n});
    std::vector<float> v(n);
    type_traits(t.type)->to_float(t.data, v.data(), n);
    return v;
  }
  // Stacked experts stored out-major per expert (GGUF ne = {n_in, n_out, E}).
  ExpertMats experts(const std::string& name, int64_t n_in, int64_t n_out, int64_t E) {
    const TensorView& t = get(name, {n_in, n_out, E});
    size_t rb = row_bytes(*type_traits(t.type), n_in);
    return ExpertMats{Mat{t.data, t.type, n_in, n_out, rb, false, t.name.c_str()}, rb * (size_t)n_out};
  }

  void check_all_used(const std::function<bool(const std::string&)>& ignorable) {
    std::string extra;
    int n = 0;
    for (auto& t : all_)
      if (!used_.count(t.name) && !ignorable(t.name)) {
        if (n++ < 5) extra += (extra.empty() ? "" : ", ") + t.name;
      }
    MOESCOPE_CHECK(n == 0, "MODEL_UNUSED_TENSOR", "%s: %d tensors are not part of a Llama 4 text model (%s%s)", source_.c_str(), n,
                   extra.c_str(), n > 5 ? ", ..." : "");
  }
  size_t bytes() const { return bytes_; }

 private:
  std::string source_;
  const std::vector<TensorView>& all_;
  std::function<const TensorView*(const std::string&)> find_;
  std::set<std::string> used_;
  size_t bytes_ = 0;
};

}  // namespace

Llama4Weights weights_from_gguf(const GgufFile& g, const Llama4Config& c) {
  Binder b(g.path(), g.tensors(), [&](const std::string& n) { return g.find_tensor(n); });
  const int64_t D = c.n_embd, Dq = c.n_head * c.head_dim, Dkv = c.n_head_kv * c.head_dim;
  Llama4Weights w;
  w.token_embd = b.get("token_embd.weight", {D, c.n_vocab});
  w.output_norm = b.vec("output_norm.weight", D);
  // llama.cpp falls back to the embedding when there is no separate head (tied weights).
  w.output = b.has("output.weight") ? b.mat("output.weight", D, c.n_vocab) : b.mat("token_embd.weight", D, c.n_vocab);
  if (b.has("rope_freqs.weight")) b.get("rope_freqs.weight", {c.head_dim / 2});
  w.layers.resize(c.n_layer);
  for (int64_t i = 0; i < c.n_layer; i++) {
    auto& L = w.layers[i];
    auto n = [&](const char* s) { return "blk." + std::to_string(i) + "." + s; };
    L.attn_norm = b.vec(n("attn_norm.weight"), D);
    L.wq = b.mat(n("attn_q.weight"), D, Dq);
    L.wk = b.mat(n("attn_k.weight"), D, Dkv);
    L.wv = b.mat(n("attn_v.weight"), D, Dkv);
    L.wo = b.mat(n("attn_output.weight"), Dq, D);
    L.ffn_norm = b.vec(n("ffn_norm.weight"), D);
    if (c.layers[i].is_moe) {
      L.router = b.mat(n("ffn_gate_inp.weight"), D, c.n_expert);
      L.gate_exps = b.experts(n("ffn_gate_exps.weight"), D, c.n_ff_exp, c.n_expert);
      L.up_exps = b.experts(n("ffn_up_exps.weight"), D, c.n_ff_exp, c.n_expert);
      L.down_exps = b.experts(n("ffn_down_exps.weight"), c.n_ff_exp, D, c.n_expert);
      L.shexp_gate = b.mat(n("ffn_gate_shexp.weight"), D, c.n_ff_exp);
      L.shexp_up = b.mat(n("ffn_up_shexp.weight"), D, c.n_ff_exp);
      L.shexp_down = b.mat(n("ffn_down_shexp.weight"), c.n_ff_exp, D);
    } else {
      L.ffn_gate = b.mat(n("ffn_gate.weight"), D, c.n_ff);
      L.ffn_up = b.mat(n("ffn_up.weight"), D, c.n_ff);
      L.ffn_down = b.mat(n("ffn_down.weight"), c.n_ff, D);
    }
  }
  b.check_all_used([](const std::string&) { return false; });
  w.mapped_bytes = b.bytes();
  return w;
}

Llama4Weights weights_from_hf(const SafetensorsSet& s, const Llama4Config& c) {
  Binder b(s.source(), s.tensors(), [&](const std::string& n) { return s.find_tensor(n); });
  const int64_t D = c.n_embd, Dq = c.n_head * c.head_dim, Dkv = c.n_head_kv * c.head_dim, F = c.n_ff_exp, E = c.n_expert;
  // Llama4ForConditionalGeneration prefixes the text model with "language_model."; Llama4ForCausalLM does not.
  const std::string pre = b.has("language_model.model.embed_tokens.weight") ? "language_model." : "";
  Llama4Weights w;
  w.token_embd = b.get(pre + "model.embed_tokens.weight", {D, c.n_vocab});
  w.output_norm = b.vec(pre + "model.norm.weight", D);
  w.output = b.has(pre + "lm_head.weight") ? b.mat(pre + "lm_head.weight", D, c.n_vocab) : b.mat(pre + "model.embed_tokens.weight", D, c.n_vocab);
  w.layers.resize(c.n_layer);
  for (int64_t i = 0; i < c.n_layer; i++) {
    auto& L = w.layers[i];
    auto n = [&](const std::string& s) { return pre + "model.layers." + std::to_string(i) + "." + s; };
    L.attn_norm = b.vec(n("input_layernorm.weight"), D);
    L.wq = b.mat(n("self_attn.q_proj.weight"), D, Dq);
    L.wk = b.mat(n("self_attn.k_proj.weight"), D, Dkv);
    L.wv = b.mat(n("self_attn.v_proj.weight"), D, Dkv);
    L.wo = b.mat(n("self_attn.o_proj.weight"), Dq, D);
    L.ffn_norm = b.vec(n("post_attention_layernorm.weight"), D);
    if (c.layers[i].is_moe) {
      L.router = b.mat(n("feed_forward.router.weight"), D, E);
      if (b.has(n("feed_forward.experts.gate_up_proj"))) {
        // Fused [E, D, 2F] tensor used as x @ W: in-major, gate = columns [0, F), up = columns [F, 2F).
        const TensorView& gu = b.get(n("feed_forward.experts.gate_up_proj"), {2 * F, D, E});
        const TypeTraits& tt = *type_traits(gu.type);
        MOESCOPE_CHECK(tt.block_size == 1, "MODEL_UNSUPPORTED_TYPE", "%s: %s must be a float type", s.source().c_str(), gu.name.c_str());
        size_t row = (size_t)(2 * F) * tt.type_size, per_expert = row * (size_t)D;
        L.gate_exps = ExpertMats{Mat{gu.data, gu.type, D, F, row, true, gu.name.c_str()}, per_expert};
        L.up_exps = ExpertMats{Mat{gu.data + (size_t)F * tt.type_size, gu.type, D, F, row, true, gu.name.c_str()}, per_expert};
        const TensorView& dn = b.get(n("feed_forward.experts.down_proj"), {D, F, E});
        MOESCOPE_CHECK(type_traits(dn.type)->block_size == 1, "MODEL_UNSUPPORTED_TYPE", "%s: %s must be a float type", s.source().c_str(),
                       dn.name.c_str());
        size_t drow = (size_t)D * type_traits(dn.type)->type_size;
        L.down_exps = ExpertMats{Mat{dn.data, dn.type, F, D, drow, true, dn.name.c_str()}, drow * (size_t)F};
      } else {
        // OFFLINE_QUANT_COMPATIBLE checkpoints: per-expert nn.Linear tensors. They must be evenly spaced in
        // one file for the stacked view; otherwise the layout is not supported.
        auto ex = [&](int64_t e, const char* proj) { return n("feed_forward.experts." + std::to_string(e) + "." + proj + ".weight"); };
        auto stack = [&](const char* proj, int64_t n_in, int64_t n_out) {
          Mat m0 = b.mat(ex(0, proj), n_in, n_out);
          size_t stride = 0;
          for (int64_t e = 1; e < E; e++) {
            Mat me = b.mat(ex(e, proj), n_in, n_out);
            size_t st = (size_t)(me.data - m0.data);
            if (e == 1) stride = st;
            MOESCOPE_CHECK(me.data > m0.data && st == stride * (size_t)e && me.type == m0.type, "MODEL_LAYOUT", "%s: per-expert tensors %s are not evenly laid out in one file",
                           s.source().c_str(), proj);
          }
          return ExpertMats{m0, stride};
        };
        L.gate_exps = stack("gate_proj", D, F);
        L.up_exps = stack("up_proj", D, F);
        L.down_exps = stack("down_proj", F, D);
      }
      L.shexp_gate = b.mat(n("feed_forward.shared_expert.gate_proj.weight"), D, F);
      L.shexp_up = b.mat(n("feed_forward.shared_expert.up_proj.weight"), D, F);
      L.shexp_down = b.mat(n("feed_forward.shared_expert.down_proj.weight"), F, D);
    } else {
      L.ffn_gate = b.mat(n("feed_forward.gate_proj.weight"), D, c.n_ff);
      L.ffn_up = b.mat(n("feed_forward.up_proj.weight"), D, c.n_ff);
      L.ffn_down = b.mat(n("feed_forward.down_proj.weight"), c.n_ff, D);
    }
  }
  // The vision tower and projector belong to the image path (issue 7), not to the text model.
  b.check_all_used([](const std::string& n) { return n.rfind("vision_model.", 0) == 0 || n.rfind("multi_modal_projector.", 0) == 0; });
  w.mapped_bytes = b.bytes();
  return w;
}

}  // namespace moescope
