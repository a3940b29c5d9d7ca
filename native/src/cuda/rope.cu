// RoPE and temperature-scaling kernels; see rope.cuh for the contract.
#include "cuda/common.cuh"
#include "cuda/rope.cuh"

namespace moescope::cuda {

namespace {
// One thread per (token, pair j); it rotates pair j of every head (the angle is computed once).
__global__ void rope_kernel(float* x, int64_t T, int64_t heads, int64_t head_dim, const int64_t* pos, const double* freq) {
  const int64_t half = head_dim / 2;
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= T * half) return;
  const int64_t t = i / half, j = i % half;
  const double a = (double)pos[t] * freq[j];
  const float c = (float)cos(a), s = (float)sin(a);
  for (int64_t h = 0; h < heads; h++) {
    float* v = x + (t * heads + h) * head_dim + 2 * j;
    const float p = v[0], q = v[1];
    v[0] = p * c - q * s;
    v[1] = p * s + q * c;
  }
}

__global__ void scale_rows_kernel(float* x, int64_t T, int64_t row, const float* scale) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < T * row) x[i] *= scale[i / row];
}
}  // namespace

void rope(float* x, int64_t T, int64_t heads, int64_t head_dim, const int64_t* pos, const double* freq, cudaStream_t s) {
  const int64_t n = T * (head_dim / 2);
  if (n <= 0) return;
  rope_kernel<<<cdiv(n, 128), 128, 0, s>>>(x, T, heads, head_dim, pos, freq);
  CUDA_LAUNCHED("rope");
}

void scale_rows(float* x, int64_t T, int64_t row, const float* scale, cudaStream_t s) {
  if (T * row <= 0) return;
  scale_rows_kernel<<<cdiv(T * row, 256), 256, 0, s>>>(x, T, row, scale);
  CUDA_LAUNCHED("scale_rows");
}

}  // namespace moescope::cuda
