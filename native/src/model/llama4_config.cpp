#include "model/llama4_config.h"

#include <cmath>

#include "common/error.h"
#include "io/gguf.h"
#include "ops/quant.h"

namespace moescope {

namespace {

std::vector<double> plain_rope_freqs(double theta, int64_t head_dim) {
  std::vector<double> f(head_dim / 2);
  for (int64_t j = 0; j < head_dim / 2; j++) f[j] = std::pow(theta, -2.0 * (double)j / (double)head_dim);
  return f;
}

void validate(Llama4Config& c) {
  const char* src = c.source.c_str();
  MOESCOPE_CHECK(c.n_embd > 0 && c.n_layer > 0 && c.n_head > 0 && c.n_head_kv > 0 && c.head_dim > 0 && c.n_vocab > 0,
                 "CONFIG_INVALID", "%s: sizes must be positive (hidden %lld, layers %lld, heads %lld/%lld, head_dim %lld, vocab %lld)",
                 src, (long long)c.n_embd, (long long)c.n_layer, (long long)c.n_head, (long long)c.n_head_kv,
                 (long long)c.head_dim, (long long)c.n_vocab);
  MOESCOPE_CHECK(c.n_layer <= 1024 && c.n_head <= 4096 && c.head_dim <= 4096 && c.head_dim % 2 == 0 && c.n_embd < (1 << 20),
                 "CONFIG_INVALID", "%s: implausible sizes (layers %lld, heads %lld, head_dim %lld)", src, (long long)c.n_layer,
                 (long long)c.n_head, (long long)c.head_dim);
  MOESCOPE_CHECK(c.n_head % c.n_head_kv == 0, "CONFIG_INVALID", "%s: %lld query heads are not a multiple of %lld KV heads", src,
                 (long long)c.n_head, (long long)c.n_head_kv);
  MOESCOPE_CHECK(c.n_expert >= 0 && c.n_expert <= 4096 && c.n_expert_used >= 0 && c.n_expert_used <= c.n_expert, "CONFIG_INVALID",
                 "%s: %lld experts with %lld per token", src, (long long)c.n_expert, (long long)c.n_expert_used);
  MOESCOPE_CHECK(c.rms_eps > 0 && c.rms_eps < 1 && c.rope_theta > 0, "CONFIG_INVALID", "%s: bad rms_norm_eps or rope_theta", src);
  MOESCOPE_CHECK((int64_t)c.rope_freq.size() == c.head_dim / 2, "CONFIG_INVALID", "%s: %zu RoPE frequencies for head_dim %lld", src,
                 c.rope_freq.size(), (long long)c.head_dim);
  for (auto& L : c.layers)
    MOESCOPE_CHECK(!L.is_moe || (c.n_expert > 0 && c.n_expert_used > 0 && c.n_ff_exp > 0), "CONFIG_INVALID",
                   "%s: MoE layers need experts (expert count %lld, used %lld, expert ff %lld)", src, (long long)c.n_expert,
                   (long long)c.n_expert_used, (long long)c.n_ff_exp);
}

}  // namespace

std::vector<double> llama3_rope_freqs(double theta, int64_t head_dim, double factor, double low, double high, double orig) {
  std::vector<double> f = plain_rope_freqs(theta, head_dim);
  const double low_wavelen = orig / low, high_wavelen = orig / high;
  for (auto& w : f) {
    double wavelen = 2 * M_PI / w;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) { w /= factor; continue; }
    double smooth = (orig / wavelen - low) / (high - low);
    w = (1 - smooth) * w / factor + smooth * w;
  }
  return f;
}

