// The opt-in fast mode: activations rounded to int8 (one float scale per 32 values, like ggml's
// Q8_0/Q8_1 activation blocks) and dotted with the weights in integer arithmetic, as llama.cpp
// does. NOT exact: the activation rounding (relative 1/254 of each 32-block's largest value)
// moves the result by about 1e-3 relative, enough to flip close routing decisions. It exists for
// speed comparisons and for users who ask for it; the default kernels (quant.cpp, quant_avx2.cpp)
// keep activations float32.
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
  float *s32 = d + n / QK8_0, *s16 = d + 2 * (n / QK8_0);
  for (int64_t k = 0; k < n / QK8_0; ++k, x += QK8_0, qs += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    float id;
    const float dk = int8_scale(amax, &id);
    int sum[2];
    round_int8(x, QK8_0, id, qs, sum);
    d[k] = dk;
    s32[k] = dk * (float)(sum[0] + sum[1]);
    s16[2 * k] = dk * (float)sum[0];
    s16[2 * k + 1] = dk * (float)sum[1];
  }
}

namespace {

// Portable: dequantise 32 weights at a time through the type's exact decoder and multiply by the
// dequantised activations.
template <void (*DECODE)(const void*, int64_t, int64_t, float*)>
void dot_q8act_portable(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                        float* out, int64_t ldo) {
  float buf[QK_K];
  for (int64_t r = 0; r < nrows; ++r) {
    const void* wr = (const uint8_t*)w + (size_t)r * row_stride;
    for (int t = 0; t < ntok; ++t) {
      const Q8ActRow a = q8act_row((const uint8_t*)xq + (size_t)t * ldxq, n);
      float acc[8] = {};
      for (int64_t i0 = 0; i0 < n; i0 += QK_K) {
        const int64_t cnt = n - i0 < QK_K ? n - i0 : QK_K;
        DECODE(wr, i0, cnt, buf);
        for (int64_t i = 0; i < cnt; ++i) acc[i & 7] += buf[i] * (a.qs[i0 + i] * a.d[(i0 + i) / QK8_0]);
      }
      out[(int64_t)t * ldo + r] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
  }
}

}  // namespace

// The span decoders of quant.cpp, reached through the registry (to_float decodes whole rows, and a
// span [i0, i0+cnt) is the row starting cnt/block blocks later).
template <uint32_t TYPE>
static void decode_via_registry(const void* row, int64_t i0, int64_t cnt, float* dst) {
  const TypeTraits* tt = type_traits(TYPE);
  tt->to_float((const uint8_t*)row + (size_t)(i0 / tt->block_size) * tt->type_size, dst, cnt);
}

DotQ8ActFn scalar_dot_q8act(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::Q8_0: return dot_q8act_portable<decode_via_registry<(uint32_t)GgmlType::Q8_0>>;
    case GgmlType::Q4_0: return dot_q8act_portable<decode_via_registry<(uint32_t)GgmlType::Q4_0>>;
    case GgmlType::Q4_K: return dot_q8act_portable<decode_via_registry<(uint32_t)GgmlType::Q4_K>>;
    case GgmlType::Q5_K: return dot_q8act_portable<decode_via_registry<(uint32_t)GgmlType::Q5_K>>;
    case GgmlType::Q6_K: return dot_q8act_portable<decode_via_registry<(uint32_t)GgmlType::Q6_K>>;
    default: return nullptr;
  }
}

}  // namespace moescope::quant

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/avx2_region.h"

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

// Q4_K / Q5_K. Per block: the integer dot of each 32-element sub-block (maddubs + madd, 8 int32
// lanes) is turned to float once and multiplied by sc * d_y of its sub-block (kept in memory and
// broadcast by the load port, not a shuffle); the block scale d multiplies the block's sum, and the
// mins term dmin * sum_s m_s * (d_y sum(y))_s is one vector product, subtracted from the same
// accumulator. One row at a time: tiles of 2 and 4 rows sharing the activation loads were no
// faster, from L2 or from memory (tests/ops/kernel-ab.js decode, measured again once this kernel's
// prefetch really compiled). Decode is bound by walking the weights more than by this arithmetic
// (BENCHMARKS.md, run H).
template <bool FIVE_BITS>
MQ_INLINE float kquant_row(const kquant_block<FIVE_BITS>* b, const Q8ActRow& a, int64_t nb) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead<sizeof(b[k])>(b + k);
    const float d = _cvtsh_ss(b[k].d), dmin = _cvtsh_ss(b[k].dmin);
    alignas(16) uint8_t sm[16];
    unpack_scales_k4(b[k].scales, sm);
    alignas(32) float scy[8];
    _mm256_store_ps(scy, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)sm))),
                                       _mm256_loadu_ps(a.d + 8 * k)));
    const __m256 mv = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(sm + 8))));
    acc = _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_set1_ps(dmin), mv), _mm256_loadu_ps(a.s32 + 8 * k), acc);
    const uint8_t* qs = b[k].qs;
    const int8_t* y = a.qs + QK_K * k;
    const __m256i qh = FIVE_BITS ? _mm256_loadu_si256((const __m256i*)kquant_qh(b[k])) : _mm256_setzero_si256();
    __m256 bacc0 = _mm256_setzero_ps(), bacc1 = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m256i lo, hi;
      kquant_unsigned<FIVE_BITS>(qs, qh, j, &lo, &hi);
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)(y + 64 * j))), ones);
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(y + 64 * j + 32))), ones);
      bacc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(&scy[2 * j]), _mm256_cvtepi32_ps(p0), bacc0);
      bacc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(&scy[2 * j + 1]), _mm256_cvtepi32_ps(p1), bacc1);
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_add_ps(bacc0, bacc1), acc);
  }
  return hsum8(acc);
}

