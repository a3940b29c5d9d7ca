#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/quant_blocks.h"
#include "ops/simd_region.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moescope {

namespace {

// The two inner loops of attention, for the G query heads that share one KV head (GQA): q·k over the
// keys, and the probability-weighted sum of values, for each cache element type (E: float or
// bfloat16 bits). AVX2+FMA versions for head dims that are multiples of 8 (every Llama 4 size),
// and AVX-512 versions of those with the same bits, picked at run time. Each key and value row is
// loaded once for all G heads; every score is still one FMA chain over the head dim and every
// output element one chain over the keys, in order, so the results are those of one head at a
// time, bit for bit.
inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return quant::bf16_to_fp32(*p); }

template <class E>
void scores_row_scalar(const float* q, const E* k, int64_t k_stride, int64_t n, int64_t Dh, float scale, float* out) {
  for (int64_t i = 0; i < n; i++) {
    const E* kr = k + i * k_stride;
    float s = 0;
    for (int64_t d = 0; d < Dh; d++) s += q[d] * load1(kr + d);
    out[i] = s * scale;
  }
}

// o += sum over i of p[i] v[i], in order of i (o holds the sum over earlier keys).
template <class E>
void weighted_sum_scalar(const float* p, const E* v, int64_t v_stride, int64_t n, int64_t Dh, float* o) {
  for (int64_t i = 0; i < n; i++) {
    const E* vr = v + i * v_stride;
    const float w = p[i];
    for (int64_t d = 0; d < Dh; d++) o[d] += w * load1(vr + d);
  }
}

// q: G heads at stride q_stride; out: G rows at stride ld (n scores each). p: [G][p_stride]; o: G
// heads at stride o_stride, added to.
template <class E>
void scores_group_scalar(const float* q, int64_t q_stride, int64_t G, const E* k, int64_t k_stride, int64_t n, int64_t Dh,
                         float scale, float* out, int64_t ld) {
  for (int64_t g = 0; g < G; g++) scores_row_scalar(q + g * q_stride, k, k_stride, n, Dh, scale, out + g * ld);
}

template <class E>
void weighted_group_scalar(const float* p, int64_t p_stride, int64_t G, const E* v, int64_t v_stride, int64_t n, int64_t Dh,
                           float* o, int64_t o_stride) {
  for (int64_t g = 0; g < G; g++) weighted_sum_scalar(p + g * p_stride, v, v_stride, n, Dh, o + g * o_stride);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) inline __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}

__attribute__((target("avx2,fma"))) inline float hsum8(__m256 acc) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  return _mm_cvtss_f32(s4);
}

// A tile of GH heads x NK keys (GH * NK = 8 FMA chains in flight): per 8 dims, NK key loads and GH
// query loads feed 8 FMAs (one head and eight keys loaded 9 vectors for the same work).
template <class E, int GH, int NK>
__attribute__((target("avx2,fma"))) inline void scores_tile(const float* q, int64_t q_stride, const E* k, int64_t k_stride,
                                                             int64_t Dh, float scale, float* out, int64_t ld) {
  __m256 acc[GH][NK];
  for (int g = 0; g < GH; g++)
    for (int j = 0; j < NK; j++) acc[g][j] = _mm256_setzero_ps();
  for (int64_t d = 0; d < Dh; d += 8) {
    __m256 kv[NK];
#pragma GCC unroll 8
    for (int j = 0; j < NK; j++) kv[j] = load8(k + j * k_stride + d);
#pragma GCC unroll 4
    for (int g = 0; g < GH; g++) {
      const __m256 qv = _mm256_loadu_ps(q + g * q_stride + d);
#pragma GCC unroll 8
      for (int j = 0; j < NK; j++) acc[g][j] = _mm256_fmadd_ps(qv, kv[j], acc[g][j]);
    }
  }
  for (int g = 0; g < GH; g++)
    for (int j = 0; j < NK; j++) out[g * ld + j] = hsum8(acc[g][j]) * scale;
}