Llama4Config config_from_gguf(const GgufFile& g) {
  Llama4Config c;
  c.source = g.path();
  c.format = "gguf";
  std::string arch = g.get_str("general.architecture");
  MOESCOPE_CHECK(arch == "llama4", "CONFIG_UNKNOWN_ARCH", "%s: general.architecture is \"%s\"; moescope runs \"llama4\" models",
                 g.path().c_str(), arch.c_str());
  const std::string p = "llama4.";
  c.n_embd = g.get_int(p + "embedding_length");
  c.n_layer = g.get_int(p + "block_count");
  c.n_head = g.get_int(p + "attention.head_count");
  c.n_head_kv = g.get_int(p + "attention.head_count_kv", c.n_head);
  c.head_dim = g.get_int(p + "attention.key_length", c.n_head > 0 ? c.n_embd / c.n_head : 0);
  c.n_ff = g.get_int(p + "feed_forward_length", 0);
  c.n_ff_exp = g.get_int(p + "expert_feed_forward_length", 0);
  c.n_expert = g.get_int(p + "expert_count", 0);
  c.n_expert_used = g.get_int(p + "expert_used_count", 0);
  c.interleave_moe_layer_step = g.get_int(p + "interleave_moe_layer_step", 1);
  c.rms_eps = g.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = g.get_float(p + "rope.freq_base", 500000);
  c.context_length = g.get_int(p + "context_length", 0);
  if (auto v = g.find(p + "vocab_size")) c.n_vocab = v->i;
  else if (auto t = g.find("tokenizer.ggml.tokens")) c.n_vocab = (int64_t)t->size();
  MOESCOPE_CHECK(c.interleave_moe_layer_step >= 1, "CONFIG_INVALID", "%s: interleave_moe_layer_step must be >= 1", g.path().c_str());
  // llama.cpp writes attention.sliding_window = 0 only for configs without chunked attention.
  if (auto sw = g.find(p + "attention.sliding_window")) c.attn_chunk = sw->i;
  // Not stored in GGUF; llama.cpp hard-codes them for llama4 (src/models/llama4.cpp).
  const int64_t nope_interval = 4;
  // llama.cpp derives QK-norm from the model type: off for the 128-expert Maverick layout.
  const bool use_qk_norm = g.get_bool(p + "use_qk_norm", c.n_expert != 128);
  c.layers.resize(c.n_layer > 0 && c.n_layer <= 1024 ? c.n_layer : 0);
  for (int64_t i = 0; i < (int64_t)c.layers.size(); i++) {
    LayerPlan& L = c.layers[i];
    L.use_rope = (i + 1) % nope_interval != 0;
    L.chunked_attn = L.use_rope && c.attn_chunk > 0;
    L.qk_norm = use_qk_norm && L.use_rope;
    L.temperature_tuning = !L.use_rope;
    L.is_moe = c.n_expert > 0 && (i + 1) % c.interleave_moe_layer_step == 0;
  }
  if (c.head_dim > 0 && c.head_dim % 2 == 0 && c.head_dim <= 4096) {
    c.rope_freq = plain_rope_freqs(c.rope_theta, c.head_dim);
    if (const TensorView* rf = g.find_tensor("rope_freqs.weight")) {
      MOESCOPE_CHECK(rf->type == (uint32_t)GgmlType::F32 && rf->numel() == c.head_dim / 2, "GGUF_BAD_TENSOR",
                     "%s: rope_freqs.weight must be F32 with %lld values, found %s", g.path().c_str(), (long long)(c.head_dim / 2),
                     rf->shape_str().c_str());
      const float* div = (const float*)rf->data;
      for (int64_t j = 0; j < c.head_dim / 2; j++) {
        MOESCOPE_CHECK(std::isfinite(div[j]) && div[j] > 0, "GGUF_BAD_TENSOR", "%s: rope_freqs.weight[%lld] = %g", g.path().c_str(),
                       (long long)j, div[j]);
        c.rope_freq[j] /= (double)div[j];
      }
      c.rope_scaling = "rope_freqs";
    }
  }
  validate(c);
  return c;
}

namespace {

const Json& need(const Json& o, const char* key, const std::string& src) {
  const Json* v = o.get(key);
  MOESCOPE_CHECK(v && !v->is_null(), "CONFIG_MISSING_KEY", "%s: text config key \"%s\" is missing", src.c_str(), key);
  return *v;
}
int64_t need_int(const Json& o, const char* key, const std::string& src) {
  const Json& v = need(o, key, src);
  MOESCOPE_CHECK(v.is_number() && v.num == std::floor(v.num), "CONFIG_BAD_KEY", "%s: \"%s\" must be an integer", src.c_str(), key);
  return (int64_t)v.num;
}
int64_t opt_int(const Json& o, const char* key, int64_t dflt, const std::string& src) {
  const Json* v = o.get(key);
  return (v && !v->is_null()) ? need_int(o, key, src) : dflt;
}
double opt_num(const Json& o, const char* key, double dflt, const std::string& src) {
  const Json* v = o.get(key);
  if (!v || v->is_null()) return dflt;
  MOESCOPE_CHECK(v->is_number(), "CONFIG_BAD_KEY", "%s: \"%s\" must be a number", src.c_str(), key);
  return v->num;
}
bool truthy(const Json* v) {
  if (!v || v->is_null()) return false;
  if (v->is_bool()) return v->b;
  if (v->is_number()) return v->num != 0;
  return true;
}

}  // namespace

