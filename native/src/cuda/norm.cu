// RMSNorm kernel; see norm.cuh for the contract.
#include "cuda/common.cuh"
#include "cuda/norm.cuh"

namespace moescope::cuda {

namespace {
__global__ void rms_norm_kernel(const float* x, const float* w, float* y, int64_t n, double eps) {
  __shared__ double red[32];
  const float* xr = x + (int64_t)blockIdx.x * n;
  float* yr = y + (int64_t)blockIdx.x * n;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += (double)xr[i] * xr[i];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    double v = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) red[0] = v;
  }
  __syncthreads();
  const float scale = (float)(1.0 / sqrt(red[0] / (double)n + eps));
  // Every thread has read its own elements above; later rows never overlap, so y may alias x.
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? xr[i] * scale * w[i] : xr[i] * scale;
}
}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, double eps, cudaStream_t s) {
  if (rows <= 0) return;
  const int threads = n >= 1024 ? 256 : (n >= 128 ? 128 : 32);
  rms_norm_kernel<<<(unsigned)rows, threads, 0, s>>>(x, w, y, n, eps);
  CUDA_LAUNCHED("rms_norm");
}

}  // namespace moescope::cuda