template <class E, int GH>
__attribute__((target("avx2,fma"))) void scores_heads(const float* q, int64_t q_stride, const E* k, int64_t k_stride, int64_t n,
                                                        int64_t Dh, float scale, float* out, int64_t ld) {
  constexpr int NK = 8 / GH;
  int64_t i = 0;
  for (; i + NK <= n; i += NK) scores_tile<E, GH, NK>(q, q_stride, k + i * k_stride, k_stride, Dh, scale, out + i, ld);
  for (; i < n; i++) scores_tile<E, GH, 1>(q, q_stride, k + i * k_stride, k_stride, Dh, scale, out + i, ld);
}

template <class E>
__attribute__((target("avx2,fma"))) void scores_group_avx2(const float* q, int64_t q_stride, int64_t G, const E* k, int64_t k_stride,
                                                             int64_t n, int64_t Dh, float scale, float* out, int64_t ld) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) scores_heads<E, 4>(q + g * q_stride, q_stride, k, k_stride, n, Dh, scale, out + g * ld, ld);
  for (; g + 2 <= G; g += 2) scores_heads<E, 2>(q + g * q_stride, q_stride, k, k_stride, n, Dh, scale, out + g * ld, ld);
  for (; g < G; g++) scores_heads<E, 1>(q + g * q_stride, q_stride, k, k_stride, n, Dh, scale, out + g * ld, ld);
}

// A tile of GH heads x NV value vectors (8 accumulators): per key, NV value loads and GH broadcast
// probabilities feed 8 FMAs. The accumulators start from o (the sums over earlier keys).
template <class E, int GH, int NV>
__attribute__((target("avx2,fma"))) inline void weighted_tile(const float* p, int64_t p_stride, const E* v, int64_t v_stride,
                                                               int64_t n, float* o, int64_t o_stride) {
  __m256 acc[GH][NV];
  for (int g = 0; g < GH; g++)
    for (int r = 0; r < NV; r++) acc[g][r] = _mm256_loadu_ps(o + g * o_stride + 8 * r);
  for (int64_t i = 0; i < n; i++) {
    __m256 vv[NV];
#pragma GCC unroll 8
    for (int r = 0; r < NV; r++) vv[r] = load8(v + i * v_stride + 8 * r);
#pragma GCC unroll 4
    for (int g = 0; g < GH; g++) {
      const __m256 w = _mm256_set1_ps(p[g * p_stride + i]);
#pragma GCC unroll 8
      for (int r = 0; r < NV; r++) acc[g][r] = _mm256_fmadd_ps(w, vv[r], acc[g][r]);
    }
  }
  for (int g = 0; g < GH; g++)
    for (int r = 0; r < NV; r++) _mm256_storeu_ps(o + g * o_stride + 8 * r, acc[g][r]);
}

template <class E, int GH>
__attribute__((target("avx2,fma"))) void weighted_heads(const float* p, int64_t p_stride, const E* v, int64_t v_stride, int64_t n,
                                                          int64_t Dh, float* o, int64_t o_stride) {
  constexpr int NV = 8 / GH;
  int64_t d0 = 0;
  for (; d0 + 8 * NV <= Dh; d0 += 8 * NV) weighted_tile<E, GH, NV>(p, p_stride, v + d0, v_stride, n, o + d0, o_stride);
  for (; d0 < Dh; d0 += 8) weighted_tile<E, GH, 1>(p, p_stride, v + d0, v_stride, n, o + d0, o_stride);
}

template <class E>
__attribute__((target("avx2,fma"))) void weighted_group_avx2(const float* p, int64_t p_stride, int64_t G, const E* v, int64_t v_stride,
                                                               int64_t n, int64_t Dh, float* o, int64_t o_stride) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) weighted_heads<E, 4>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
  for (; g + 2 <= G; g += 2) weighted_heads<E, 2>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
  for (; g < G; g++) weighted_heads<E, 1>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
}