Llama4Config config_from_hf(const Json& root, const std::string& src) {
  MOESCOPE_CHECK(root.is_object(), "CONFIG_INVALID", "%s: not a JSON object", src.c_str());
  const Json* arch = root.get("architectures");
  std::string a = (arch && arch->is_array() && !arch->arr.empty() && arch->arr[0].is_string()) ? arch->arr[0].str : "";
  const Json* tc = root.get("text_config");
  const Json& t = (tc && tc->is_object()) ? *tc : root;
  const Json* mt = t.get("model_type");
  std::string model_type = mt && mt->is_string() ? mt->str : "";
  MOESCOPE_CHECK(a == "Llama4ForConditionalGeneration" || a == "Llama4ForCausalLM" || model_type == "llama4_text" || model_type == "llama4",
                 "CONFIG_UNKNOWN_ARCH", "%s: architecture \"%s\" (model_type \"%s\") is not Llama 4", src.c_str(), a.c_str(), model_type.c_str());
  Llama4Config c;
  c.source = src;
  c.format = "hf";
  c.n_embd = need_int(t, "hidden_size", src);
  c.n_layer = need_int(t, "num_hidden_layers", src);
  c.n_head = need_int(t, "num_attention_heads", src);
  c.n_head_kv = opt_int(t, "num_key_value_heads", c.n_head, src);
  c.head_dim = opt_int(t, "head_dim", c.n_head > 0 ? c.n_embd / c.n_head : 0, src);
  c.n_vocab = need_int(t, "vocab_size", src);
  c.n_ff_exp = need_int(t, "intermediate_size", src);
  c.n_ff = opt_int(t, "intermediate_size_mlp", 0, src);
  c.n_expert = opt_int(t, "num_local_experts", 0, src);
  c.n_expert_used = opt_int(t, "num_experts_per_tok", c.n_expert > 0 ? 1 : 0, src);
  c.interleave_moe_layer_step = opt_int(t, "interleave_moe_layer_step", 1, src);
  c.rms_eps = opt_num(t, "rms_norm_eps", 1e-5, src);
  c.rope_theta = opt_num(t, "rope_theta", 500000, src);
  c.attn_chunk = opt_int(t, "attention_chunk_size", 8192, src);
  c.attn_scale = opt_num(t, "attn_scale", 0.1, src);
  c.floor_scale = opt_num(t, "floor_scale", 8192, src);
  c.context_length = opt_int(t, "max_position_embeddings", 0, src);
  const bool use_qk_norm = truthy(t.get("use_qk_norm"));
  const Json* tt = t.get("attn_temperature_tuning");
  const bool temperature_tuning = tt ? truthy(tt) : true;
  MOESCOPE_CHECK(c.n_layer > 0 && c.n_layer <= 1024, "CONFIG_INVALID", "%s: num_hidden_layers = %lld", src.c_str(), (long long)c.n_layer);
  MOESCOPE_CHECK(c.interleave_moe_layer_step >= 1, "CONFIG_INVALID", "%s: interleave_moe_layer_step must be >= 1", src.c_str());

  std::vector<bool> moe(c.n_layer, false), rope(c.n_layer, true);
  if (const Json* ml = t.get("moe_layers"); ml && ml->is_array()) {
    for (auto& v : ml->arr) {
      MOESCOPE_CHECK(v.is_number() && v.num >= 0 && v.num < c.n_layer, "CONFIG_BAD_KEY", "%s: moe_layers has an entry outside 0..%lld",
                     src.c_str(), (long long)c.n_layer - 1);
      moe[(size_t)v.num] = true;
    }
  } else if (c.n_expert > 0) {
    for (int64_t i = c.interleave_moe_layer_step - 1; i < c.n_layer; i += c.interleave_moe_layer_step) moe[i] = true;
  }
  if (const Json* nr = t.get("no_rope_layers"); nr && nr->is_array() && !nr->arr.empty()) {
    MOESCOPE_CHECK((int64_t)nr->arr.size() == c.n_layer, "CONFIG_BAD_KEY", "%s: no_rope_layers has %zu entries for %lld layers", src.c_str(),
                   nr->arr.size(), (long long)c.n_layer);
    for (int64_t i = 0; i < c.n_layer; i++) rope[i] = truthy(&nr->arr[i]);  // 1 = uses RoPE
  } else {
    int64_t interval = opt_int(t, "no_rope_layer_interval", 4, src);
    for (int64_t i = 0; i < c.n_layer; i++) rope[i] = interval <= 0 || (i + 1) % interval != 0;
  }
  c.layers.resize(c.n_layer);
  for (int64_t i = 0; i < c.n_layer; i++) {
    LayerPlan& L = c.layers[i];
    L.use_rope = rope[i];
    L.chunked_attn = L.use_rope && c.attn_chunk > 0;
    L.qk_norm = use_qk_norm && L.use_rope;
    L.temperature_tuning = !L.use_rope && temperature_tuning;
    L.is_moe = moe[i];
  }
  if (c.head_dim > 0 && c.head_dim % 2 == 0 && c.head_dim <= 4096) {
    c.rope_freq = plain_rope_freqs(c.rope_theta, c.head_dim);
    const Json* rs = t.get("rope_scaling");
    if (rs && rs->is_object()) {
      const Json* ty = rs->get("rope_type");
      if (!ty) ty = rs->get("type");
      std::string type = ty && ty->is_string() ? ty->str : "";
      MOESCOPE_CHECK(type == "llama3" || type == "default", "CONFIG_UNSUPPORTED", "%s: rope_scaling type \"%s\" is not supported (llama3 is)",
                     src.c_str(), type.c_str());
      if (type == "llama3") {
        double factor = opt_num(*rs, "factor", 8, src), low = opt_num(*rs, "low_freq_factor", 1, src);
        double high = opt_num(*rs, "high_freq_factor", 4, src), orig = opt_num(*rs, "original_max_position_embeddings", 8192, src);
        MOESCOPE_CHECK(factor > 0 && low > 0 && high > 0 && orig > 0, "CONFIG_BAD_KEY", "%s: rope_scaling values must be positive", src.c_str());
        // low == high leaves no medium band (spec §2.4); the smoothing formula is never reached then.
        c.rope_freq = llama3_rope_freqs(c.rope_theta, c.head_dim, factor, low, high, orig);
        c.rope_scaling = "llama3";
      }
    }
  }
  validate(c);
  return c;
}

