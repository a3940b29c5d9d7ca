// MoE routing and expert plumbing kernels; see moe.cuh for the contract.
#include "cuda/common.cuh"
#include "cuda/moe.cuh"

namespace moescope::cuda {

namespace {

constexpr int kMaxExperts = 256;

// Next best expert not yet taken (strictly greater wins, so ties go to the lower index), or -1.
__device__ int take_best(const float* sel, int64_t E, uint32_t* taken) {
  int best = -1;
  float bv = 0.f;
  for (int e = 0; e < E; e++) {
    if (taken[e >> 5] & (1u << (e & 31))) continue;
    if (best < 0 || sel[e] > bv) { best = e; bv = sel[e]; }
  }
  if (best >= 0) taken[best >> 5] |= 1u << (best & 31);
  return best;
}

__global__ void route_kernel(const float* __restrict__ logits, int64_t T, int64_t E, int64_t K, const int64_t* __restrict__ pos, RouteIv iv,
                             int32_t* experts, float* gates, int32_t* slot_expert) {
  const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const float* z = logits + t * E;
  float sel[kMaxExperts];
  uint32_t taken[kMaxExperts / 32] = {0};
  for (int e = 0; e < E; e++) sel[e] = iv.bias ? z[e] + iv.bias[e] : z[e];
  for (int64_t j = 0; j < K; j++) {
    int e = take_best(sel, E, taken);
    bool zeroed = false;
    if (iv.ablate && e >= 0 && iv.ablate[e]) {
      if (iv.ablate[e] & 1) zeroed = true;
      if (iv.ablate[e] & 2) {
        int c;
        do { c = take_best(sel, E, taken); } while (c >= 0 && iv.ablate[c]);
        if (c >= 0) e = c;
      }
    }
    for (int r = 0; r < iv.n_replay; r++) {
      const int64_t* rp = iv.replay + 4 * r;
      const int64_t row = pos[t] - rp[0];
      if (row >= 0 && (row + 1) * rp[1] <= rp[2] && j < rp[1]) e = iv.replay_experts[rp[3] + row * rp[1] + j];
    }
    for (int f = 0; f < iv.n_force; f++)
      if ((iv.force[2 * f] < 0 || iv.force[2 * f] == pos[t]) && j == 0) e = (int)iv.force[2 * f + 1];
    if (e < 0 || e >= E) e = 0;  // unreachable: the host validated every intervention's expert ids
    experts[t * K + j] = e;
    gates[t * K + j] = 1.0f / (1.0f + expf(-z[e]));
    slot_expert[t * K + j] = zeroed ? -1 : e;
  }
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
