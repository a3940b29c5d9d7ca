// Fused dequantise-and-dot kernels, one instantiation per weight type (dequant.cuh decoders), and the
// registry that picks them by ggml type id. See matmul.cuh for the contract.
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/dequant.cuh"
#include "cuda/matmul.cuh"

namespace moescope::cuda {

namespace {

constexpr int kWarps = 4;   // rows per block of the out-major kernel
constexpr int kTile = 8;    // tokens per weight pass in prefill

// Out-major: warp w of block b owns output row r = b * kWarps + w; lane l walks units l, l+32, ...
// of that row (consecutive lanes read consecutive bytes). NT activation rows share each decoded unit.
template <class D, int NT>
__global__ void __launch_bounds__(kWarps * 32) mmv_out(const uint8_t* __restrict__ W, size_t stride, int64_t n_in, int64_t n_out,
                                                       const float* __restrict__ x, int64_t ldx, int64_t T, float* __restrict__ y,
                                                       int64_t ldy, const int32_t* __restrict__ experts, size_t expert_stride) {
  const int lane = threadIdx.x & 31;
  const int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (r >= n_out) return;
  int64_t t0 = (int64_t)blockIdx.y * NT;
  if (experts) {  // one activation row per blockIdx.y, its own expert
    const int e = experts[t0];
    if (e < 0) { if (lane == 0) y[t0 * ldy + r] = 0.f; return; }
    W += (size_t)e * expert_stride;
  }
  const int nt = (int)(T - t0 < NT ? T - t0 : NT);
  const uint8_t* row = W + (size_t)r * stride;
  const float* xt = x + t0 * ldx;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = 0.f;
  const int64_t units = n_in / 8;
  for (int64_t u = lane; u < units; u += 32) {
    float w[8];
    D::unit(row, u, w);
#pragma unroll
    for (int t = 0; t < NT; t++) {
      if (t < nt) {
        const float4* xp = (const float4*)(xt + t * ldx + u * 8);
        const float4 a = xp[0], b = xp[1];
        acc[t] += w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y + w[6] * b.z + w[7] * b.w;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; t++) {
    float v = acc[t];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0 && t < nt) y[(t0 + t) * ldy + r] = v;
  }
}

// Decode GEMV of the K-quants (T = 1, or one expert per activation row): warp w of block b owns row
// r = b * kWarps + w; 8 lanes share a super-block (C::dot: 16 bytes of quants and 32 elements each),
// so a warp reads 4 blocks per step with 16-byte loads and decodes without int-to-float converts.
template <class C>
__global__ void __launch_bounds__(kWarps * 32) mmv_chunk(const uint8_t* __restrict__ W, size_t stride, int64_t n_in, int64_t n_out,
                                                         const float* __restrict__ x, int64_t ldx, float* __restrict__ y, int64_t ldy,
                                                         const int32_t* __restrict__ experts, size_t expert_stride) {
  const int lane = threadIdx.x & 31;
  const int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5), t = blockIdx.y;
  if (r >= n_out) return;
  if (experts) {
    const int e = experts[t];
    if (e < 0) { if (lane == 0) y[t * ldy + r] = 0.f; return; }
    W += (size_t)e * expert_stride;
  }
  const uint8_t* row = W + (size_t)r * stride;
  const float* xt = x + t * ldx;
  float acc = 0.f;
  for (int64_t blk = lane >> 3; blk < n_in / C::kBlock; blk += 4)
    acc += C::dot(row + blk * C::kBytes, lane & 7, xt + blk * C::kBlock);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[t * ldy + r] = acc;
}

// In-major (HF fused experts, F32/F16/BF16): thread column c = output, the 4 thread rows split the
// inputs; consecutive threads read consecutive output columns of one input row (coalesced).
constexpr int kInCols = 64, kInSplit = 4;
template <class D, int NT>
__global__ void __launch_bounds__(kInCols * kInSplit) mmv_in(const uint8_t* __restrict__ W, size_t stride, int64_t n_in, int64_t n_out,
                                                             const float* __restrict__ x, int64_t ldx, int64_t T, float* __restrict__ y,
                                                             int64_t ldy, const int32_t* __restrict__ experts, size_t expert_stride) {
  __shared__ float part[kInSplit][NT][kInCols];
  const int64_t c = (int64_t)blockIdx.x * kInCols + threadIdx.x;
  const int64_t t0 = (int64_t)blockIdx.y * NT;
  bool zero = false;
  if (experts) {
    const int e = experts[t0];
    if (e < 0) zero = true;
    else W += (size_t)e * expert_stride;
  }
  const int nt = (int)(T - t0 < NT ? T - t0 : NT);
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = 0.f;
  if (c < n_out && !zero)
    for (int64_t i = threadIdx.y; i < n_in; i += kInSplit) {
      const float w = D::elem(W + (size_t)i * stride, c);
#pragma unroll
      for (int t = 0; t < NT; t++)
        if (t < nt) acc[t] += x[(t0 + t) * ldx + i] * w;
    }
#pragma unroll
  for (int t = 0; t < NT; t++) part[threadIdx.y][t][threadIdx.x] = acc[t];
  __syncthreads();
  if (threadIdx.y == 0 && c < n_out)
    for (int t = 0; t < nt; t++) {
      float v = 0.f;
#pragma unroll
      for (int s = 0; s < kInSplit; s++) v += part[s][t][threadIdx.x];
      y[(t0 + t) * ldy + c] = v;
    }
}

using Launch = void (*)(const DMat&, const int32_t*, const float*, int64_t, int64_t, float*, int64_t, cudaStream_t);

template <class D>
void launch_out(const DMat& W, const int32_t* experts, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy, cudaStream_t s) {
  const dim3 block(kWarps * 32);
  if constexpr (!std::is_void_v<typename D::Chunk>) {
    if (T == 1 || experts) {
      using C = typename D::Chunk;
      mmv_chunk<C><<<dim3(cdiv(W.n_out, kWarps), (unsigned)T), block, 0, s>>>(W.data, W.stride, W.n_in, W.n_out, x, ldx, y, ldy, experts,
                                                                               W.expert_stride);
      CUDA_LAUNCHED("mmv_chunk");
      return;
    }
  }
  if (T == 1 || experts) {
    mmv_out<D, 1><<<dim3(cdiv(W.n_out, kWarps), (unsigned)T), block, 0, s>>>(W.data, W.stride, W.n_in, W.n_out, x, ldx, T, y, ldy, experts,
                                                                              W.expert_stride);
  } else {
    mmv_out<D, kTile><<<dim3(cdiv(W.n_out, kWarps), cdiv(T, kTile)), block, 0, s>>>(W.data, W.stride, W.n_in, W.n_out, x, ldx, T, y, ldy,
                                                                                     nullptr, 0);
  }
  CUDA_LAUNCHED("mmv_out");
}

template <class D>
void launch_in(const DMat& W, const int32_t* experts, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy, cudaStream_t s) {
  const dim3 block(kInCols, kInSplit);
  if (T == 1 || experts) {
    mmv_in<D, 1><<<dim3(cdiv(W.n_out, kInCols), (unsigned)T), block, 0, s>>>(W.data, W.stride, W.n_in, W.n_out, x, ldx, T, y, ldy, experts,
                                                                              W.expert_stride);
  } else {
    mmv_in<D, kTile><<<dim3(cdiv(W.n_out, kInCols), cdiv(T, kTile)), block, 0, s>>>(W.data, W.stride, W.n_in, W.n_out, x, ldx, T, y, ldy,
                                                                                     nullptr, 0);
  }
  CUDA_LAUNCHED("mmv_in");
}

struct Entry {
  uint32_t type;
  const char* name;
  Launch out;
  Launch in;  // nullptr: no in-major kernel (block formats are never in-major in a checkpoint)
};

// The registry: one row per supported weight type.
const Entry kKernels[] = {
    {0, "F32", launch_out<DecF32>, launch_in<DecF32>},
    {1, "F16", launch_out<DecF16>, launch_in<DecF16>},
    {30, "BF16", launch_out<DecBF16>, launch_in<DecBF16>},
    {8, "Q8_0", launch_out<DecQ8_0>, nullptr},
    {2, "Q4_0", launch_out<DecQ4_0>, nullptr},
    {12, "Q4_K", launch_out<DecQ4_K>, nullptr},
    {13, "Q5_K", launch_out<DecQ5_K>, nullptr},
    {14, "Q6_K", launch_out<DecQ6_K>, nullptr},
};

Launch find(const DMat& W) {
  for (const Entry& e : kKernels)
    if (e.type == W.type) {
      Launch l = W.in_major ? e.in : e.out;
      if (l) return l;
    }
  fail("CUDA_UNSUPPORTED_TYPE", strfmt("tensor %s: weight type %u (%s) has no CUDA kernel. HINT: load with { device: \"cpu\" }", W.name,
                                       W.type, W.in_major ? "in-major" : "out-major"));
}

}  // namespace

bool matmul_supports(uint32_t type, bool in_major) {
  for (const Entry& e : kKernels)
    if (e.type == type) return in_major ? e.in != nullptr : true;
  return false;
}

void matmul(const DMat& W, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy, cudaStream_t s) {
  if (T <= 0) return;
  find(W)(W, nullptr, x, ldx, T, y, ldy, s);
}

void matmul_id(const DMat& W, const int32_t* experts, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy, cudaStream_t s) {
  if (T <= 0) return;
  MOESCOPE_CHECK(T <= 65535, "INTERNAL", "matmul_id: %lld rows exceed one launch", (long long)T);
  find(W)(W, experts, x, ldx, T, y, ldy, s);
}

}  // namespace moescope::cuda
