// RoPE on the device, exactly the CPU's (ops/rope.cpp): interleaved pairs (2j, 2j+1), angle
// pos * freq[j] in float64, cos/sin in float64 then rounded to float. And the NoPE layers'
// temperature tuning: q rows scaled by a per-token factor computed on the host in float64 (the same
// expression as the CPU), so both paths multiply by the same float.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace moescope::cuda {
// x [T, heads, head_dim] in place; pos [T] and freq [head_dim/2] are device arrays.
void rope(float* x, int64_t T, int64_t heads, int64_t head_dim, const int64_t* pos, const double* freq, cudaStream_t s);
// x [T, row] in place: row t multiplied by scale[t] (device array).
void scale_rows(float* x, int64_t T, int64_t row, const float* scale, cudaStream_t s);
}
