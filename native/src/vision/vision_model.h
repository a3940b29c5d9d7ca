// The Llama 4 vision tower and projector (spec §3.2-3.4): pixel tiles [N, 3, 336, 336] in, image
// features [N * 144, D_text] out, one row per <|patch|> placeholder, ready to splice into the text
// sequence (RunRequest::embed_override). Loads from a Hugging Face folder (vision_model.* and
// multi_modal_projector.* next to the text model) or a llama.cpp mmproj GGUF.
//
// Hook names (what a VisionCapture may ask for), per tile t:
//   vision.embed                  [N, S, C]      after layernorm_pre (the residual stream's start)
//   vision.layers.L.out           [N, S, C]      residual after encoder layer L
//   vision.layers.L.attn_probs    [N, H, S, S]   softmax of layer L (query rows, key columns)
//   vision.post_ln                [N, S-1, C]    layernorm_post, CLS dropped
//   vision.pixel_shuffle          [N, 144, 4C]
//   vision.adapter                [N, 144, A]    after fc2 and its GELU
// S = 577 (576 patches row-major, then CLS), C vision width, H heads.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hooks/hooks.h"
#include "vision/vision_config.h"
#include "vision/vision_weights.h"

namespace moescope {

class GgufFile;
class SafetensorsSet;
class ThreadPool;

struct VisionCapture {
  std::vector<std::string> names;  // exact hook names from VisionModel::hook_names()
  bool wants(const std::string& n) const;
};

struct VisionResult {
  std::vector<float> embeds;       // [n_tiles * tokens_per_tile, proj_out]
  int64_t n_tokens = 0;
  std::vector<Captured> captured;  // in hook order
};

class VisionModel {
 public:
  // `path`: a Hugging Face folder (config.json with vision_config) or an mmproj .gguf file.
  static std::shared_ptr<VisionModel> load(const std::string& path);

  const VisionConfig& config() const { return config_; }
  const std::string& path() const { return path_; }
  const char* format() const { return gguf_ ? "gguf" : "hf"; }
  size_t mapped_bytes() const { return weights_.mapped_bytes; }
  std::vector<std::string> hook_names() const;

  // pixels: [n_tiles, channels, S, S] normalised values (spec §3.1 step 7).
  // `cancelled` (optional) is polled between encoder layers; true stops with a CANCELLED error.
  VisionResult encode(const float* pixels, int64_t n_tiles, const VisionCapture& cap, const std::function<bool()>& cancelled = {}) const;

 private:
  // One tile through the ViT, the adapter and the projector; `out` receives [144, proj_out].
  void encode_tile(const float* tile, float* out, int64_t t, int64_t n_tiles, const VisionCapture& cap, std::vector<Captured>& captured,
                   const std::function<bool()>& cancelled) const;

  std::string path_;
  VisionConfig config_;
  VisionWeights weights_;
  std::vector<float> rope_cos_, rope_sin_;  // [S, Dh/2]
  std::shared_ptr<GgufFile> gguf_;
  std::shared_ptr<SafetensorsSet> safetensors_;
};

}  // namespace moescope
