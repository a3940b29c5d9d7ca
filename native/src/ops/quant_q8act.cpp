// The opt-in fast mode: activations rounded to int8 (one float scale per 32 values, like ggml's
// Q8_0/Q8_1 activation blocks) and dotted with the weights in integer arithmetic, as llama.cpp
// does. NOT exact: the activation rounding (relative 1/254 of each 32-block's largest value)
// moves the result by about 1e-3 relative, enough to flip close routing decisions. It exists for
// speed comparisons and for users who ask for it; the default kernels (quant.cpp, quant_avx2.cpp)
// keep activations float32.
//
// Contract: quantize_q8act(x, n, dst) writes n/32 blocks of {float d; int16 bsum[2]; int8 qs[32]}
// (bsum[h] = sum of qs[16h .. 16h+15]); dot_q8act(w_row, xq, ldxq, n, ntok, out, ldo) computes,
// for each of ntok activation rows (row t at (const char*)xq + t*ldxq), the dot of the
// dequantised weight row with the dequantised activation row, up to float32 rounding.
// The portable kernels dequantise both sides to float; the AVX2 ones (compiled for AVX2 in a
// target region, picked only when the CPU has it) stay in integers within each 32-block.
#include <cmath>
#include <cstddef>
#include <cstring>

#include "ops/quant_blocks.h"

namespace moescope {

void quantize_q8act(const float* x, int64_t n, void* dst) {
  using namespace quant;
  block_q8act* y = (block_q8act*)dst;
  for (int64_t k = 0; k < n / QK8_0; ++k, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[k].d = d;
    int s0 = 0, s1 = 0;
    for (int j = 0; j < QK8_0; ++j) {
      const int q = (int)std::lrintf(x[j] * id);
      y[k].qs[j] = (int8_t)q;
      (j < 16 ? s0 : s1) += q;
    }
    y[k].bsum[0] = (int16_t)s0;
    y[k].bsum[1] = (int16_t)s1;
  }
}

}  // namespace moescope

namespace moescope::quant {

static_assert(sizeof(block_q8act) == 40, "activation block layout");

namespace {

// Portable: dequantise 32 weights at a time through the type's exact decoder and multiply by the
// dequantised activations.
template <void (*DECODE)(const void*, int64_t, int64_t, float*)>
void dot_q8act_portable(const void* w, const void* xq, size_t ldxq, int64_t n, int ntok, float* out, int64_t ldo) {
  float buf[QK_K];
  for (int t = 0; t < ntok; ++t) {
    const block_q8act* a = (const block_q8act*)((const uint8_t*)xq + (size_t)t * ldxq);
    float acc[8] = {};
    for (int64_t i0 = 0; i0 < n; i0 += QK_K) {
      const int64_t cnt = n - i0 < QK_K ? n - i0 : QK_K;
      DECODE(w, i0, cnt, buf);
      for (int64_t i = 0; i < cnt; ++i) {
        const block_q8act& b = a[(i0 + i) / QK8_0];
        acc[i & 7] += buf[i] * (b.qs[(i0 + i) % QK8_0] * b.d);
      }
    }
    out[(int64_t)t * ldo] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
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

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace moescope::quant {
namespace {

#define MQ_INLINE inline __attribute__((always_inline))

MQ_INLINE float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 unsigned quants (< 128) times 32 int8 activations -> 8 int32 partial sums as floats.
MQ_INLINE __m256 udot32(__m256i u, __m256i y) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1)));
}

float q8_0_row(const block_q8_0* w, const block_q8act* a, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead(w + k, 1);
    const __m256i q = _mm256_loadu_si256((const __m256i*)w[k].qs);
    const __m256i y = _mm256_loadu_si256((const __m256i*)a[k].qs);
    // maddubs wants an unsigned operand: |q| against y with q's sign.
    const __m256 p = udot32(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
    const __m256 s = _mm256_set1_ps(_cvtsh_ss(w[k].d) * a[k].d);
    if (k & 1) acc1 = _mm256_fmadd_ps(s, p, acc1);
    else acc0 = _mm256_fmadd_ps(s, p, acc0);
  }
  return hsum8(_mm256_add_ps(acc0, acc1));
}

float q4_0_row(const block_q4_0* w, const block_q8act* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  float off = 0.0f;  // the -8 of every quant: 8 * d * dy * sum(y)
  const __m128i m4 = _mm_set1_epi8(0x0F);
  for (int64_t k = 0; k < nb; ++k) {
    if (k & 1) prefetch_ahead(w + k, 1);
    const __m128i v = _mm_loadu_si128((const __m128i*)w[k].qs);
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
    const __m256i y = _mm256_loadu_si256((const __m256i*)a[k].qs);
    const float s = _cvtsh_ss(w[k].d) * a[k].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(s), udot32(u, y), acc);
    off += 8.0f * s * (float)(a[k].bsum[0] + a[k].bsum[1]);
  }
  return hsum8(acc) - off;
}

// Per block: the integer dot of each 32-element sub-block (maddubs + madd, 8 int32 lanes) is turned
// to float once and multiplied by sc * d_y of its sub-block, a lane of one vector computed per block
// (no scalar scale arithmetic in the inner loop); the block scale d multiplies the block's sum and
// the mins term dmin * sum_s m_s * d_y,s * sum(y_s) is one vector product per block.
template <bool FIVE_BITS>
MQ_INLINE float kquant_row(const uint8_t* base, size_t block_bytes, size_t qs_off, const block_q8act* a, int64_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16), ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, a += QK_K / QK8_0) {
    const uint8_t* blk = base + k * block_bytes;
    prefetch_ahead(blk, block_bytes);
    const float d = _cvtsh_ss(*(const f16_bits*)blk), dmin = _cvtsh_ss(*(const f16_bits*)(blk + 2));
    alignas(16) uint8_t sm[16];
    unpack_scales_k4(blk + 4, sm);
    const __m256 yd = _mm256_setr_ps(a[0].d, a[1].d, a[2].d, a[3].d, a[4].d, a[5].d, a[6].d, a[7].d);
    const __m256 scy = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)sm))), yd);
    const __m256 ysum = _mm256_cvtepi32_ps(_mm256_setr_epi32(
        a[0].bsum[0] + a[0].bsum[1], a[1].bsum[0] + a[1].bsum[1], a[2].bsum[0] + a[2].bsum[1], a[3].bsum[0] + a[3].bsum[1],
        a[4].bsum[0] + a[4].bsum[1], a[5].bsum[0] + a[5].bsum[1], a[6].bsum[0] + a[6].bsum[1], a[7].bsum[0] + a[7].bsum[1]));
    const __m256 mv = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(sm + 8))));
    mins = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_mul_ps(mv, yd)), ysum, mins);
    const uint8_t* qs = blk + qs_off;
    const __m256i qh = FIVE_BITS ? _mm256_loadu_si256((const __m256i*)(blk + 16)) : _mm256_setzero_si256();
    __m256 bacc0 = _mm256_setzero_ps(), bacc1 = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256((const __m256i*)(qs + 32 * j));
      __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      if (FIVE_BITS) {
        const __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * j))), b1 = _mm256_set1_epi8((char)(2 << (2 * j)));
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), sixteen));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), sixteen));
      }
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)a[2 * j].qs)), ones);
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)a[2 * j + 1].qs)), ones);
      bacc0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(scy, _mm256_set1_epi32(2 * j)), _mm256_cvtepi32_ps(p0), bacc0);
      bacc1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(scy, _mm256_set1_epi32(2 * j + 1)), _mm256_cvtepi32_ps(p1), bacc1);
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_add_ps(bacc0, bacc1), acc);
  }
  return hsum8(_mm256_sub_ps(acc, mins));
}

