// MoE routing and expert plumbing kernels; see moe.cuh for the contract.
#include "cuda/common.cuh"
#include "cuda/moe.cuh"

namespace moescope::cuda {

namespace {

__global__ void route_kernel(const float* __restrict__ logits, int64_t T, int64_t E, int64_t K, const int64_t* __restrict__ pos, RouteIv iv,
                             int32_t* experts, float* gates, int32_t* slot_expert) {
  const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= T) return;
  route_token(logits + t * E, E, K, pos[t], iv, experts + t * K, gates + t * K, slot_expert + t * K);
}

__global__ void gather_scaled_kernel(const float* x, int64_t D, int64_t K, const int32_t* slot, const float* gates, float* out) {
  const int64_t i = blockIdx.x;
  const int64_t s = slot ? slot[i] : i;
  const float g = gates[s];
  const float* xr = x + (s / K) * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) out[i * D + d] = xr[d] * g;
}

__global__ void scatter_rows_kernel(const float* y, int64_t D, const int32_t* slot, float* y_slot) {
  const int64_t i = blockIdx.x;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) y_slot[slot[i] * D + d] = y[i * D + d];
}

__global__ void combine_kernel(const float* y_slot, const int32_t* slot_expert, int64_t K, int64_t D, float* routed) {
  const int64_t t = blockIdx.x;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float s = 0.f;
    for (int64_t j = 0; j < K; j++)
      if (slot_expert[t * K + j] >= 0) s += y_slot[(t * K + j) * D + d];
    routed[t * D + d] = s;
  }
}

}  // namespace

void route(const float* logits, int64_t T, int64_t E, int64_t K, const int64_t* pos, const RouteIv& iv, int32_t* experts, float* gates,
           int32_t* slot_expert, cudaStream_t s) {
  if (T <= 0) return;
  MOESCOPE_CHECK(E <= kMaxExperts && K <= E, "CUDA_UNSUPPORTED_SHAPE", "routing: %lld experts (max %d), top-%lld. HINT: load with { device: \"cpu\" }",
                 (long long)E, kMaxExperts, (long long)K);
  route_kernel<<<cdiv(T, 64), 64, 0, s>>>(logits, T, E, K, pos, iv, experts, gates, slot_expert);
  CUDA_LAUNCHED("route");
}

void gather_scaled(const float* x, int64_t D, int64_t K, const int32_t* slot, int64_t n, const float* gates, float* out, cudaStream_t s) {
  if (n <= 0) return;
  gather_scaled_kernel<<<(unsigned)n, 256, 0, s>>>(x, D, K, slot, gates, out);
  CUDA_LAUNCHED("gather_scaled");
}

void scatter_rows(const float* y, int64_t D, const int32_t* slot, int64_t n, float* y_slot, cudaStream_t s) {
  if (n <= 0) return;
  scatter_rows_kernel<<<(unsigned)n, 256, 0, s>>>(y, D, slot, y_slot);
  CUDA_LAUNCHED("scatter_rows");
}

void combine(const float* y_slot, const int32_t* slot_expert, int64_t T, int64_t K, int64_t D, float* routed, cudaStream_t s) {
  if (T <= 0) return;
  combine_kernel<<<(unsigned)T, 256, 0, s>>>(y_slot, slot_expert, K, D, routed);
  CUDA_LAUNCHED("combine");
}

}  // namespace moescope::cuda
