// The vision tower's weights as views into the checkpoint's memory maps, from HF safetensors
// (`vision_model.*`, `multi_modal_projector.*`, spec §5.1) or an mmproj GGUF (`v.*`, `mm.*`, spec §5.4).
// Matrices keep their file type (every type the text path computes with); vectors (norms, biases,
// class and position embeddings) are float32 copies. Loading is strict: missing or misshapen tensors,
// and tensors that belong to no part of the vision tower, are errors listing them.
#pragma once
#include <memory>
#include <vector>

#include "model/llama4_weights.h"
#include "vision/vision_config.h"

namespace moescope {

class GgufFile;
class SafetensorsSet;

struct VisionLayerWeights {
  std::vector<float> ln1_w, ln1_b;      // input_layernorm            [C]
  Mat wq, wk, wv, wo;                   // self_attn.{q,k,v,o}_proj   [C, C]
  std::vector<float> bq, bk, bv, bo;    //                            [C]
  std::vector<float> ln2_w, ln2_b;      // post_attention_layernorm   [C]
  Mat fc1, fc2;                         // mlp.fc1 [F, C], mlp.fc2 [C, F]
  std::vector<float> b1, b2;            //                            [F], [C]
};

struct VisionWeights {
  Mat patch_embd;                       // [C, 588] unfold-convolution as a linear map (no bias)
  std::vector<float> class_embd;        // [C]
  std::vector<float> pos_embd;          // [577, C]
  std::vector<float> pre_ln_w, pre_ln_b, post_ln_w, post_ln_b;
  std::vector<VisionLayerWeights> layers;
  Mat adapter_fc1, adapter_fc2;         // vision_adapter.mlp.fc{1,2}: [A, C*4], [A2, A], no bias
  Mat projector;                        // multi_modal_projector.linear_1: [D_text, A2], no bias
  std::vector<std::shared_ptr<std::vector<uint8_t>>> owned;  // dequantised copies of rows not block-aligned
  size_t mapped_bytes = 0;
};

VisionWeights vision_weights_from_hf(const SafetensorsSet& s, VisionConfig& c);
VisionWeights vision_weights_from_gguf(const GgufFile& g, VisionConfig& c);

}  // namespace moescope
