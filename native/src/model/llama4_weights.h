// The text model's weights as views into the checkpoint's memory maps. One pure function per format
// maps checkpoint names to these fields; loading is strict (missing, misshapen or unused tensors
// raise an error listing them). Only norm vectors are converted to float32 copies (tiny).
//
// Dimension legend: D hidden, H heads, Hkv kv heads, Dh head dim, E experts, F expert ffn, Fd dense ffn, V vocab.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_view.h"
#include "model/llama4_config.h"

namespace moescope {

class GgufFile;
class SafetensorsSet;

// A weight matrix y = W x with n_in inputs and n_out outputs, in one of two layouts:
// out-major (nn.Linear / GGUF: each output row holds n_in contiguous elements) or in-major
// (HF fused experts `x @ W`: each input row holds n_out contiguous elements, `stride` bytes apart).
struct Mat {
  const uint8_t* data = nullptr;
  uint32_t type = 0;
  int64_t n_in = 0, n_out = 0;
  size_t stride = 0;      // bytes between consecutive rows (output rows if out-major, input rows if in-major)
  bool in_major = false;
  const char* name = "";  // checkpoint tensor name (for errors and memory reports)
  size_t bytes() const;   // bytes read by one full pass over the matrix
};

// E expert matrices stacked in one tensor: expert e is `base` shifted by e * expert_stride bytes.
struct ExpertMats {
  Mat base;
  size_t expert_stride = 0;
  Mat expert(int64_t e) const {
    Mat m = base;
    m.data += (size_t)e * expert_stride;
    return m;
  }
};

struct LayerWeights {
  std::vector<float> attn_norm;   // [D]
  Mat wq, wk, wv, wo;             // [H*Dh, D], [Hkv*Dh, D], [Hkv*Dh, D], [D, H*Dh]
  std::vector<float> ffn_norm;    // [D]
  // MoE layers
  Mat router;                     // [E, D]
  ExpertMats gate_exps, up_exps;  // E x [F, D]
  ExpertMats down_exps;           // E x [D, F]
  Mat shexp_gate, shexp_up;       // [F, D]
  Mat shexp_down;                 // [D, F]
  // dense layers
  Mat ffn_gate, ffn_up;           // [Fd, D]
  Mat ffn_down;                   // [D, Fd]
};

struct Llama4Weights {
  TensorView token_embd;          // [V, D] rows dequantised on lookup
  std::vector<LayerWeights> layers;
  std::vector<float> output_norm; // [D]
  Mat output;                     // [V, D]
  size_t mapped_bytes = 0;        // bytes of all tensors the model uses
  std::vector<std::shared_ptr<MappedFile>> files;  // keep the maps alive
};

Llama4Weights weights_from_gguf(const GgufFile& g, const Llama4Config& c);
Llama4Weights weights_from_hf(const SafetensorsSet& s, const Llama4Config& c);

}  // namespace moescope