float q4_K_row(const block_q4_K* w, const Q8ActRow& a, int64_t nb) {
  return kquant_row<false>(w, a, nb);
}
float q5_K_row(const block_q5_K* w, const Q8ActRow& a, int64_t nb) {
  return kquant_row<true>(w, a, nb);
}

// Q6_K. Per 32 elements: the unsigned quants u = q + 32 (see quant_avx2.cpp), maddubs against y,
// madd with the group's two 16-element scales (words 0-7 of maddubs come from elements 0-15, words
// 8-15 from 16-31), then one FMA by d * d_y. The -32 of every quant is
// 32 * d * sum_i sc_i * (d_y sum(y))_i, one vector step per block, subtracted from the same accumulator.
float q6_K_row(const block_q6_K* w, const Q8ActRow& a, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead<sizeof(block_q6_K)>(w + k);
    const __m256 dv = _mm256_set1_ps(_cvtsh_ss(w[k].d));
    alignas(32) float ydv[8];  // d * d_y of each 32-group, broadcast by the load port
    _mm256_store_ps(ydv, _mm256_mul_ps(dv, _mm256_loadu_ps(a.d + 8 * k)));
    const __m128i sc16 = _mm_loadu_si128((const __m128i*)w[k].scales);
    const __m256 sc_lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc16));
    const __m256 sc_hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc16, 8)));
    const float* s16 = a.s16 + 16 * k;
    const __m256 off = _mm256_fmadd_ps(sc_lo, _mm256_loadu_ps(s16), _mm256_mul_ps(sc_hi, _mm256_loadu_ps(s16 + 8)));
    acc1 = _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_set1_ps(32.0f), dv), off, acc1);
    for (int h = 0; h < 2; ++h) {
      const int8_t* y = a.qs + QK_K * k + 128 * h;
      __m256i u[4];  // elements l, l+32, l+64, l+96 of the half
      q6k_unsigned(w[k], h, u);
      const __m256i sw = q6k_half_scales(w[k], h);
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u[g], _mm256_loadu_si256((const __m256i*)(y + 32 * g))),
                                            q6k_group_scales(sw, g));
        if (g & 1) acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(&ydv[4 * h + g]), _mm256_cvtepi32_ps(p), acc1);
        else acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(&ydv[4 * h + g]), _mm256_cvtepi32_ps(p), acc0);
      }
    }
  }
  return hsum8(_mm256_add_ps(acc0, acc1));
}

template <class B, float (*ROW)(const B*, const Q8ActRow&, int64_t), int QK>
void dot_q8act_avx2(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                    float* out, int64_t ldo) {
  for (int t = 0; t < ntok; ++t) {
    const Q8ActRow a = q8act_row((const uint8_t*)xq + (size_t)t * ldxq, n);
    for (int64_t r = 0; r < nrows; ++r) out[(int64_t)t * ldo + r] = ROW((const B*)((const uint8_t*)w + r * row_stride), a, n / QK);
  }
}

// quantize_q8act_portable, 32 values at a time: the same bytes and sums.
void quantize_q8act_avx2(const float* x, int64_t n, void* dst) {
  int8_t* qs = (int8_t*)dst;
  float* d = (float*)(qs + n);
  float *s32 = d + n / QK8_0, *s16 = d + 2 * (n / QK8_0);
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
    s16[2 * k] = dk * (float)sum[0];
    s16[2 * k + 1] = dk * (float)sum[1];
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
    case GgmlType::Q8_0: return dot_q8act_avx2<block_q8_0, q8_0_row, QK8_0>;
    case GgmlType::Q4_0: return dot_q8act_avx2<block_q4_0, q4_0_row, QK4_0>;
    case GgmlType::Q4_K: return dot_q8act_avx2<block_q4_K, q4_K_row, QK_K>;
    case GgmlType::Q5_K: return dot_q8act_avx2<block_q5_K, q5_K_row, QK_K>;
    case GgmlType::Q6_K: return dot_q8act_avx2<block_q6_K, q6_K_row, QK_K>;
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