float q6_K_row(const block_q6_K* w, const block_q8act* a, int64_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m128 off = _mm_setzero_ps();  // the -32 of every quant: 32 * d * sum_g d_y,g * (scaled sums of y_g)
  for (int64_t k = 0; k < nb; ++k, a += QK_K / QK8_0) {
    prefetch_ahead(w + k, sizeof(block_q6_K));
    const float d = _cvtsh_ss(w[k].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w[k].ql + 64 * h;
      const int8_t* sc = w[k].scales + 8 * h;
      const __m256i qa = _mm256_loadu_si256((const __m256i*)ql);
      const __m256i qc = _mm256_loadu_si256((const __m256i*)(ql + 32));
      const __m256i qh = _mm256_loadu_si256((const __m256i*)(w[k].qh + 32 * h));
      // Unsigned 6-bit quants u = q + 32 of elements l, l+32, l+64, l+96 (see quant_avx2.cpp).
      __m256i u[4];
      u[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
      u[1] = _mm256_or_si256(_mm256_and_si256(qc, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
      u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(qh, m30));
      u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qc, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const block_q8act& y = a[4 * h + g];
        // Words 0-7 of maddubs come from elements 0-15 (scale sc[2g]), words 8-15 from 16-31.
        const __m256i sv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]), _mm_set1_epi16(sc[2 * g]));
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u[g], _mm256_loadu_si256((const __m256i*)y.qs)), sv);
        const __m256 s = _mm256_set1_ps(d * y.d);
        if (g & 1) acc1 = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc1);
        else acc0 = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc0);
      }
      // One vector step per half-block instead of a chain of scalar products.
      const block_q8act* y4 = a + 4 * h;
      const __m128i ys = _mm_setr_epi32(sc[0] * y4[0].bsum[0] + sc[1] * y4[0].bsum[1], sc[2] * y4[1].bsum[0] + sc[3] * y4[1].bsum[1],
                                        sc[4] * y4[2].bsum[0] + sc[5] * y4[2].bsum[1], sc[6] * y4[3].bsum[0] + sc[7] * y4[3].bsum[1]);
      const __m128 yd = _mm_mul_ps(_mm_set1_ps(d), _mm_setr_ps(y4[0].d, y4[1].d, y4[2].d, y4[3].d));
      off = _mm_fmadd_ps(yd, _mm_cvtepi32_ps(ys), off);
    }
  }
  off = _mm_add_ps(off, _mm_movehl_ps(off, off));
  off = _mm_add_ss(off, _mm_movehdup_ps(off));
  return hsum8(_mm256_add_ps(acc0, acc1)) - 32.0f * _mm_cvtss_f32(off);
}

template <class B, float (*ROW)(const B*, const block_q8act*, int64_t), int QK>
void dot_q8act_avx2(const void* w, const void* xq, size_t ldxq, int64_t n, int ntok, float* out, int64_t ldo) {
  for (int t = 0; t < ntok; ++t)
    out[(int64_t)t * ldo] = ROW((const B*)w, (const block_q8act*)((const uint8_t*)xq + (size_t)t * ldxq), n / QK);
}

float q4_K_row(const block_q4_K* w, const block_q8act* a, int64_t nb) {
  return kquant_row<false>((const uint8_t*)w, sizeof(block_q4_K), offsetof(block_q4_K, qs), a, nb);
}
float q5_K_row(const block_q5_K* w, const block_q8act* a, int64_t nb) {
  return kquant_row<true>((const uint8_t*)w, sizeof(block_q5_K), offsetof(block_q5_K, qs), a, nb);
}

}  // namespace
}  // namespace moescope::quant

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace moescope::quant {
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
DotQ8ActFn avx2_dot_q8act(uint32_t) { return nullptr; }
}  // namespace moescope::quant

#endif