// e^x for four x <= 0, computed in double (2^n e^r, |r| <= ln2 / 2, e^r by its Taylor series to r^10,
// relative error below 3e-13) and rounded once to float: on every third float in [-103.5, 0] it gives
// glibc's expf in all but 0.009 % of cases (by one ulp). A float polynomial (Cephes', 1 ulp) moved the
// tiny-Scout golden attention probabilities from 0.53 to 0.65 of the error the test allows.
__attribute__((target("avx2,fma"))) inline __m128 exp4_nonpositive(__m128 xf) {
  const __m256d x = _mm256_max_pd(_mm256_cvtps_pd(xf), _mm256_set1_pd(-104.0));  // e^-104 rounds to 0
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(0.6931471805598903), x);  // ln 2 in two parts: n * hi is exact
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(5.497923018708371e-14), r);
  __m256d p = _mm256_set1_pd(1.0 / 3628800);
  for (const double c : {1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0})
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
  const __m256i two_n = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)), _mm256_set1_epi64x(1023)), 52);
  return _mm256_cvtpd_ps(_mm256_mul_pd(p, _mm256_castsi256_pd(two_n)));
}
__attribute__((target("avx2,fma"))) inline __m256 exp_nonpositive(__m256 x) {
  return _mm256_set_m128(exp4_nonpositive(_mm256_extractf128_ps(x, 1)), exp4_nonpositive(_mm256_castps256_ps128(x)));
}

// s[0..n) <- softmax(s): e^(s - max), summed in double (lane-wise, then the lanes), normalised.
__attribute__((target("avx2,fma"))) void softmax_avx2(float* s, int64_t n) {
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
  float mx = -INFINITY;
  alignas(32) float m8[8];
  _mm256_store_ps(m8, mv);
  for (float m : m8) mx = std::max(mx, m);
  for (int64_t i = j; i < n; i++) mx = std::max(mx, s[i]);
  const __m256 mxv = _mm256_set1_ps(mx);
  __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), mxv));
    _mm256_storeu_ps(s + j, e);
    sum0 = _mm256_add_pd(sum0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    sum1 = _mm256_add_pd(sum1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  if (j < n) {  // the last n % 8, as a masked vector
    alignas(32) float tail[8];
    for (int i = 0; i < 8; i++) tail[i] = j + i < n ? s[j + i] - mx : -INFINITY;
    _mm256_store_ps(tail, exp_nonpositive(_mm256_load_ps(tail)));
    for (int64_t i = j; i < n; i++) s[i] = tail[i - j];
    sum0 = _mm256_add_pd(sum0, _mm256_cvtps_pd(_mm_load_ps(tail)));
    sum1 = _mm256_add_pd(sum1, _mm256_cvtps_pd(_mm_load_ps(tail + 4)));
  }
  alignas(32) double d4[4];
  _mm256_store_pd(d4, _mm256_add_pd(sum0, sum1));
  const __m256 inv = _mm256_set1_ps((float)(1.0 / ((d4[0] + d4[1]) + (d4[2] + d4[3]))));
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
  for (; j < n; j++) s[j] *= _mm256_cvtss_f32(inv);
}

// ---- AVX-512: the same sums, twice the width ----
// Scores: one 512-bit accumulator holds two heads' 8-lane partial sums for one key (lanes 0-7 head
// g, 8-15 head g + 1), fed by the key's 8 dims broadcast to both halves; each half is the AVX2
// accumulator of that head and key exactly, and is summed by the same hsum8. Outputs: each lane is
// one (head, dim) chain over the keys whatever the width. So the results are the AVX2 kernels' bits.
MS_AVX512_BEGIN
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}
inline __m512 load8_twice(const float* p) { return _mm512_broadcast_f32x8(_mm256_loadu_ps(p)); }
inline __m512 load8_twice(const uint16_t* p) { return _mm512_broadcast_f32x8(load8(p)); }

