// Llama 4 text-model hyperparameters, parsed once from a GGUF file or a Hugging Face config.json into
// one typed struct (llama.cpp-style names inside), plus the per-layer plan: every decision that depends
// on the layer index (RoPE or NoPE, chunked or global, QK-norm, MoE or dense) is made here and only here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/json.h"

namespace moescope {

class GgufFile;

struct LayerPlan {
  bool use_rope;            // RoPE layer (chunked local attention) vs NoPE layer (global attention)
  bool chunked_attn;        // keys limited to the query's absolute chunk
  bool qk_norm;             // weightless RMS-norm of q and k after RoPE (Scout)
  bool temperature_tuning;  // q scaled by s(p) (NoPE layers)
  bool is_moe;              // routed experts + shared expert, else dense SwiGLU
};

struct Llama4Config {
  std::string source;       // file the hyperparameters came from
  std::string format;       // "gguf" or "hf"
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_ff_exp = 0;     // expert and shared-expert intermediate size (HF intermediate_size)
  int64_t n_ff = 0;         // dense-MLP intermediate size (HF intermediate_size_mlp)
  int64_t n_expert = 0, n_expert_used = 0;
  int64_t interleave_moe_layer_step = 1;
  double rms_eps = 1e-5;
  double rope_theta = 500000;
  std::string rope_scaling = "none";  // "none", "llama3" (HF config), "rope_freqs" (GGUF tensor)
  std::vector<double> rope_freq;      // radians per position for each pair j (head_dim/2), after scaling
  int64_t attn_chunk = 8192;          // chunk of the chunked layers, 0 = none
  double attn_scale = 0.1, floor_scale = 8192;  // temperature tuning s(p) = 1 + attn_scale*ln(floor((p+1)/floor_scale)+1)
  int64_t context_length = 0;
  std::vector<LayerPlan> layers;

  // Set by the loaders from the tokenizer/config: special ids the forward needs.
  int32_t image_token_id = -1;  // <|patch|>

  std::string describe() const;  // one line per hyperparameter, logged at load
};

Llama4Config config_from_gguf(const GgufFile& g);
// text_config of Llama4ForConditionalGeneration, or the top level of Llama4ForCausalLM.
Llama4Config config_from_hf(const Json& config, const std::string& source);

// Llama 3 RoPE scaling in float64 (HF `_compute_llama3_parameters`).
std::vector<double> llama3_rope_freqs(double theta, int64_t head_dim, double factor, double low_freq_factor,
                                      double high_freq_factor, double original_max_position);

}  // namespace moescope
