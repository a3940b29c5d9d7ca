// y[t, r] = sum_i W[r, i] x[t, i] on the device, for every weight type moescope computes with, with
// dequantisation fused into the dot (weights are read once per token tile, never expanded in memory).
// Decode (T == 1) is a warp-per-row GEMV, one pass over the weights (Q4_K/Q6_K: 8 lanes per
// super-block, see mmv_chunk). Prefill tiles tokens by 8 so each decoded weight unit feeds 8
// activation rows. The *_id form takes the expert of
// each activation row from a device array (MoE decode: no host round trip to learn the routing).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace moescope::cuda {

// A weight matrix on the device, same meaning as moescope::Mat (out-major rows or in-major HF rows).
struct DMat {
  const uint8_t* data = nullptr;
  uint32_t type = 0;
  int64_t n_in = 0, n_out = 0;
  size_t stride = 0;
  bool in_major = false;
  size_t expert_stride = 0;  // stacked experts only
  const char* name = "";
};

// Throws CUDA_UNSUPPORTED_TYPE for a type without a kernel (the CPU engine supports the same set).
void matmul(const DMat& W, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy, cudaStream_t s);
// Row t uses expert experts[t] of the stacked W (experts[t] < 0: the row of y is zeroed).
void matmul_id(const DMat& W, const int32_t* experts, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy,
               cudaStream_t s);
bool matmul_supports(uint32_t type, bool in_major);

}  // namespace moescope::cuda