// hsum8 of both 8-lane halves (h0, h1) of four registers r0-r3 at once, by hsum8's additions in
// hsum8's order (quarter + quarter, then lanes 0 + 2 and 1 + 3, then those two), so with its bits; a
// quarter of the instructions of eight hsum8s. Returns [r0h0, r1h0, r0h1, r1h1, r2h0, r3h0, r2h1, r3h1].
inline __m256 hsum8_halves4(__m512 r0, __m512 r1, __m512 r2, __m512 r3) {
  const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(r0, r2, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(r0, r2, _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 u2 = _mm512_add_ps(_mm512_shuffle_f32x4(r1, r3, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(r1, r3, _MM_SHUFFLE(3, 1, 3, 1)));
  // u1's quarters: r0 h0, r0 h1, r2 h0, r2 h1, each (x0+x4, x1+x5, x2+x6, x3+x7); u2 the same of r1, r3.
  const __m512 v = _mm512_add_ps(_mm512_shuffle_ps(u1, u2, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(u1, u2, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 w = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));  // lanes 0, 2 of each quarter
  return _mm512_castps512_ps256(_mm512_maskz_compress_ps(0x5555, w));
}

// NP pairs of heads against NK keys; pair p's queries at qp + 2 Dh p, the two heads' dims
// interleaved by 8 (qp[16 c + 8 h + i] = dim 8 c + i of head h of the pair).
template <class E, int NP, int NK>
inline void scores_tile512(const float* qp, const E* k, int64_t k_stride, int64_t Dh, float scale, float* out, int64_t ld) {
  __m512 acc[NP][NK];
  for (int p = 0; p < NP; p++)
    for (int j = 0; j < NK; j++) acc[p][j] = _mm512_setzero_ps();
  for (int64_t d = 0; d < Dh; d += 8) {
    __m512 kv[NK];
#pragma GCC unroll 8
    for (int j = 0; j < NK; j++) kv[j] = load8_twice(k + j * k_stride + d);
#pragma GCC unroll 2
    for (int p = 0; p < NP; p++) {
      const __m512 qv = _mm512_loadu_ps(qp + p * 2 * Dh + 2 * d);
#pragma GCC unroll 8
      for (int j = 0; j < NK; j++) acc[p][j] = _mm512_fmadd_ps(qv, kv[j], acc[p][j]);
    }
  }
  if constexpr (NK % 4 == 0) {  // four keys' sums at a time: two heads x keys j, j + 1, j + 2, j + 3
    const __m256 sv = _mm256_set1_ps(scale);
    for (int p = 0; p < NP; p++)
      for (int j = 0; j < NK; j += 4) {
        const __m256 r = _mm256_mul_ps(hsum8_halves4(acc[p][j], acc[p][j + 1], acc[p][j + 2], acc[p][j + 3]), sv);
        float* a = out + (2 * p) * ld + j;
        float* b = a + ld;
        _mm_storel_pi((__m64*)a, _mm256_castps256_ps128(r));
        _mm_storeh_pi((__m64*)b, _mm256_castps256_ps128(r));
        _mm_storel_pi((__m64*)(a + 2), _mm256_extractf128_ps(r, 1));
        _mm_storeh_pi((__m64*)(b + 2), _mm256_extractf128_ps(r, 1));
      }
  } else {
    for (int p = 0; p < NP; p++)
      for (int j = 0; j < NK; j++) {
        out[(2 * p) * ld + j] = hsum8(_mm512_castps512_ps256(acc[p][j])) * scale;
        out[(2 * p + 1) * ld + j] = hsum8(_mm512_extractf32x8_ps(acc[p][j], 1)) * scale;
      }
  }
}

template <class E, int NP>
void scores_pairs512(const float* qp, const E* k, int64_t k_stride, int64_t n, int64_t Dh, float scale, float* out, int64_t ld) {
  constexpr int NK = 16 / NP;  // 16 accumulators
  int64_t i = 0;
  for (; i + NK <= n; i += NK) scores_tile512<E, NP, NK>(qp, k + i * k_stride, k_stride, Dh, scale, out + i, ld);
  for (; i + 4 <= n; i += 4) scores_tile512<E, NP, 4>(qp, k + i * k_stride, k_stride, Dh, scale, out + i, ld);
  for (; i < n; i++) scores_tile512<E, NP, 1>(qp, k + i * k_stride, k_stride, Dh, scale, out + i, ld);
}

template <class E>
void scores_group_avx512(const float* q, int64_t q_stride, int64_t G, const E* k, int64_t k_stride, int64_t n, int64_t Dh,
                         float scale, float* out, int64_t ld) {
  thread_local std::vector<float> qp;  // the heads' queries interleaved in pairs
  int64_t g = 0;
  while (G - g >= 2) {
    const int np = G - g >= 4 ? 2 : 1;  // pairs of heads in this tile
    qp.resize(2 * np * Dh);
    for (int p = 0; p < np; p++)
      for (int h = 0; h < 2; h++)
        for (int64_t d = 0; d < Dh; d += 8) std::copy_n(q + (g + 2 * p + h) * q_stride + d, 8, qp.data() + p * 2 * Dh + 2 * d + 8 * h);
    if (np == 2) scores_pairs512<E, 2>(qp.data(), k, k_stride, n, Dh, scale, out + g * ld, ld);
    else scores_pairs512<E, 1>(qp.data(), k, k_stride, n, Dh, scale, out + g * ld, ld);
    g += 2 * np;
  }
  if (g < G) scores_group_avx2<E>(q + g * q_stride, q_stride, G - g, k, k_stride, n, Dh, scale, out + g * ld, ld);
}

// GH heads x NV vectors of 16 dims; per key, NV value loads and GH broadcast probabilities feed GH NV FMAs.
template <class E, int GH, int NV>
inline void weighted_tile512(const float* p, int64_t p_stride, const E* v, int64_t v_stride, int64_t n, float* o, int64_t o_stride) {
  __m512 acc[GH][NV];
  for (int g = 0; g < GH; g++)
    for (int r = 0; r < NV; r++) acc[g][r] = _mm512_loadu_ps(o + g * o_stride + 16 * r);
  for (int64_t i = 0; i < n; i++) {
    __m512 vv[NV];
#pragma GCC unroll 8
    for (int r = 0; r < NV; r++) vv[r] = load16(v + i * v_stride + 16 * r);
#pragma GCC unroll 4
    for (int g = 0; g < GH; g++) {
      const __m512 w = _mm512_set1_ps(p[g * p_stride + i]);
#pragma GCC unroll 8
      for (int r = 0; r < NV; r++) acc[g][r] = _mm512_fmadd_ps(w, vv[r], acc[g][r]);
    }
  }
  for (int g = 0; g < GH; g++)
    for (int r = 0; r < NV; r++) _mm512_storeu_ps(o + g * o_stride + 16 * r, acc[g][r]);
}

template <class E, int GH>
void weighted_heads512(const float* p, int64_t p_stride, const E* v, int64_t v_stride, int64_t n, int64_t Dh, float* o, int64_t o_stride) {
  constexpr int NV = 16 / GH < 4 ? 16 / GH : 4;  // up to 16 accumulators
  int64_t d0 = 0;
  for (; d0 + 16 * NV <= Dh; d0 += 16 * NV) weighted_tile512<E, GH, NV>(p, p_stride, v + d0, v_stride, n, o + d0, o_stride);
  for (; d0 + 16 <= Dh; d0 += 16) weighted_tile512<E, GH, 1>(p, p_stride, v + d0, v_stride, n, o + d0, o_stride);
  if (d0 < Dh) weighted_heads<E, GH>(p, p_stride, v + d0, v_stride, n, Dh - d0, o + d0, o_stride);  // a last 8
}

template <class E>
void weighted_group_avx512(const float* p, int64_t p_stride, int64_t G, const E* v, int64_t v_stride, int64_t n, int64_t Dh,
                           float* o, int64_t o_stride) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) weighted_heads512<E, 4>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
  for (; g + 2 <= G; g += 2) weighted_heads512<E, 2>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
  for (; g < G; g++) weighted_heads512<E, 1>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
}

// softmax_avx2 in 512-bit registers: e^x for eight x at once in double, by the same operations (so
// the same bits), the double sums in one register whose halves are softmax_avx2's two.
inline __m256 exp8_nonpositive(__m256 xf) {
  const __m512d x = _mm512_max_pd(_mm512_cvtps_pd(xf), _mm512_set1_pd(-104.0));
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0.6931471805598903), x);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(5.497923018708371e-14), r);
  __m512d p = _mm512_set1_pd(1.0 / 3628800);
  for (const double c : {1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0})
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
  const __m512i two_n = _mm512_slli_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_cvtpd_epi32(n)), _mm512_set1_epi64(1023)), 52);
  return _mm512_cvtpd_ps(_mm512_mul_pd(p, _mm512_castsi512_pd(two_n)));
}

