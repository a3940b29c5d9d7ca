// Attention kernels; see attention.cuh for the contract.
#include <cfloat>

#include "cuda/attention.cuh"
#include "cuda/common.cuh"

namespace moescope::cuda {

namespace {

constexpr int kAttnWarps = 4;
constexpr int kMaxPer = 8;  // Dh / 32 values per lane, Dh <= 256

__device__ __forceinline__ float kv_load(const float* p) { return *p; }
__device__ __forceinline__ float kv_load(const uint16_t* p) { return __uint_as_float((uint32_t)*p << 16); }

__device__ __forceinline__ void key_range(const AttnShape& a, int64_t p, int64_t& lo, int64_t& n) {
  lo = a.chunk > 0 ? (p / a.chunk) * a.chunk : 0;
  if (lo < a.cache_pos0) lo = a.cache_pos0;
  n = p - lo + 1;
}

// One block per (t, h); warp w takes keys w, w + 4, ...; lane l holds elements l, l + 32, ... of
// q, of the running output and of each key/value row (coalesced). Warps merge at the end.
template <class E>
__global__ void __launch_bounds__(kAttnWarps * 32) flash_kernel(AttnShape a, const float* __restrict__ q, const E* __restrict__ k,
                                                                const E* __restrict__ v, const int64_t* __restrict__ pos,
                                                                const uint8_t* __restrict__ head_mask, float* __restrict__ out) {
  const int64_t t = blockIdx.x / a.H, h = blockIdx.x % a.H, hk = h / (a.H / a.Hkv);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float* o = out + (t * a.H + h) * a.Dh;
  if (head_mask && head_mask[h]) {
    for (int64_t d = threadIdx.x; d < a.Dh; d += blockDim.x) o[d] = 0.f;
    return;
  }
  const int per = (int)((a.Dh + 31) / 32);
  const float scale = 1.0f / sqrtf((float)a.Dh);
  float qr[kMaxPer], acc[kMaxPer];
  const float* qp = q + (t * a.H + h) * a.Dh;
#pragma unroll
  for (int i = 0; i < kMaxPer; i++) {
    const int64_t d = lane + 32 * i;
    qr[i] = (i < per && d < a.Dh) ? qp[d] : 0.f;
    acc[i] = 0.f;
  }
  int64_t lo, n;
  key_range(a, pos[t], lo, n);
  const int64_t row = a.Hkv * a.Dh;
  const E* kb = k + (lo - a.cache_pos0) * row + hk * a.Dh;
  const E* vb = v + (lo - a.cache_pos0) * row + hk * a.Dh;
  float m = -FLT_MAX, l = 0.f;
  for (int64_t i = w; i < n; i += kAttnWarps) {
    const E* kr = kb + i * row;
    float sdot = 0.f;
#pragma unroll
    for (int j = 0; j < kMaxPer; j++) {
      const int64_t d = lane + 32 * j;
      if (j < per && d < a.Dh) sdot += qr[j] * kv_load(kr + d);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sdot += __shfl_xor_sync(0xffffffffu, sdot, off);
    const float sc = sdot * scale;
    const float mn = fmaxf(m, sc);
    const float corr = expf(m - mn), pr = expf(sc - mn);
    l = l * corr + pr;
    const E* vr = vb + i * row;
#pragma unroll
    for (int j = 0; j < kMaxPer; j++) {
      const int64_t d = lane + 32 * j;
      if (j < per && d < a.Dh) acc[j] = acc[j] * corr + pr * kv_load(vr + d);
    }
    m = mn;
  }
  __shared__ float sm[kAttnWarps], sl[kAttnWarps];
  __shared__ float sacc[kAttnWarps][256];
  if (lane == 0) { sm[w] = m; sl[w] = l; }
#pragma unroll
  for (int j = 0; j < kMaxPer; j++) {
    const int64_t d = lane + 32 * j;
    if (j < per && d < a.Dh) sacc[w][d] = acc[j];
  }
  __syncthreads();
  float M = -FLT_MAX;
  for (int i = 0; i < kAttnWarps; i++) M = fmaxf(M, sm[i]);
  float L = 0.f;
  for (int i = 0; i < kAttnWarps; i++) L += sl[i] > 0.f ? sl[i] * expf(sm[i] - M) : 0.f;
  for (int64_t d = threadIdx.x; d < a.Dh; d += blockDim.x) {
    float s = 0.f;
    for (int i = 0; i < kAttnWarps; i++)
      if (sl[i] > 0.f) s += sacc[i][d] * expf(sm[i] - M);
    o[d] = s / L;
  }
}

// One block per requested (t, h): scores into the destination row, then max, exp, float64 sum and
// normalisation in place, as the CPU does them.
template <class E>
__global__ void probs_kernel(AttnShape a, const float* __restrict__ q, const E* __restrict__ k, const int64_t* __restrict__ pos,
                             const int32_t* __restrict__ slots, float* __restrict__ probs, int64_t ld) {
  __shared__ float red_f[32];
  __shared__ double red_d[32];
  const int64_t th = slots[blockIdx.x], t = th / a.H, h = th % a.H, hk = h / (a.H / a.Hkv);
  float* pr = probs + (int64_t)blockIdx.x * ld;
  int64_t lo, n;
  key_range(a, pos[t], lo, n);
  const int64_t row = a.Hkv * a.Dh;
  const float* qp = q + (t * a.H + h) * a.Dh;
  const E* kb = k + (lo - a.cache_pos0) * row + hk * a.Dh;
  const float scale = 1.0f / sqrtf((float)a.Dh);
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const E* kr = kb + i * row;
    float s = 0.f;
    for (int64_t d = 0; d < a.Dh; d++) s += qp[d] * kv_load(kr + d);
    s *= scale;
    pr[i] = s;
    mx = fmaxf(mx, s);
  }
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
  if (lane == 0) red_f[w] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int i = 0; i < nw; i++) mx = fmaxf(mx, red_f[i]);
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float e = expf(pr[i] - mx);
    pr[i] = e;
    sum += e;
  }
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0) red_d[w] = sum;
  __syncthreads();
  sum = 0;
  for (int i = 0; i < nw; i++) sum += red_d[i];
  const float inv = (float)(1.0 / sum);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) pr[i] *= inv;
}

