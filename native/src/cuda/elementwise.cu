// Element-wise kernels and the embedding gather; see elementwise.cuh for the contract.
#include "cuda/common.cuh"
#include "cuda/dequant.cuh"
#include "cuda/elementwise.cuh"

namespace moescope::cuda {

namespace {
__global__ void silu_mul_kernel(float* g, const float* u, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { const float v = g[i]; g[i] = v / (1.0f + expf(-v)) * u[i]; }  // expf, not __expf: the CPU's std::exp
}
__global__ void add_kernel(float* x, const float* y, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}
template <class D>
__global__ void embed_kernel(const uint8_t* table, size_t row_bytes, const int32_t* tokens, int64_t D_, float* out) {
  const uint8_t* row = table + (size_t)tokens[blockIdx.x] * row_bytes;
  float* o = out + (int64_t)blockIdx.x * D_;
  for (int64_t u = threadIdx.x; u < D_ / 8; u += blockDim.x) {
    float w[8];
    D::unit(row, u, w);
    for (int i = 0; i < 8; i++) o[u * 8 + i] = w[i];
  }
}
using EmbedFn = void (*)(const uint8_t*, size_t, const int32_t*, int64_t, float*);
}  // namespace

void silu_mul(float* gate, const float* up, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  silu_mul_kernel<<<cdiv(n, 256), 256, 0, s>>>(gate, up, n);
  CUDA_LAUNCHED("silu_mul");
}

void add(float* x, const float* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  add_kernel<<<cdiv(n, 256), 256, 0, s>>>(x, y, n);
  CUDA_LAUNCHED("add");
}

void embed_rows(const uint8_t* table, uint32_t type, size_t row_bytes, const int32_t* tokens, int64_t T, int64_t D, float* out, cudaStream_t s) {
  if (T <= 0) return;
  // F16/F32/BF16/K-quant rows need 16-byte alignment for the vector loads (checked at upload).
  EmbedFn f = nullptr;
  switch (type) {
    case 0: f = embed_kernel<DecF32>; break;
    case 1: f = embed_kernel<DecF16>; break;
    case 30: f = embed_kernel<DecBF16>; break;
    case 8: f = embed_kernel<DecQ8_0>; break;
    case 2: f = embed_kernel<DecQ4_0>; break;
    case 12: f = embed_kernel<DecQ4_K>; break;
    case 13: f = embed_kernel<DecQ5_K>; break;
    case 14: f = embed_kernel<DecQ6_K>; break;
    default: fail("CUDA_UNSUPPORTED_TYPE", strfmt("token_embd: weight type %u has no CUDA decoder. HINT: load with { device: \"cpu\" }", type));
  }
  f<<<(unsigned)T, 128, 0, s>>>(table, row_bytes, tokens, D, out);
  CUDA_LAUNCHED("embed_rows");
}

}  // namespace moescope::cuda