std::string Llama4Config::describe() const {
  std::string s = strfmt("source %s (%s)\nvocab %lld, hidden %lld, layers %lld, heads %lld / kv %lld x %lld\n", source.c_str(), format.c_str(),
                         (long long)n_vocab, (long long)n_embd, (long long)n_layer, (long long)n_head, (long long)n_head_kv, (long long)head_dim);
  s += strfmt("experts %lld (top-%lld), expert ff %lld, dense ff %lld, moe step %lld\n", (long long)n_expert, (long long)n_expert_used,
              (long long)n_ff_exp, (long long)n_ff, (long long)interleave_moe_layer_step);
  s += strfmt("rms_eps %g, rope_theta %g, rope scaling %s, chunk %lld, temperature tuning scale %g floor %g\n", rms_eps, rope_theta,
              rope_scaling.c_str(), (long long)attn_chunk, attn_scale, floor_scale);
  for (size_t i = 0; i < layers.size(); i++) {
    auto& L = layers[i];
    s += strfmt("layer %zu: %s%s%s, %s\n", i, L.use_rope ? "rope chunked" : "nope global", L.qk_norm ? " qk-norm" : "",
                L.temperature_tuning ? " temperature-tuned" : "", L.is_moe ? "moe" : "dense");
  }
  return s;
}

}  // namespace moescope
