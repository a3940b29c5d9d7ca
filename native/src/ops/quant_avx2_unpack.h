// The AVX2 pieces several weight-type kernels share: unpacking K-quant bytes into whole quants (the
// exact kernels of quant_avx2.cpp and the fast mode's K-quant kernels in quant_q8k.cpp), the
// activation rounding, and horizontal sums and maxima. Include it only inside a SIMD region
// (MS_AVX2_BEGIN or MS_AVX512_BEGIN, simd_region.h): its functions are compiled for the region's
// instruction set where they are inlined.
#pragma once
#include <immintrin.h>

#include "ops/quant_blocks.h"

#define MQ_INLINE inline __attribute__((always_inline))

namespace moescope::quant {

MQ_INLINE float hsum4(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
MQ_INLINE float hsum8(__m256 v) {
  return hsum4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}
MQ_INLINE float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

// The 8 x 8 transpose of 32-bit lanes: out[j] lane i = r[i] lane j. Written out, not looped: rolled
// loops here compiled to round trips through the stack (perf annotate; 30 % of a prefill kernel).
MQ_INLINE void transpose8x8(const __m256 r[8], __m256 out[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  out[0] = _mm256_permute2f128_ps(s0, s4, 0x20), out[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  out[1] = _mm256_permute2f128_ps(s1, s5, 0x20), out[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  out[2] = _mm256_permute2f128_ps(s2, s6, 0x20), out[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  out[3] = _mm256_permute2f128_ps(s3, s7, 0x20), out[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// One token's outputs of a 16-row panel (two vectors of 8 rows) to o[0..prow). Stores, not a copy
// loop: a loop here compiled to rep movsq, 14 % of the int8 tile's time.
MQ_INLINE void store_panel_outputs(float* o, const __m256 acc[2], int prow) {
  if (prow == 16) {
    _mm256_storeu_ps(o, acc[0]);
    _mm256_storeu_ps(o + 8, acc[1]);
    return;
  }
  alignas(32) float v[16];
  _mm256_store_ps(v, acc[0]);
  _mm256_store_ps(v + 8, acc[1]);
  for (int r = 0; r < prow; ++r) o[r] = v[r];
}

// The fast mode's decode steps: every weight row (blocks B of QK weights) against every activation
// row (VIEW of row t), one dot at a time: out[t * ldo + r] = DOT(row r, view, n / QK). A function of
// its own: inlined into gemm_q8k_avx2, beside the int8 tile's large frame, this loop compiled 5-10 %
// slower (`node tests/ops/kernel-ab.js decode Q4_K 1024 512 1`). Aligned to a cache line, so that
// where its hot loop falls does not move with unrelated code: two builds with the same instructions
// here ran Q8_0 decode 7 % apart (`kernel-ab.js decode Q8_0 1024 512 1`) until it was.
template <class B, class View, View (*VIEW)(const void*, int64_t), float (*DOT)(const B*, const View&, int64_t), int QK>
__attribute__((noinline, aligned(64))) void dot_each_row(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq,
                                            int64_t n, int ntok, float* out, int64_t ldo) {
  for (int t = 0; t < ntok; ++t) {
    const View a = VIEW((const uint8_t*)xq + (size_t)t * ldxq, n);
    for (int64_t r = 0; r < nrows; ++r) out[(int64_t)t * ldo + r] = DOT((const B*)((const uint8_t*)w + r * row_stride), a, n / QK);
  }
}

// round_int8 (quant_blocks.h) for 32 values: x * inv rounded to nearest even (cvtps, the default
// rounding) into 32 int8 at qs, and the integer sums of elements 0-15 and 16-31.
MQ_INLINE void round32_int8(const float* x, __m256 inv, int8_t* qs, int sums16[2]) {
  __m256i q[4];
  for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), inv));
  // Pack to bytes; packs works within 128-bit lanes, the permute puts the 8 dwords back in order.
  const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  _mm256_storeu_si256((__m256i*)qs, _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  // 32-bit lanes of q[0]+q[1] hold elements 0-15, of q[2]+q[3] elements 16-31.
  const __m256i h = _mm256_hadd_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  const __m128i h2 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  sums16[0] = _mm_extract_epi32(h2, 0) + _mm_extract_epi32(h2, 1);
  sums16[1] = _mm_extract_epi32(h2, 2) + _mm_extract_epi32(h2, 3);
}

// The 8 six-bit scales (bytes 0-7) and mins (8-15)
// of a Q4_K/Q5_K block from its 12 scale bytes (ggml's get_scale_min_k4 for all eight at once), in
// registers: a scalar unpacking written to memory as 32-bit words and read back as wider vectors
// stalls on failed store forwarding (16 bytes are read: the block's quants follow its scales).
MQ_INLINE __m128i scales_mins_k4(const uint8_t* q) {
  const __m128i v = _mm_loadu_si128((const __m128i*)q);  // dwords u0 u1 u2
  const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x3F));  // sc0-3 | m0-3
  const __m128i top = _mm_and_si128(_mm_srli_epi16(v, 2), _mm_set1_epi8(0x30));  // bits 6-7 of u0 | u1, as bits 4-5
  const __m128i u2 = _mm_shuffle_epi32(v, 0xAA);
  const __m128i low4 = _mm_blend_epi32(_mm_and_si128(u2, _mm_set1_epi8(0x0F)), _mm_and_si128(_mm_srli_epi16(u2, 4), _mm_set1_epi8(0x0F)), 0x2);
  return _mm_unpacklo_epi32(lo, _mm_or_si128(low4, top));  // sc0-3 sc4-7 m0-3 m4-7
}

// Q4_K / Q5_K: bytes 32i..32i+31 of a block's qs hold sub-block 2i (low nibbles) and 2i+1 (high
// nibbles); Q5_K's fifth bit of element l of sub-block s is bit s of qh[l] (qh: the block's 32 qh bytes).
template <bool FIVE_BITS>
MQ_INLINE void kquant_unsigned(const uint8_t* qs, __m256i qh, int i, __m256i* lo, __m256i* hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i v = _mm256_loadu_si256((const __m256i*)(qs + 32 * i));
  *lo = _mm256_and_si256(v, m4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  if (FIVE_BITS) {
    const __m256i sixteen = _mm256_set1_epi8(16);
    const __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * i))), b1 = _mm256_set1_epi8((char)(2 << (2 * i)));
    *lo = _mm256_or_si256(*lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), sixteen));
    *hi = _mm256_or_si256(*hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), sixteen));
  }
}

