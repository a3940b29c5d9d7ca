// Name maps of the vision tower (spec §5.1 HF, §5.4 mmproj GGUF). Both files store nn.Linear
// matrices out-major ([out, in], ggml ne = {in, out}) and the position table as [577, C] rows, so one
// binder serves both; only the names differ.
#include "vision/vision_weights.h"

#include <cstring>
#include <functional>
#include <set>

#include "common/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "ops/quant.h"

namespace moescope {

namespace {

class Binder {
 public:
  Binder(std::string source, const std::vector<TensorView>& all, std::function<const TensorView*(const std::string&)> find, VisionWeights& w)
      : source_(std::move(source)), all_(all), find_(std::move(find)), w_(w) {}

  const TensorView& get(const std::string& name, std::vector<int64_t> ne) {
    const TensorView* t = find_(name);
    MOESCOPE_CHECK(t, "MODEL_MISSING_TENSOR", "%s: vision tensor %s is missing", source_.c_str(), name.c_str());
    MOESCOPE_CHECK(t->ne == ne, "MODEL_SHAPE_MISMATCH", "%s: tensor %s has shape (ggml order) %s, expected %s", source_.c_str(), name.c_str(),
                   t->shape_str().c_str(), TensorView{"", 0, ne}.shape_str().c_str());
    const TypeTraits* tt = type_traits(t->type);
    MOESCOPE_CHECK(tt && tt->supported, "MODEL_UNSUPPORTED_TYPE", "%s: tensor %s has type %s, which moescope cannot compute with yet",
                   source_.c_str(), name.c_str(), tt ? tt->name : "unknown");
    used_.insert(name);
    w_.mapped_bytes += t->nbytes;
    return *t;
  }

  // Out-major [n_out, n_in]. A quantised row must hold whole blocks for the fused dot kernels; the
  // patch embedding (588 inputs) does not, so such a matrix is dequantised once to float32.
  Mat mat(const std::string& name, int64_t n_in, int64_t n_out) {
    const TensorView& t = get(name, {n_in, n_out});
    const TypeTraits& tt = *type_traits(t.type);
    if (n_in % tt.block_size == 0) return Mat{t.data, t.type, n_in, n_out, row_bytes(tt, n_in), false, t.name.c_str()};
    MOESCOPE_CHECK(t.numel() % tt.block_size == 0, "MODEL_UNSUPPORTED_TYPE", "%s: tensor %s (%s) does not hold whole %s blocks", source_.c_str(),
                   name.c_str(), t.shape_str().c_str(), tt.name);
    auto buf = std::make_shared<std::vector<uint8_t>>((size_t)t.numel() * sizeof(float));
    tt.to_float(t.data, (float*)buf->data(), t.numel());
    w_.owned.push_back(buf);
    return Mat{buf->data(), (uint32_t)GgmlType::F32, n_in, n_out, (size_t)n_in * sizeof(float), false, t.name.c_str()};
  }

  std::vector<float> vec(const std::string& name, std::vector<int64_t> ne) {
    const TensorView& t = get(name, ne);
    std::vector<float> v((size_t)t.numel());
    type_traits(t.type)->to_float(t.data, v.data(), t.numel());
    return v;
  }

  void check_all_used(const std::function<bool(const std::string&)>& ours) {
    std::string extra;
    int n = 0;
    for (auto& t : all_)
      if (ours(t.name) && !used_.count(t.name) && n++ < 5) extra += (extra.empty() ? "" : ", ") + t.name;
    MOESCOPE_CHECK(n == 0, "MODEL_UNUSED_TENSOR", "%s: %d vision tensors are not part of the Llama 4 vision tower (%s%s)", source_.c_str(), n,
                   extra.c_str(), n > 5 ? ", ..." : "");
  }

