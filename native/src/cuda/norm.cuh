// RMSNorm on the device, the CPU's formula (ops/elementwise.cpp): sum of squares in float64, scale
// (float)(1/sqrt(ss/n + eps)), y = x * scale * w (w == nullptr: weightless, Scout's QK-norm).
// One block per row; y may alias x.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace moescope::cuda {
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, double eps, cudaStream_t s);
}