// Q6_K, half h (elements 128h..128h+127) of a block: u[g] = the unsigned quants q + 32 of elements
// l + 32g, l = 0..31. Two high bits per element: qh bits 0-1, 2-3, 4-5, 6-7 feed elements l, l+32,
// l+64, l+96; each lands in bits 4-5 (the 16-bit shifts never carry a neighbour's bits past the masks).
MQ_INLINE void q6k_unsigned(const block_q6_K& b, int h, __m256i u[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30);
  const __m256i qa = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h));
  const __m256i qc = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h + 32));
  const __m256i qh = _mm256_loadu_si256((const __m256i*)(b.qh + 32 * h));
  u[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
  u[1] = _mm256_or_si256(_mm256_and_si256(qc, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
  u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(qh, m30));
  u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qc, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
}

// Q6_K, half h: its 8 signed scales as 16-bit words, in both 128-bit lanes; then group g's scale per
// maddubs word: words 0-7 come from the group's elements 0-15 (scale 2g), words 8-15 from 16-31 (2g+1).
MQ_INLINE __m256i q6k_half_scales(const block_q6_K& b, int h) {
  return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i*)(b.scales + 8 * h))));
}
MQ_INLINE __m256i q6k_group_scales(__m256i half_scales, int g) {
  const __m256i pick = _mm256_set_m128i(_mm_set1_epi16((short)(((4 * g + 3) << 8) | (4 * g + 2))),
                                        _mm_set1_epi16((short)(((4 * g + 1) << 8) | (4 * g))));
  return _mm256_shuffle_epi8(half_scales, pick);
}

}  // namespace moescope::quant
