// Reading VisionConfig: HF `vision_config` keys (names as in transformers' Llama4VisionConfig) and
// llama.cpp `clip.vision.*` keys (spec §5.4). Unknown values fall back to the Llama 4 defaults only
// where the reference code itself has a default; everything that sizes a tensor must be present.
#include "vision/vision_config.h"

#include <cmath>

#include "common/error.h"
#include "io/gguf.h"
#include "io/json.h"

namespace moescope {

void VisionConfig::validate(const std::string& src) const {
  auto pos = [&](int64_t v, const char* what) {
    MOESCOPE_CHECK(v > 0 && v < (1 << 20), "CONFIG_BAD_VALUE", "%s: vision %s = %lld is not a sensible size", src.c_str(), what, (long long)v);
  };
  pos(image_size, "image_size"); pos(patch_size, "patch_size"); pos(n_channels, "num_channels"); pos(n_embd, "hidden_size");
  pos(n_layer, "num_hidden_layers"); pos(n_head, "num_attention_heads"); pos(n_ff, "intermediate_size");
  pos(shuffle_factor, "pixel shuffle factor"); pos(adapter_hidden, "projector_input_dim"); pos(adapter_out, "projector_output_dim");
  MOESCOPE_CHECK(image_size % patch_size == 0, "CONFIG_BAD_VALUE", "%s: patch size %lld does not divide the tile size %lld", src.c_str(),
                 (long long)patch_size, (long long)image_size);
  MOESCOPE_CHECK(grid() % shuffle_factor == 0, "CONFIG_BAD_VALUE", "%s: the %lldx%lld patch grid cannot be pixel-shuffled by %lld", src.c_str(),
                 (long long)grid(), (long long)grid(), (long long)shuffle_factor);
  MOESCOPE_CHECK(n_embd % n_head == 0 && (n_embd / n_head) % 4 == 0, "CONFIG_BAD_VALUE",
                 "%s: vision head dim %lld / %lld must be a multiple of 4 (2-D RoPE splits the pairs into x and y halves)", src.c_str(),
                 (long long)n_embd, (long long)n_head);
}

namespace {

int64_t num(const Json& o, const char* key, const std::string& src, int64_t dflt = -1) {
  const Json* v = o.get(key);
  if (!v || v->is_null()) {
    MOESCOPE_CHECK(dflt >= 0, "CONFIG_MISSING_KEY", "%s: vision_config.%s is missing", src.c_str(), key);
    return dflt;
  }
  MOESCOPE_CHECK(v->is_number() && v->num == std::floor(v->num), "CONFIG_BAD_KEY", "%s: vision_config.%s must be an integer", src.c_str(), key);
  return (int64_t)v->num;
}

double real(const Json& o, const char* key, double dflt) {
  const Json* v = o.get(key);
  return v && v->is_number() ? v->num : dflt;
}

}  // namespace

VisionConfig vision_config_from_hf(const Json& cfg, const std::string& src) {
  const Json* vc = cfg.get("vision_config");
  MOESCOPE_CHECK(vc && vc->is_object(), "MODEL_NO_VISION", "%s: no vision_config: this checkpoint has no vision tower", src.c_str());
  const Json& v = *vc;
  VisionConfig c;
  c.image_size = num(v, "image_size", src, 336);
  c.patch_size = num(v, "patch_size", src, 14);
  c.n_channels = num(v, "num_channels", src, 3);
  c.n_embd = num(v, "hidden_size", src);
  c.n_layer = num(v, "num_hidden_layers", src);
  c.n_head = num(v, "num_attention_heads", src);
  c.n_ff = num(v, "intermediate_size", src);
  c.norm_eps = real(v, "norm_eps", 1e-5);
  c.rope_theta = real(v, "rope_theta", 10000);
  const double ratio = real(v, "pixel_shuffle_ratio", 0.5);
  MOESCOPE_CHECK(ratio > 0 && ratio <= 1 && std::fabs(1.0 / ratio - std::round(1.0 / ratio)) < 1e-9, "CONFIG_BAD_VALUE",
                 "%s: pixel_shuffle_ratio %g is not 1/integer", src.c_str(), ratio);
  c.shuffle_factor = (int64_t)std::round(1.0 / ratio);
  c.adapter_hidden = num(v, "projector_input_dim", src);
  c.adapter_out = num(v, "projector_output_dim", src);
  // multi_modal_projector: vision_output_dim -> text hidden size.
  c.proj_out = -1;
  if (const Json* tc = cfg.get("text_config"); tc && tc->is_object()) c.proj_out = num(*tc, "hidden_size", src, 0);
  if (c.proj_out <= 0) c.proj_out = -1;
  c.head_dim = c.n_head > 0 ? c.n_embd / c.n_head : 0;
  return c;
}

VisionConfig vision_config_from_gguf(const GgufFile& g) {
  const std::string src = g.path();
  MOESCOPE_CHECK(g.get_str("general.architecture", "") == "clip", "MODEL_NO_VISION",
                 "%s: not an mmproj file (general.architecture is \"%s\", expected \"clip\")", src.c_str(),
                 g.get_str("general.architecture", "").c_str());
  const std::string proj = g.get_str("clip.projector_type", "");
  MOESCOPE_CHECK(proj == "llama4", "MODEL_NO_VISION", "%s: clip.projector_type is \"%s\"; moescope runs the Llama 4 vision tower (\"llama4\")",
                 src.c_str(), proj.c_str());
  VisionConfig c;
  c.image_size = g.get_int("clip.vision.image_size");
  c.patch_size = g.get_int("clip.vision.patch_size");
  c.n_embd = g.get_int("clip.vision.embedding_length");
  c.n_ff = g.get_int("clip.vision.feed_forward_length");
  c.n_layer = g.get_int("clip.vision.block_count");
  c.n_head = g.get_int("clip.vision.attention.head_count");
  // Stored as float32 in the file (1e-5 becomes 9.9999997e-06): round back to what the model was trained with.
  c.norm_eps = (double)(float)g.get_float("clip.vision.attention.layer_norm_epsilon", 1e-5);
  if (std::fabs(c.norm_eps - 1e-5) < 1e-12) c.norm_eps = 1e-5;
  c.rope_theta = 10000;  // hard-coded by llama.cpp as well (spec §5.4)
  c.shuffle_factor = g.get_int("clip.vision.projector.scale_factor", 2);
  c.proj_out = g.get_int("clip.vision.projection_dim", -1);
  c.head_dim = c.n_head > 0 ? c.n_embd / c.n_head : 0;
  // Adapter widths are not keys: read them off mm.model.mlp.{1,2}.weight (ne = {in, out}).
  const TensorView* fc1 = g.find_tensor("mm.model.mlp.1.weight");
  const TensorView* fc2 = g.find_tensor("mm.model.mlp.2.weight");
  MOESCOPE_CHECK(fc1 && fc1->ne.size() == 2 && fc2 && fc2->ne.size() == 2, "MODEL_MISSING_TENSOR",
                 "%s: mm.model.mlp.1.weight / mm.model.mlp.2.weight (the vision adapter) are missing", src.c_str());
  c.adapter_hidden = fc1->ne[1];
  c.adapter_out = fc2->ne[1];
  if (const TensorView* fc = g.find_tensor("mm.model.fc.weight"); fc && fc->ne.size() == 2 && c.proj_out <= 0) c.proj_out = fc->ne[1];
  return c;
}

}  // namespace moescope
