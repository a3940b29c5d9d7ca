// Row-wise ops of the Llama 4 layer: RMSNorm (spec §2.3), the SwiGLU gate, and vector helpers.
#pragma once
#include <cstdint>

namespace moescope {

class ThreadPool;

// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w   (w may be null: the weightless QK norm).
// Statistics in float64 so the result does not depend on the row length's summation order. Rows
// are spread over the pool (each row's numbers do not depend on which thread computes it): the
// float64 sums are latency-bound, 0.7-0.9 ms per call on a 512-token prompt on one thread.
void op_rms_norm(ThreadPool& pool, const float* x, const float* w, float* y, int64_t T, int64_t n, double eps);

// y[i] += x[i] for n values, on the pool (the residual adds).
void op_add(ThreadPool& pool, float* y, const float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i] for n values.
void op_silu_mul(ThreadPool& pool, float* gate, const float* up, int64_t n);

// y += a * x
void op_axpy(float* y, const float* x, float a, int64_t n);

}  // namespace moescope
