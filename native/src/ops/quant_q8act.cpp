// The opt-in fast mode for Q8_0 and Q4_0 weights: activations rounded to int8 with one float scale
// per 32 values (ggml's Q8_0 activation blocks, which llama.cpp pairs with these weights) and
// dotted with the weights in integer arithmetic, as llama.cpp does. NOT exact: the activation
// rounding (relative 1/254 of each 32-block's largest value) moves the result by about 1e-3
// relative, enough to flip close routing decisions. It exists for speed comparisons and for users
// who ask for it; the default kernels (quant.cpp, quant_avx2.cpp) keep activations float32. The
// K-quants' fast mode rounds per 256 instead (quant_q8k.cpp).
//
// Contract: quantize_q8act(x, n, dst) writes q8act_row_bytes(n) bytes laid out as Q8ActRow
// (quant_blocks.h); dot_q8act(w, row_stride, nrows, xq, ldxq, n, ntok, out, ldo) computes, for each
// of nrows weight rows and ntok activation rows (row t at (const char*)xq + t*ldxq), the dot of the
// dequantised weight row with the dequantised activation row, up to float32 rounding, into
// out[t*ldo + r]. ops/matmul.cpp calls it for products of at most 4 activation rows.
// The portable kernels dequantise both sides to float; the AVX2 ones (compiled for AVX2 in a
// target region, picked only when the CPU has it) stay in integers within each 32-block.
#include <cmath>
#include <cstddef>
#include <cstring>

#include "ops/quant_blocks.h"

namespace moescope::quant {

void quantize_q8act_portable(const float* x, int64_t n, void* dst) {
  int8_t* qs = (int8_t*)dst;
  float* d = (float*)(qs + n);
  float* s32 = d + n / QK8_0;
  for (int64_t k = 0; k < n / QK8_0; ++k, x += QK8_0, qs += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    float id;
    const float dk = int8_scale(amax, &id);
    int sum[2];
    round_int8(x, QK8_0, id, qs, sum);
    d[k] = dk;
    s32[k] = dk * (float)(sum[0] + sum[1]);
  }
}

DotQ8ActFn scalar_dot_q8act(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::Q8_0: return dot_int8_portable<(uint32_t)GgmlType::Q8_0, Q8ActRow, q8act_row, QK8_0>;
    case GgmlType::Q4_0: return dot_int8_portable<(uint32_t)GgmlType::Q4_0, Q8ActRow, q8act_row, QK4_0>;
    default: return nullptr;
  }
}

}  // namespace moescope::quant

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/simd_region.h"

MS_AVX2_BEGIN

#include "ops/quant_avx2_unpack.h"

namespace moescope::quant {
namespace {

// 32 unsigned quants (< 128) times 32 int8 activations -> 8 int32 partial sums as floats.
MQ_INLINE __m256 udot32(__m256i u, __m256i y) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1)));
}

float q8_0_row(const block_q8_0* w, const Q8ActRow& a, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead<1>(w + k);
    const __m256i q = _mm256_loadu_si256((const __m256i*)w[k].qs);
    const __m256i y = _mm256_loadu_si256((const __m256i*)(a.qs + QK8_0 * k));
    // maddubs wants an unsigned operand: |q| against y with q's sign.
    const __m256 p = udot32(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
    const __m256 s = _mm256_set1_ps(_cvtsh_ss(w[k].d) * a.d[k]);
    if (k & 1) acc1 = _mm256_fmadd_ps(s, p, acc1);
    else acc0 = _mm256_fmadd_ps(s, p, acc0);
  }
  return hsum8(_mm256_add_ps(acc0, acc1));
}

float q4_0_row(const block_q4_0* w, const Q8ActRow& a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  float off = 0.0f;  // the -8 of every quant: 8 * sum_k d_k * (d_y * sum(y))_k
  const __m128i m4 = _mm_set1_epi8(0x0F);
  for (int64_t k = 0; k < nb; ++k) {
    if (k & 1) prefetch_ahead<1>(w + k);
    const __m128i v = _mm_loadu_si128((const __m128i*)w[k].qs);
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
    const __m256i y = _mm256_loadu_si256((const __m256i*)(a.qs + QK8_0 * k));
    const float d = _cvtsh_ss(w[k].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d[k]), udot32(u, y), acc);
    off += d * a.s32[k];
  }
  return hsum8(acc) - 8.0f * off;
}

// quantize_q8act_portable, 32 values at a time: the same bytes and sums.
void quantize_q8act_avx2(const float* x, int64_t n, void* dst) {
  int8_t* qs = (int8_t*)dst;
  float* d = (float*)(qs + n);
  float* s32 = d + n / QK8_0;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t k = 0; k < n / QK8_0; ++k, x += QK8_0, qs += QK8_0) {
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x)), _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8))),
                                   _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)), _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24))));
    float id;
    const float dk = int8_scale(hmax8(m), &id);
    int sum[2];
    round32_int8(x, _mm256_set1_ps(id), qs, sum);
    d[k] = dk;
    s32[k] = dk * (float)(sum[0] + sum[1]);
  }
}

}  // namespace
}  // namespace moescope::quant

MS_AVX2_END

namespace moescope::quant {
static QuantizeFn avx2_quantize_q8act() { return avx2_available() ? quantize_q8act_avx2 : nullptr; }

DotQ8ActFn avx2_dot_q8act(uint32_t type_id) {
  if (!avx2_available()) return nullptr;
  switch ((GgmlType)type_id) {
    case GgmlType::Q8_0: return dot_each_row<block_q8_0, Q8ActRow, q8act_row, q8_0_row, QK8_0>;
    case GgmlType::Q4_0: return dot_each_row<block_q4_0, Q8ActRow, q8act_row, q4_0_row, QK4_0>;
    default: return nullptr;
  }
}
}  // namespace moescope::quant

#else

namespace moescope::quant {
static QuantizeFn avx2_quantize_q8act() { return nullptr; }
DotQ8ActFn avx2_dot_q8act(uint32_t) { return nullptr; }
}  // namespace moescope::quant

#endif

namespace moescope {
void quantize_q8act(const float* x, int64_t n, void* dst) {
  static const quant::QuantizeFn impl = quant::avx2_quantize_q8act() ? quant::avx2_quantize_q8act() : quant::quantize_q8act_portable;
  impl(x, n, dst);
}
}  // namespace moescope