// fp32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN. The CPU's fp32_to_bf16.
__device__ __forceinline__ uint16_t to_bf16(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
__device__ __forceinline__ void kv_store(float* d, float f) { *d = f; }
__device__ __forceinline__ void kv_store(uint16_t* d, float f) { *d = to_bf16(f); }

// Row t of src goes to cache slot pos[t] - pos0: the slot is read on the device, so a captured decode
// step (a CUDA graph) appends at the right place at every replay.
template <class E>
__global__ void kv_append_kernel(const float* __restrict__ src, int64_t T, int64_t row, E* __restrict__ dst, const int64_t* __restrict__ pos,
                                 int64_t pos0) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= T * row) return;
  const int64_t t = i / row;
  kv_store(dst + (pos[t] - pos0) * row + (i - t * row), src[i]);
}

}  // namespace

void kv_append(const float* src, int64_t T, int64_t row, void* dst, const int64_t* pos, int64_t pos0, bool bf16, cudaStream_t s) {
  if (T <= 0) return;
  const unsigned blocks = cdiv(T * row, 256);
  if (bf16) kv_append_kernel<<<blocks, 256, 0, s>>>(src, T, row, (uint16_t*)dst, pos, pos0);
  else kv_append_kernel<<<blocks, 256, 0, s>>>(src, T, row, (float*)dst, pos, pos0);
  CUDA_LAUNCHED("kv_append");
}

void attention_flash(const AttnShape& a, const float* q, const void* k, const void* v, const int64_t* pos, const uint8_t* head_mask, float* out,
                     cudaStream_t s) {
  if (a.T <= 0) return;
  MOESCOPE_CHECK(a.Dh <= 256 && a.Hkv > 0 && a.H % a.Hkv == 0, "CUDA_UNSUPPORTED_SHAPE",
                 "attention: head_dim %lld (max 256), heads %lld / kv heads %lld. HINT: load with { device: \"cpu\" }", (long long)a.Dh,
                 (long long)a.H, (long long)a.Hkv);
  if (a.kv_bf16)
    flash_kernel<<<(unsigned)(a.T * a.H), kAttnWarps * 32, 0, s>>>(a, q, (const uint16_t*)k, (const uint16_t*)v, pos, head_mask, out);
  else
    flash_kernel<<<(unsigned)(a.T * a.H), kAttnWarps * 32, 0, s>>>(a, q, (const float*)k, (const float*)v, pos, head_mask, out);
  CUDA_LAUNCHED("attention_flash");
}

void attention_probs(const AttnShape& a, const float* q, const void* k, const int64_t* pos, const int32_t* slots, int64_t n, float* probs,
                     int64_t ld_probs, cudaStream_t s) {
  if (n <= 0) return;
  if (a.kv_bf16) probs_kernel<<<(unsigned)n, 256, 0, s>>>(a, q, (const uint16_t*)k, pos, slots, probs, ld_probs);
  else probs_kernel<<<(unsigned)n, 256, 0, s>>>(a, q, (const float*)k, pos, slots, probs, ld_probs);
  CUDA_LAUNCHED("attention_probs");
}

}  // namespace moescope::cuda
