// Llama 4 vision tower hyperparameters (spec §1.3), from a Hugging Face config.json (`vision_config`)
// or from a llama.cpp mmproj GGUF (`clip.*` keys, spec §5.4). Both end in the same VisionConfig; the
// derived sizes (patch grid, tokens per tile, adapter input) are computed once here so the forward
// pass never re-derives them.
#pragma once
#include <cstdint>
#include <string>

namespace moescope {

class GgufFile;
class Json;

struct VisionConfig {
  int64_t image_size = 336;       // tile side S
  int64_t patch_size = 14;
  int64_t n_channels = 3;
  int64_t n_embd = 1408;          // ViT width
  int64_t n_layer = 34;
  int64_t n_head = 16;
  int64_t head_dim = 88;
  int64_t n_ff = 5632;            // ViT MLP
  double norm_eps = 1e-5;
  double rope_theta = 10000;
  int64_t shuffle_factor = 2;     // 1 / pixel_shuffle_ratio: a 2x2 block of patches becomes one token
  int64_t adapter_hidden = 4096;  // projector_input_dim: vision_adapter.mlp.fc1 outputs
  int64_t adapter_out = 4096;     // projector_output_dim (= vision_output_dim): fc2 outputs
  int64_t proj_out = 5120;        // multi_modal_projector output = the text model's hidden size

  // Derived
  int64_t grid() const { return image_size / patch_size; }                  // 24 patches per side
  int64_t n_patches() const { return grid() * grid(); }                     // 576
  int64_t seq_len() const { return n_patches() + 1; }                       // + CLS (last)
  int64_t patch_dim() const { return n_channels * patch_size * patch_size; }  // 588
  int64_t shuffled_grid() const { return grid() / shuffle_factor; }        // 12
  int64_t tokens_per_tile() const { return shuffled_grid() * shuffled_grid(); }  // 144
  int64_t shuffled_dim() const { return n_embd * shuffle_factor * shuffle_factor; }  // 5632

  // Throws CONFIG_BAD_VALUE when the geometry cannot work (patch does not divide the tile, odd grid, ...).
  void validate(const std::string& source) const;
};

// `cfg` is the whole config.json (vision_config is looked up inside); proj_out comes from text_config.hidden_size
// when present, else from the projector weight's shape at load time (pass -1).
VisionConfig vision_config_from_hf(const Json& cfg, const std::string& source);
// Sizes that GGUF does not state as keys (adapter widths, projector output) are read off tensor shapes.
VisionConfig vision_config_from_gguf(const GgufFile& g);

}  // namespace moescope