void softmax_avx512(float* s, int64_t n) {
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
  float mx = _mm512_reduce_max_ps(_mm512_insertf32x8(_mm512_castps256_ps512(mv), mv, 1));  // exact in any order
  for (int64_t i = j; i < n; i++) mx = std::max(mx, s[i]);
  const __m256 mxv = _mm256_set1_ps(mx);
  __m512d sum = _mm512_setzero_pd();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = exp8_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), mxv));
    _mm256_storeu_ps(s + j, e);
    sum = _mm512_add_pd(sum, _mm512_cvtps_pd(e));
  }
  if (j < n) {
    const __mmask8 m = (__mmask8)((1u << (n - j)) - 1);
    const __m256 e = exp8_nonpositive(_mm256_mask_sub_ps(_mm256_set1_ps(-INFINITY), m, _mm256_maskz_loadu_ps(m, s + j), mxv));
    _mm256_mask_storeu_ps(s + j, m, e);
    sum = _mm512_add_pd(sum, _mm512_cvtps_pd(e));
  }
  alignas(32) double d4[4];
  _mm256_store_pd(d4, _mm256_add_pd(_mm512_castpd512_pd256(sum), _mm512_extractf64x4_pd(sum, 1)));
  const __m256 inv = _mm256_set1_ps((float)(1.0 / ((d4[0] + d4[1]) + (d4[2] + d4[3]))));
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
  if (j < n) {
    const __mmask8 m = (__mmask8)((1u << (n - j)) - 1);
    _mm256_mask_storeu_ps(s + j, m, _mm256_mul_ps(_mm256_maskz_loadu_ps(m, s + j), inv));
  }
}
MS_AVX512_END
#endif

