// The vision forward pass, read top to bottom (spec §3.2-3.4), per tile:
//   unfold 14x14 patches -> linear patch embedding -> append CLS LAST -> + learned positions ->
//   layernorm_pre -> L x [x += o(MHA(rope2d(q), rope2d(k), v) of LN1(x)); x += fc2(GELU(fc1(LN2(x))))]
//   -> layernorm_post -> drop CLS -> pixel shuffle (row-major 2x2 merge) -> adapter fc1 -> GELU ->
//   fc2 -> GELU -> projector.
// Tiles are independent (no attention across tiles), so they run one after another and each matmul
// uses the whole thread pool.
#include "vision/vision_model.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "ops/matmul.h"
#include "ops/threadpool.h"
#include "vision/vision_ops.h"

namespace moescope {

bool VisionCapture::wants(const std::string& n) const { return std::find(names.begin(), names.end(), n) != names.end(); }

std::shared_ptr<VisionModel> VisionModel::load(const std::string& path) {
  auto m = std::shared_ptr<VisionModel>(new VisionModel());
  m->path_ = path;
  if (is_directory(path)) {
    const std::string cfg_path = path + "/config.json";
    MOESCOPE_CHECK(file_exists(cfg_path), "MODEL_NOT_FOUND", "%s: a Hugging Face checkpoint folder needs config.json", path.c_str());
    Json cfg = Json::parse(read_text_file(cfg_path, 16u << 20), cfg_path);
    m->config_ = vision_config_from_hf(cfg, cfg_path);
    m->safetensors_ = SafetensorsSet::open(path);
    m->weights_ = vision_weights_from_hf(*m->safetensors_, m->config_);
  } else {
    MOESCOPE_CHECK(file_exists(path), "MODEL_NOT_FOUND", "%s: no such file or folder", path.c_str());
    m->gguf_ = GgufFile::open(path);
    m->config_ = vision_config_from_gguf(*m->gguf_);
    m->weights_ = vision_weights_from_gguf(*m->gguf_, m->config_);
  }
  const VisionConfig& c = m->config_;
  m->rope_cos_.resize(c.seq_len() * c.head_dim / 2);
  m->rope_sin_.resize(m->rope_cos_.size());
  vision_rope_tables(c.grid(), c.head_dim, c.rope_theta, m->rope_cos_.data(), m->rope_sin_.data());
  return m;
}

std::vector<std::string> VisionModel::hook_names() const {
  std::vector<std::string> n{"vision.embed"};
  for (int64_t l = 0; l < config_.n_layer; l++) {
    n.push_back("vision.layers." + std::to_string(l) + ".out");
    n.push_back("vision.layers." + std::to_string(l) + ".attn_probs");
  }
  for (const char* s : {"vision.post_ln", "vision.pixel_shuffle", "vision.adapter"}) n.push_back(s);
  return n;
}

namespace {

// A captured tensor [n_tiles, rest...] filled tile by tile.
Captured& slot(std::vector<Captured>& all, const std::string& name, std::vector<int64_t> shape) {
  for (auto& c : all)
    if (c.name == name) return c;
  Captured c;
  c.name = name;
  c.shape = std::move(shape);
  int64_t n = 1;
  for (auto d : c.shape) n *= d;
  c.f = std::make_shared<std::vector<float>>((size_t)n);
  all.push_back(std::move(c));
  return all.back();
}

void keep(const VisionCapture& cap, std::vector<Captured>& all, const std::string& name, int64_t t, int64_t n_tiles,
          std::vector<int64_t> per_tile, const float* data) {
  if (!cap.wants(name)) return;
  int64_t n = 1;
  for (auto d : per_tile) n *= d;
  per_tile.insert(per_tile.begin(), n_tiles);
  Captured& c = slot(all, name, per_tile);
  memcpy(c.f->data() + t * n, data, n * sizeof(float));
}

}  // namespace

void VisionModel::encode_tile(const float* tile, float* out, int64_t t, int64_t n_tiles, const VisionCapture& cap,
                              std::vector<Captured>& captured, const std::function<bool()>& cancelled) const {
  const VisionConfig& c = config_;
  const VisionWeights& w = weights_;
  const int64_t S = c.seq_len(), P = c.n_patches(), C = c.n_embd, F = c.n_ff, H = c.n_head, Dh = c.head_dim;
  // Looked up per call: setThreads() replaces the process-wide pool.
  ThreadPool& pool = default_pool();

  // Patch embedding: rows 0..575 are the patches (row-major over the grid), row 576 is CLS.
  std::vector<float> patches(P * c.patch_dim());
  op_unfold_patches(tile, c.n_channels, c.image_size, c.patch_size, patches.data());
  std::vector<float> x(S * C);
  op_matmul(pool, w.patch_embd, patches.data(), c.patch_dim(), P, x.data(), C);
  std::copy(w.class_embd.begin(), w.class_embd.end(), x.begin() + P * C);
  for (int64_t i = 0; i < S * C; i++) x[i] += w.pos_embd[i];
  op_layer_norm(x.data(), w.pre_ln_w.data(), w.pre_ln_b.data(), x.data(), S, C, c.norm_eps);
  keep(cap, captured, "vision.embed", t, n_tiles, {S, C}, x.data());

  std::vector<float> a(S * C), q(S * C), k(S * C), v(S * C), z(S * C), f(S * F);
  std::vector<float> probs;
  for (int64_t il = 0; il < c.n_layer; il++) {
    const VisionLayerWeights& L = w.layers[il];
    const std::string lname = "vision.layers." + std::to_string(il);
    // x += o_proj(MHA(LN1(x)))
    op_layer_norm(x.data(), L.ln1_w.data(), L.ln1_b.data(), a.data(), S, C, c.norm_eps);
    op_matmul(pool, L.wq, a.data(), C, S, q.data(), C);
    op_matmul(pool, L.wk, a.data(), C, S, k.data(), C);
    op_matmul(pool, L.wv, a.data(), C, S, v.data(), C);
    op_add_bias(q.data(), L.bq.data(), S, C);
    op_add_bias(k.data(), L.bk.data(), S, C);
    op_add_bias(v.data(), L.bv.data(), S, C);
    op_rope_2d(q.data(), S, H, Dh, rope_cos_.data(), rope_sin_.data());
    op_rope_2d(k.data(), S, H, Dh, rope_cos_.data(), rope_sin_.data());
    const bool want_probs = cap.wants(lname + ".attn_probs");
    if (want_probs) probs.resize(H * S * S);
    op_vision_attention(pool, q.data(), k.data(), v.data(), z.data(), S, H, Dh, want_probs ? probs.data() : nullptr);
    if (want_probs) keep(cap, captured, lname + ".attn_probs", t, n_tiles, {H, S, S}, probs.data());
    op_matmul(pool, L.wo, z.data(), C, S, a.data(), C);
    op_add_bias(a.data(), L.bo.data(), S, C);
    for (int64_t i = 0; i < S * C; i++) x[i] += a[i];
    // x += fc2(GELU(fc1(LN2(x))))
    op_layer_norm(x.data(), L.ln2_w.data(), L.ln2_b.data(), a.data(), S, C, c.norm_eps);
    op_matmul(pool, L.fc1, a.data(), C, S, f.data(), F);
    op_add_bias(f.data(), L.b1.data(), S, F);
    op_gelu_erf(f.data(), S * F);
    op_matmul(pool, L.fc2, f.data(), F, S, a.data(), C);
    op_add_bias(a.data(), L.b2.data(), S, C);
    for (int64_t i = 0; i < S * C; i++) x[i] += a[i];
    keep(cap, captured, lname + ".out", t, n_tiles, {S, C}, x.data());
    if (cancelled && cancelled()) fail("CANCELLED", "cancelled");
  }

  // layernorm_post over all S rows, then drop CLS (the last row).
  op_layer_norm(x.data(), w.post_ln_w.data(), w.post_ln_b.data(), x.data(), S, C, c.norm_eps);
  keep(cap, captured, "vision.post_ln", t, n_tiles, {P, C}, x.data());

  // Pixel shuffle -> adapter (fc1, GELU, fc2, GELU) -> projector.
  const int64_t T = c.tokens_per_tile(), R = c.shuffled_dim();
  std::vector<float> sh(T * R), h1(T * c.adapter_hidden), h2(T * c.adapter_out);
  op_pixel_shuffle(x.data(), c.grid(), C, c.shuffle_factor, sh.data());
  keep(cap, captured, "vision.pixel_shuffle", t, n_tiles, {T, R}, sh.data());
  op_matmul(pool, w.adapter_fc1, sh.data(), R, T, h1.data(), c.adapter_hidden);
  op_gelu_erf(h1.data(), T * c.adapter_hidden);
  op_matmul(pool, w.adapter_fc2, h1.data(), c.adapter_hidden, T, h2.data(), c.adapter_out);
  op_gelu_erf(h2.data(), T * c.adapter_out);
  keep(cap, captured, "vision.adapter", t, n_tiles, {T, c.adapter_out}, h2.data());
  op_matmul(pool, w.projector, h2.data(), c.adapter_out, T, out, c.proj_out);
}

VisionResult VisionModel::encode(const float* pixels, int64_t n_tiles, const VisionCapture& cap, const std::function<bool()>& cancelled) const {
  const VisionConfig& c = config_;
  MOESCOPE_CHECK(n_tiles >= 1 && n_tiles <= 4096, "BAD_PIXELS", "pixel values: %lld tiles (expected 1 or more)", (long long)n_tiles);
  for (auto& n : cap.names) {
    auto all = hook_names();
    MOESCOPE_CHECK(std::find(all.begin(), all.end(), n) != all.end(), "CAPTURE_BAD_PLAN", "\"%s\" is not a vision hook point (see vision.hookNames())",
                   n.c_str());
  }
  VisionResult r;
  r.n_tokens = n_tiles * c.tokens_per_tile();
  r.embeds.resize((size_t)r.n_tokens * c.proj_out);
  const int64_t tile = c.n_channels * c.image_size * c.image_size;
  for (int64_t t = 0; t < n_tiles; t++)
    encode_tile(pixels + t * tile, r.embeds.data() + t * c.tokens_per_tile() * c.proj_out, t, n_tiles, cap, r.captured, cancelled);
  // Hook order, not first-touch order.
  auto order = hook_names();
  std::stable_sort(r.captured.begin(), r.captured.end(), [&](const Captured& a, const Captured& b) {
    return std::find(order.begin(), order.end(), a.name) < std::find(order.begin(), order.end(), b.name);
  });
  return r;
}

}  // namespace moescope