 private:
  std::string source_;
  const std::vector<TensorView>& all_;
  std::function<const TensorView*(const std::string&)> find_;
  VisionWeights& w_;
  std::set<std::string> used_;
};

// Names of one format; everything else (shapes, order) is shared.
struct Names {
  std::string patch, cls, pos, pre_w, pre_b, post_w, post_b, adapter1, adapter2, projector;
  std::function<std::string(int, const char*)> layer;  // (layer, role) -> name; role in q,k,v,o,fc1,fc2,ln1,ln2 with .weight/.bias suffix
};

void bind(Binder& b, VisionWeights& w, const Names& n, const VisionConfig& c) {
  const int64_t C = c.n_embd, F = c.n_ff;
  w.patch_embd = b.mat(n.patch, c.patch_dim(), C);
  w.class_embd = b.vec(n.cls, {C});
  w.pos_embd = b.vec(n.pos, {C, c.seq_len()});
  w.pre_ln_w = b.vec(n.pre_w, {C});
  w.pre_ln_b = b.vec(n.pre_b, {C});
  w.post_ln_w = b.vec(n.post_w, {C});
  w.post_ln_b = b.vec(n.post_b, {C});
  w.layers.resize(c.n_layer);
  for (int il = 0; il < (int)c.n_layer; il++) {
    VisionLayerWeights& L = w.layers[il];
    auto nm = [&](const char* role) { return n.layer(il, role); };
    L.ln1_w = b.vec(nm("ln1.weight"), {C});
    L.ln1_b = b.vec(nm("ln1.bias"), {C});
    L.wq = b.mat(nm("q.weight"), C, C);
    L.wk = b.mat(nm("k.weight"), C, C);
    L.wv = b.mat(nm("v.weight"), C, C);
    L.wo = b.mat(nm("o.weight"), C, C);
    L.bq = b.vec(nm("q.bias"), {C});
    L.bk = b.vec(nm("k.bias"), {C});
    L.bv = b.vec(nm("v.bias"), {C});
    L.bo = b.vec(nm("o.bias"), {C});
    L.ln2_w = b.vec(nm("ln2.weight"), {C});
    L.ln2_b = b.vec(nm("ln2.bias"), {C});
    L.fc1 = b.mat(nm("fc1.weight"), C, F);
    L.b1 = b.vec(nm("fc1.bias"), {F});
    L.fc2 = b.mat(nm("fc2.weight"), F, C);
    L.b2 = b.vec(nm("fc2.bias"), {C});
  }
  w.adapter_fc1 = b.mat(n.adapter1, c.shuffled_dim(), c.adapter_hidden);
  w.adapter_fc2 = b.mat(n.adapter2, c.adapter_hidden, c.adapter_out);
  w.projector = b.mat(n.projector, c.adapter_out, c.proj_out);
}

}  // namespace

VisionWeights vision_weights_from_hf(const SafetensorsSet& s, VisionConfig& c) {
  const TensorView* proj = s.find_tensor("multi_modal_projector.linear_1.weight");
  MOESCOPE_CHECK(proj && proj->ne.size() == 2, "MODEL_MISSING_TENSOR", "%s: multi_modal_projector.linear_1.weight is missing", s.source().c_str());
  if (c.proj_out <= 0) c.proj_out = proj->ne[1];
  c.validate(s.source());
  VisionWeights w;
  Binder b(s.source(), s.tensors(), [&](const std::string& n) { return s.find_tensor(n); }, w);
  Names n;
  n.patch = "vision_model.patch_embedding.linear.weight";
  n.cls = "vision_model.class_embedding";
  n.pos = "vision_model.positional_embedding_vlm";
  n.pre_w = "vision_model.layernorm_pre.weight";
  n.pre_b = "vision_model.layernorm_pre.bias";
  n.post_w = "vision_model.layernorm_post.weight";
  n.post_b = "vision_model.layernorm_post.bias";
  n.adapter1 = "vision_model.vision_adapter.mlp.fc1.weight";
  n.adapter2 = "vision_model.vision_adapter.mlp.fc2.weight";
  n.projector = "multi_modal_projector.linear_1.weight";
  n.layer = [](int il, const char* role) {
    static const std::pair<const char*, const char*> map[] = {
        {"ln1", "input_layernorm"}, {"ln2", "post_attention_layernorm"}, {"q", "self_attn.q_proj"}, {"k", "self_attn.k_proj"},
        {"v", "self_attn.v_proj"},  {"o", "self_attn.o_proj"},          {"fc1", "mlp.fc1"},        {"fc2", "mlp.fc2"}};
    std::string r = role;
    const size_t dot = r.find('.');
    const std::string head = r.substr(0, dot), suffix = r.substr(dot);
    for (auto& m : map)
      if (head == m.first) return "vision_model.model.layers." + std::to_string(il) + "." + m.second + suffix;
    return std::string("?");
  };
  bind(b, w, n, c);
  b.check_all_used([](const std::string& t) { return t.rfind("vision_model.", 0) == 0 || t.rfind("multi_modal_projector.", 0) == 0; });
  return w;
}

VisionWeights vision_weights_from_gguf(const GgufFile& g, VisionConfig& c) {
  c.validate(g.path());
  VisionWeights w;
  Binder b(g.path(), g.tensors(), [&](const std::string& n) { return g.find_tensor(n); }, w);
  Names n;
  n.patch = "v.patch_embd.weight";
  n.cls = "v.class_embd";
  n.pos = "v.position_embd.weight";
  n.pre_w = "v.pre_ln.weight";
  n.pre_b = "v.pre_ln.bias";
  n.post_w = "v.post_ln.weight";
  n.post_b = "v.post_ln.bias";
  n.adapter1 = "mm.model.mlp.1.weight";
  n.adapter2 = "mm.model.mlp.2.weight";
  n.projector = "mm.model.fc.weight";
  n.layer = [](int il, const char* role) {
    static const std::pair<const char*, const char*> map[] = {{"ln1", "ln1"},       {"ln2", "ln2"},   {"q", "attn_q"},       {"k", "attn_k"},
                                                              {"v", "attn_v"},       {"o", "attn_out"}, {"fc1", "ffn_up"}, {"fc2", "ffn_down"}};
    std::string r = role;
    const size_t dot = r.find('.');
    const std::string head = r.substr(0, dot), suffix = r.substr(dot);
    for (auto& m : map)
      if (head == m.first) return "v.blk." + std::to_string(il) + "." + m.second + suffix;
    return std::string("?");
  };
  bind(b, w, n, c);
  b.check_all_used([](const std::string& t) { return t.rfind("v.", 0) == 0 || t.rfind("mm.", 0) == 0; });
  return w;
}

}  // namespace moescope
