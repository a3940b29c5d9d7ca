// Causal attention over the device KV cache, the CPU's op_attention (ops/attention.cpp): query t at
// absolute position p sees keys lo..p, lo = start of p's chunk on chunked layers (else 0), clipped
// to the first cached position; scale 1/sqrt(Dh); GQA head h reads kv head h / (H / Hkv); an ablated
// head (head_mask[h] != 0) outputs zeros.
//   attention_flash: fused online-softmax (flash-style), never materialises scores; used for every
//     layer's output.
//   attention_probs: the exact path for captured layers: full softmax (sum in float64 as on the CPU)
//     of the rows/heads listed, written to probs[slot * ld_probs + (key - lo)].
// Layouts: q [T, H, Dh]; k, v cache [slots, Hkv, Dh] with slot 0 at absolute position cache_pos0,
// float32 or bfloat16 bits (kv_bf16; see KvType in ops/attention.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace moescope::cuda {

struct AttnShape {
  int64_t T, H, Hkv, Dh;
  int64_t chunk;       // 0 = global
  int64_t cache_pos0;
  bool kv_bf16 = false;
};

// pos [T] device; out [T, H, Dh]; head_mask [H] device or nullptr. Dh <= 256.
void attention_flash(const AttnShape& a, const float* q, const void* k, const void* v, const int64_t* pos, const uint8_t* head_mask,
                     float* out, cudaStream_t s);
// slots [n] device: (t * H + h) of each requested row; probs [n, ld_probs].
void attention_probs(const AttnShape& a, const float* q, const void* k, const int64_t* pos, const int32_t* slots, int64_t n,
                     float* probs, int64_t ld_probs, cudaStream_t s);
// Writes the T rows of src ([T, row] floats, positions pos [T] on the device) to the cache slots
// pos[t] - pos0: a copy, or bfloat16 rounding (nearest even, NaN kept quiet) bit for bit as the
// CPU's fp32_to_bf16.
void kv_append(const float* src, int64_t T, int64_t row, void* dst, const int64_t* pos, int64_t pos0, bool bf16, cudaStream_t s);

}  // namespace moescope::cuda