bool use_avx2(int64_t Dh) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has && Dh % 8 == 0;
#else
  (void)Dh;
  return false;
#endif
}

void softmax_scalar(float* s, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; j++) mx = std::max(mx, s[j]);
  double sum = 0;
  for (int64_t j = 0; j < n; j++) {
    s[j] = std::exp(s[j] - mx);
    sum += s[j];
  }
  const float inv = (float)(1.0 / sum);
  for (int64_t j = 0; j < n; j++) s[j] *= inv;
}

template <class E>
void attention_impl(ThreadPool& pool, const AttentionArgs& a) {
  using ScoresFn = void (*)(const float*, int64_t, int64_t, const E*, int64_t, int64_t, int64_t, float, float*, int64_t);
  using SumFn = void (*)(const float*, int64_t, int64_t, const E*, int64_t, int64_t, int64_t, float*, int64_t);
  const int64_t G = a.H / a.Hkv;  // query heads per KV head
  const float scale = 1.0f / std::sqrt((float)a.Dh);
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx512 = quant::avx512_available();
  const ScoresFn scores_group = !use_avx2(a.Dh) ? scores_group_scalar<E> : avx512 ? scores_group_avx512<E> : scores_group_avx2<E>;
  const SumFn weighted_group = !use_avx2(a.Dh) ? weighted_group_scalar<E> : avx512 ? weighted_group_avx512<E> : weighted_group_avx2<E>;
  void (*const softmax)(float*, int64_t) = !use_avx2(a.Dh) ? softmax_scalar : avx512 ? softmax_avx512 : softmax_avx2;
#else
  const ScoresFn scores_group = scores_group_scalar<E>;
  const SumFn weighted_group = weighted_group_scalar<E>;
  void (*const softmax)(float*, int64_t) = softmax_scalar;
#endif
  const E* k_cache = (const E*)a.k_cache;
  const E* v_cache = (const E*)a.v_cache;
  // One unit = up to kQueries query tokens and one KV head with its G query heads (contiguous in q
  // and out). The keys and values are visited kKeys at a time, each pass for all the unit's tokens, so
  // that a pass's rows are read from memory once and then from cache: at 4096 tokens one query token
  // at a time read the whole cache per token, and attention was half of a prefill. Each score is still
  // one FMA chain over the head dim, and each output element one chain over the keys in order (its
  // accumulators carried from pass to pass in o), so the results are those of one token at a time.
  constexpr int64_t kQueries = 8, kKeys = 256;
  const int64_t kv_stride = a.Hkv * a.Dh;
  // A unit's scores are kept until its softmax: at most about 8 MiB of them, so that contexts beyond
  // ~50k keys take fewer tokens per unit (the results do not depend on how many).
  int64_t max_keys = 1;
  for (int64_t t = 0; t < a.T; t++) max_keys = std::max(max_keys, a.pos[t] - std::max(a.chunk > 0 ? a.pos[t] / a.chunk * a.chunk : 0, a.cache_pos0) + 1);
  const int64_t per_unit = std::clamp<int64_t>((int64_t{2} << 20) / (G * max_keys), 1, kQueries);
  pool.parallel_for((a.T + per_unit - 1) / per_unit * a.Hkv, 1, [&](int64_t b, int64_t e, int) {
    thread_local std::vector<float> scores;  // per token [G][n]; kept per thread, no allocation per call
    for (int64_t u = b; u < e; u++) {
      const int64_t t0 = u / a.Hkv * per_unit, t1 = std::min(a.T, t0 + per_unit), hk = u % a.Hkv, h0 = hk * G;
      // Token t sees cache slots [first[t], first[t] + n[t]); its scores start at at[t].
      int64_t first[kQueries], n[kQueries], at[kQueries], total = 0, s0 = INT64_MAX, s1 = 0;
      for (int64_t t = t0; t < t1; t++) {
        const int64_t p = a.pos[t], i = t - t0;
        const int64_t lo = std::max(a.chunk > 0 ? (p / a.chunk) * a.chunk : 0, a.cache_pos0);
        first[i] = lo - a.cache_pos0;
        n[i] = p - lo + 1;
        at[i] = total;
        total += G * n[i];
        s0 = std::min(s0, first[i]);
        s1 = std::max(s1, first[i] + n[i]);
      }
      scores.resize(total);
      const E* kh = k_cache + hk * a.Dh;
      const E* vh = v_cache + hk * a.Dh;
      // f(t, i, c, ce) for each pass of kKeys cache slots and each token t (index i in the unit) that
      // sees slots [c, ce) of it, in the order the sums need: pass by pass.
      auto passes = [&](auto&& f) {
        for (int64_t c0 = s0; c0 < s1; c0 += kKeys)
          for (int64_t t = t0; t < t1; t++) {
            const int64_t i = t - t0, c = std::max(c0, first[i]), ce = std::min(c0 + kKeys, first[i] + n[i]);
            if (c < ce) f(t, i, c, ce);
          }
      };
      passes([&](int64_t t, int64_t i, int64_t c, int64_t ce) {
        scores_group(a.q + (t * a.H + h0) * a.Dh, a.Dh, G, kh + c * kv_stride, kv_stride, ce - c, a.Dh, scale,
                     scores.data() + at[i] + (c - first[i]), n[i]);
      });
      for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t - t0, lo = first[i] + a.cache_pos0;
        for (int64_t g = 0; g < G; g++) {
          float* sg = scores.data() + at[i] + g * n[i];
          softmax(sg, n[i]);
          // The pattern of an ablated head is still reported: ablation acts on its output.
          if (float* pd = a.probs_dst ? a.probs_dst(a.probs_ctx, t, h0 + g) : nullptr) {
            std::fill(pd, pd + lo, 0.f);
            std::copy(sg, sg + n[i], pd + lo);
          }
        }
        std::fill(a.out + (t * a.H + h0) * a.Dh, a.out + (t * a.H + h0 + G) * a.Dh, 0.f);
      }
      passes([&](int64_t t, int64_t i, int64_t c, int64_t ce) {
        weighted_group(scores.data() + at[i] + (c - first[i]), n[i], G, vh + c * kv_stride, kv_stride, ce - c, a.Dh,
                       a.out + (t * a.H + h0) * a.Dh, a.Dh);
      });
      if (a.head_mask)
        for (int64_t t = t0; t < t1; t++)
          for (int64_t g = 0; g < G; g++)
            if (a.head_mask[h0 + g]) std::fill(a.out + (t * a.H + h0 + g) * a.Dh, a.out + (t * a.H + h0 + g + 1) * a.Dh, 0.f);
    }
  });
}

}  // namespace

void op_attention(ThreadPool& pool, const AttentionArgs& a) {
  if (a.kv_type == KvType::BF16) attention_impl<uint16_t>(pool, a);
  else attention_impl<float>(pool, a);
}

}  // namespace moescope
