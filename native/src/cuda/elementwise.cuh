// Small element-wise ops of the forward, each the CPU's float32 expression: SwiGLU's silu(g) * u
// (ops/elementwise.cpp), the residual add, and the embedding lookup (a token's row of the embedding
// table dequantised with the same decoders as the matmuls).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace moescope::cuda {
void silu_mul(float* gate, const float* up, int64_t n, cudaStream_t s);  // gate = silu(gate) * up
void add(float* x, const float* y, int64_t n, cudaStream_t s);           // x += y
// out[t] = dequant(table row tokens[t]); table rows are `row_bytes` apart, type is a ggml id.
void embed_rows(const uint8_t* table, uint32_t type, size_t row_bytes, const int32_t* tokens, int64_t T, int64_t D, float* out,
                cudaStream_t s);
}
