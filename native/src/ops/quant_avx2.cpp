// AVX2 + FMA + F16C fused dot kernels, one per weight type, chosen at start-up by quant.cpp when
// the CPU has all three features. The rest of the build is baseline x86-64: only this file's
// MS_AVX2_BEGIN .. MS_AVX2_END region (simd_region.h) is compiled for AVX2, and nothing in it may
// run before avx2_available() said yes. On other architectures this file compiles to "not available".
//
// Numerics: activations stay float32. Every product is a float32 multiply of an exactly decoded
// quant by an activation, accumulated in float32 vectors; block scales (and K-quant mins) are
// applied once per block or sub-block to those sums instead of to every weight. So the result
// equals the dot of the ggml-dequantised row up to float32 rounding of the sums (tests bound it
// at 1e-5 of the products' root-sum-square, also for activations with a large common offset).
//
// Kernel shapes:
//   ntok == 1 (decode GEMV, `gemv_*`): one pass over the weight bytes. Q8_0/Q4_0 quants are
//             widened straight from memory, 8 bytes at a time (Q4_0/Q4_K/Q5_K: one widening gives
//             8 quants of two sub-blocks); Q6_K first assembles a block's quants as bytes in element
//             order (a 256-byte buffer) and widens 8 at a time. Block and sub-block scales multiply
//             partial sums, never single weights (1.5x for Q6_K against scaling every weight);
//             K-quant mins use the sub-block sums of x, which dot_rows computes once for all rows.
//   ntok  > 1 (prefill): 256 weights of each of 16 rows are decoded once into floats and packed
//             k-major; a 6-token x 16-row register tile then runs two weight loads, six
//             broadcasts and twelve FMAs per k (dot_panels); for F32 weights sums of 8 k are added
//             pairwise, for the others each 256-k chunk is one chain (the decoders' kPairwise).
//             One row (dot) is a panel of one row, so dot_rows gives dot's results bit for bit.
#include <cstddef>
#include <cstring>

#include "ops/quant_blocks.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/simd_region.h"

namespace moescope::quant {
// Where the CPU has AVX-512, the decode GEMVs and the prefill tile hand over to quant_avx512.cpp's
// (the K-quants' GEMVs to quant_x24.cpp's, in integers).
// Decided here, in baseline code, once at load time.
static const bool kAvx512 = avx512_available();
}  // namespace moescope::quant

MS_AVX2_BEGIN

#include "ops/quant_avx2_unpack.h"

namespace moescope::quant {
namespace {

#define MS_INLINE inline __attribute__((always_inline))
// Loops over registers (accumulators of a tile) must be unrolled completely, or the "registers"
// become stack memory; -O2 alone does not always do it.
#if defined(__clang__)
#define MS_UNROLL _Pragma("unroll")
#else
#define MS_UNROLL _Pragma("GCC unroll 16")
#endif

MS_INLINE float half_to_float(f16_bits h) { return _cvtsh_ss(h); }

// 8 bytes (low half of v) as 8 floats.
MS_INLINE __m256 u8_to_f32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
MS_INLINE __m256 i8_to_f32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
MS_INLINE __m128i hi64(__m128i v) { return _mm_unpackhi_epi64(v, v); }

// ---- sinks: where a decoder's vectors go (prefill). A decoder calls sink(off, w0..w3) with 32
// consecutive decoded weights starting at element `off` of the current block. ----

// Prefill: fill the scratch of the current block.
struct StoreSink {
  float* y;
  MS_INLINE void operator()(int off, __m256 w0, __m256 w1, __m256 w2, __m256 w3) {
    _mm256_store_ps(y + off + 0, w0);
    _mm256_store_ps(y + off + 8, w1);
    _mm256_store_ps(y + off + 16, w2);
    _mm256_store_ps(y + off + 24, w3);
  }
};

// ---- block decoders (ggml's dequantize_row_* in vector form) ----

struct Q8_0 {
  static constexpr GgmlType kType = GgmlType::Q8_0;
  static constexpr int KQUANT_BITS = 0;  // 4/5: Q4_K/Q5_K, whose GEMV wants sub-block sums of x
  using block = block_q8_0;
  static constexpr int QK = QK8_0;
  template <class Sink>
  static MS_INLINE void decode(const block* b, Sink& s) {
    const __m256 d = _mm256_set1_ps(half_to_float(b->d));
    const __m128i lo = _mm_loadu_si128((const __m128i*)b->qs);
    const __m128i hi = _mm_loadu_si128((const __m128i*)(b->qs + 16));
    s(0, _mm256_mul_ps(i8_to_f32(lo), d), _mm256_mul_ps(i8_to_f32(hi64(lo)), d),
      _mm256_mul_ps(i8_to_f32(hi), d), _mm256_mul_ps(i8_to_f32(hi64(hi)), d));
  }
};

struct Q4_0 {
  static constexpr GgmlType kType = GgmlType::Q4_0;
  static constexpr int KQUANT_BITS = 0;  // 4/5: Q4_K/Q5_K, whose GEMV wants sub-block sums of x
  using block = block_q4_0;
  static constexpr int QK = QK4_0;
  template <class Sink>
  static MS_INLINE void decode(const block* b, Sink& s) {
    const __m256 d = _mm256_set1_ps(half_to_float(b->d));
    const __m256 eight = _mm256_set1_ps(8.0f);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i v = _mm_loadu_si128((const __m128i*)b->qs);
    const __m128i lo = _mm_and_si128(v, m4);                     // elements 0..15
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);  // elements 16..31
    // (q - 8) is an exact small integer, so this is ggml's (q - 8) * d bit for bit.
    s(0, _mm256_mul_ps(_mm256_sub_ps(u8_to_f32(lo), eight), d),
      _mm256_mul_ps(_mm256_sub_ps(u8_to_f32(hi64(lo)), eight), d),
      _mm256_mul_ps(_mm256_sub_ps(u8_to_f32(hi), eight), d),
      _mm256_mul_ps(_mm256_sub_ps(u8_to_f32(hi64(hi)), eight), d));
  }
};

// 32 unsigned quants (bytes of q) -> d*q - m, 4 vectors into the sink at `off`.
template <class Sink>
MS_INLINE void affine32(__m256i q, float d, float m, int off, Sink& s) {
  const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  s(off, _mm256_fmsub_ps(u8_to_f32(lo), dv, mv), _mm256_fmsub_ps(u8_to_f32(hi64(lo)), dv, mv),
    _mm256_fmsub_ps(u8_to_f32(hi), dv, mv), _mm256_fmsub_ps(u8_to_f32(hi64(hi)), dv, mv));
}

struct Q4_K {
  static constexpr GgmlType kType = GgmlType::Q4_K;
  static constexpr int KQUANT_BITS = 4;  // 4/5: Q4_K/Q5_K, whose GEMV wants sub-block sums of x
  using block = block_q4_K;
  static constexpr int QK = QK_K;
  template <class Sink>
  static MS_INLINE void decode(const block* b, Sink& s) {
    const float d = half_to_float(b->d), dmin = half_to_float(b->dmin);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * j, b->scales, &sc0, &m0);
      get_scale_min_k4(2 * j + 1, b->scales, &sc1, &m1);
      const __m256i v = _mm256_loadu_si256((const __m256i*)(b->qs + 32 * j));
      affine32(_mm256_and_si256(v, m4), d * sc0, dmin * m0, 64 * j, s);
      affine32(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), d * sc1, dmin * m1, 64 * j + 32, s);
    }
  }
};

struct Q5_K {
  static constexpr GgmlType kType = GgmlType::Q5_K;
  static constexpr int KQUANT_BITS = 5;  // 4/5: Q4_K/Q5_K, whose GEMV wants sub-block sums of x
  using block = block_q5_K;
  static constexpr int QK = QK_K;
  template <class Sink>
  static MS_INLINE void decode(const block* b, Sink& s) {
    const float d = half_to_float(b->d), dmin = half_to_float(b->dmin);
    const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    const __m256i qh = _mm256_loadu_si256((const __m256i*)b->qh);
    for (int j = 0; j < 4; ++j) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * j, b->scales, &sc0, &m0);
      get_scale_min_k4(2 * j + 1, b->scales, &sc1, &m1);
      // Bit 2j of qh[l] is the fifth bit of sub-block 2j, bit 2j+1 that of sub-block 2j+1.
      const __m256i bit0 = _mm256_set1_epi8((char)(1 << (2 * j))), bit1 = _mm256_set1_epi8((char)(2 << (2 * j)));
      const __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit0), bit0), sixteen);
      const __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit1), bit1), sixteen);
      const __m256i v = _mm256_loadu_si256((const __m256i*)(b->qs + 32 * j));
      affine32(_mm256_or_si256(_mm256_and_si256(v, m4), h0), d * sc0, dmin * m0, 64 * j, s);
      affine32(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1), d * sc1, dmin * m1, 64 * j + 32, s);
    }
  }
};

// 32 signed quants -> (d*sc) * q with one scale per 16 elements, into the sink at `off`.
template <class Sink>
MS_INLINE void scaled32(__m256i q, float ds0, float ds1, int off, Sink& s) {
  const __m256 d0 = _mm256_set1_ps(ds0), d1 = _mm256_set1_ps(ds1);
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  s(off, _mm256_mul_ps(i8_to_f32(lo), d0), _mm256_mul_ps(i8_to_f32(hi64(lo)), d0),
    _mm256_mul_ps(i8_to_f32(hi), d1), _mm256_mul_ps(i8_to_f32(hi64(hi)), d1));
}

struct Q6_K {
  static constexpr GgmlType kType = GgmlType::Q6_K;
  static constexpr int KQUANT_BITS = 0;  // 4/5: Q4_K/Q5_K, whose GEMV wants sub-block sums of x
  using block = block_q6_K;
  static constexpr int QK = QK_K;
  template <class Sink>
  static MS_INLINE void decode(const block* b, Sink& s) {
    const float d = half_to_float(b->d);
    const __m256i bias = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; ++h) {
      const int8_t* sc = b->scales + 8 * h;
      __m256i u[4];  // q + 32 of elements l, l+32, l+64, l+96 of the half
      q6k_unsigned(*b, h, u);
      const __m256i q1 = _mm256_sub_epi8(u[0], bias), q2 = _mm256_sub_epi8(u[1], bias);
      const __m256i q3 = _mm256_sub_epi8(u[2], bias), q4 = _mm256_sub_epi8(u[3], bias);
      scaled32(q1, d * sc[0], d * sc[1], 128 * h + 0, s);
      scaled32(q2, d * sc[2], d * sc[3], 128 * h + 32, s);
      scaled32(q3, d * sc[4], d * sc[5], 128 * h + 64, s);
      scaled32(q4, d * sc[6], d * sc[7], 128 * h + 96, s);
    }
  }
};

// ---- the prefill driver: panels of 16 weight rows, packed k-major, against tiles of 6 tokens ----
// 256 weights of each of 16 rows are decoded once into floats and transposed, so that the 16 rows'
// weights for one k sit in two vectors. The register tile is 6 tokens x 16 rows: per k, two weight
// vectors and six broadcast activations feed twelve FMAs (12 accumulators + 2 + 1 of the 16
// registers, the shape of BLIS's microkernels), and no horizontal sums are needed. Each output is
// summed in the same order (panel_tile) whatever the rows and tokens that share the call, so
// dot == dot_rows bit for bit, and a token's result does not depend on the batch it came in.
constexpr int CHUNK = 256;  // weights per row decoded per pass: one K-quant block, 8 Q8_0 blocks
constexpr int PANEL = 16;
constexpr int TILE_TOKENS = 6;
constexpr int TOKENS_PER_PASS = 128;

// 8 rows x 8 floats (row r at src + r * lds) -> 8 k x 8 rows (k at dst + k * ldd).
MS_INLINE void transpose8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], o[8];
  MS_UNROLL for (int i = 0; i < 8; ++i) r[i] = _mm256_load_ps(src + i * lds);
  transpose8x8(r, o);
  MS_UNROLL for (int i = 0; i < 8; ++i) _mm256_store_ps(dst + i * ldd, o[i]);
}

// acc[t][h] += sum over k < cnt of pk[k][8h .. 8h+7] * x_t[k], for TT tokens at stride ldx.
// Rounding, PAIRWISE: the registers sum 8 k at a time, and those span sums are added pairwise as
// they come (a binary counter: level j holds the sum of 2^j spans); a chunk's sum is added to acc.
// Each output is then a chain of 8 + 5 + n/256 additions, never longer than the n/8 + 3 of an
// 8-lane dot product. Otherwise a chain of cnt + n/256. Either way the same whatever rows and
// tokens share the call.
constexpr int64_t SUM_SPAN = 8;
constexpr int SUM_LEVELS = 6;  // 2^5 = 32 spans = one chunk

template <int TT>
MS_INLINE void panel_step(const float* pk, const float* x, int64_t ldx, int64_t k, __m256 (*a)[2]) {
  const __m256 w0 = _mm256_load_ps(pk + k * PANEL), w1 = _mm256_load_ps(pk + k * PANEL + 8);
  MS_UNROLL for (int t = 0; t < TT; ++t) {
    const __m256 xb = _mm256_broadcast_ss(x + t * ldx + k);
    a[t][0] = _mm256_fmadd_ps(w0, xb, a[t][0]);
    a[t][1] = _mm256_fmadd_ps(w1, xb, a[t][1]);
  }
}

template <int TT, bool PAIRWISE>
MS_INLINE void panel_tile(const float* pk, int64_t cnt, const float* x, int64_t ldx, __m256 (*acc)[2]) {
  if constexpr (!PAIRWISE) {  // one chain of cnt (<= 256) k per output, then added to acc
    __m256 a[TT][2];
    MS_UNROLL for (int t = 0; t < TT; ++t) a[t][0] = a[t][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + SUM_SPAN <= cnt; k += SUM_SPAN)
      MS_UNROLL for (int64_t i = k; i < k + SUM_SPAN; ++i) panel_step<TT>(pk, x, ldx, i, a);
    for (; k < cnt; ++k) panel_step<TT>(pk, x, ldx, k, a);
    MS_UNROLL for (int t = 0; t < TT; ++t) {
      acc[t][0] = _mm256_add_ps(acc[t][0], a[t][0]);
      acc[t][1] = _mm256_add_ps(acc[t][1], a[t][1]);
    }
    return;
  }
  __m256 level[SUM_LEVELS][TT][2];
  unsigned spans = 0;
  for (int64_t k0 = 0; k0 < cnt; k0 += SUM_SPAN, ++spans) {
    const int64_t k1 = cnt - k0 < SUM_SPAN ? cnt : k0 + SUM_SPAN;
    __m256 a[TT][2];
    MS_UNROLL for (int t = 0; t < TT; ++t) a[t][0] = a[t][1] = _mm256_setzero_ps();
    if (k1 - k0 == SUM_SPAN) {
      MS_UNROLL for (int64_t k = k0; k < k0 + SUM_SPAN; ++k) panel_step<TT>(pk, x, ldx, k, a);
    } else {
      for (int64_t k = k0; k < k1; ++k) panel_step<TT>(pk, x, ldx, k, a);
    }
    int j = 0;
    for (unsigned c = spans; c & 1; c >>= 1, ++j)
      MS_UNROLL for (int t = 0; t < TT; ++t) {
        a[t][0] = _mm256_add_ps(level[j][t][0], a[t][0]);
        a[t][1] = _mm256_add_ps(level[j][t][1], a[t][1]);
      }
    MS_UNROLL for (int t = 0; t < TT; ++t) { level[j][t][0] = a[t][0]; level[j][t][1] = a[t][1]; }
  }
  // What the counter holds: its levels from the lowest set bit up (all of them for 32 spans).
  int j = 0;
  while (!((spans >> j) & 1)) ++j;
  __m256 sum[TT][2];
  MS_UNROLL for (int t = 0; t < TT; ++t) { sum[t][0] = level[j][t][0]; sum[t][1] = level[j][t][1]; }
  for (++j; (spans >> j) != 0; ++j)
    if ((spans >> j) & 1)
      MS_UNROLL for (int t = 0; t < TT; ++t) {
        sum[t][0] = _mm256_add_ps(level[j][t][0], sum[t][0]);
        sum[t][1] = _mm256_add_ps(level[j][t][1], sum[t][1]);
      }
  MS_UNROLL for (int t = 0; t < TT; ++t) {
    acc[t][0] = _mm256_add_ps(acc[t][0], sum[t][0]);
    acc[t][1] = _mm256_add_ps(acc[t][1], sum[t][1]);
  }
}

template <int TT, bool PAIRWISE>
MS_INLINE void panel_tiles(const float* pk, int64_t cnt, const float* x, int64_t ldx, int nt, __m256 (*acc)[2]) {
  // A tile of 1 or 2 tokens has too few independent accumulators to hide the FMA latency: 7 and 8
  // leftover tokens go as 4 + 3 and 4 + 4 instead of 6 + 1 and 6 + 2.
  const int full = nt % TT != 0 && nt % TT <= 2 && nt > TT ? nt - TT - nt % TT : nt - nt % TT;
  int t = 0;
  for (; t < full; t += TT) panel_tile<TT, PAIRWISE>(pk, cnt, x + t * ldx, ldx, acc + t);
  if (nt - t > TT) {
    panel_tile<4, PAIRWISE>(pk, cnt, x + t * ldx, ldx, acc + t);
    t += 4;
  }
  switch (nt - t) {  // the last tokens of the pass
    case 5: panel_tile<5, PAIRWISE>(pk, cnt, x + t * ldx, ldx, acc + t); break;
    case 4: panel_tile<4, PAIRWISE>(pk, cnt, x + t * ldx, ldx, acc + t); break;
    case 3: panel_tile<3, PAIRWISE>(pk, cnt, x + t * ldx, ldx, acc + t); break;
    case 2: panel_tile<2, PAIRWISE>(pk, cnt, x + t * ldx, ldx, acc + t); break;
    case 1: panel_tile<1, PAIRWISE>(pk, cnt, x + t * ldx, ldx, acc + t); break;
    default: break;
  }
}

// Prefetch the bytes [off, off + BYTES] of prow rows, row r at w + r * stride (stride 0: one row).
template <size_t BYTES>
MS_INLINE void prefetch_rows(const uint8_t* w, size_t stride, int prow, size_t off) {
  for (int r = 0; r < (stride ? prow : 1); ++r)
    for (size_t o = 0; o <= BYTES; o += 64) __builtin_prefetch(w + r * stride + off + o);
}

// nrows rows, row r at w + r * stride, against ntok activation rows; out[t * ldo + r]. Panels of
// 16 rows; in a last panel of fewer rows the absent rows are zeros.
// DECODE(row, i0, cnt, dst) writes cnt decoded floats of the row, from element i0, to dst;
// Decode::kPairwise says how the tile sums (panel_tile).
template <class Decode>
MS_INLINE void dot_panels(const uint8_t* w, size_t stride, int64_t nrows, const float* x, int64_t ldx, int64_t n,
                          int ntok, float* out, int64_t ldo, Decode decode) {
  // Where the CPU has AVX-512, panels go through the tile two at a time (32 rows: each broadcast
  // activation feeds two FMAs; 202 against 177 GFLOP/s standalone), each output still its own chain.
  const int group = !Decode::kPairwise && kAvx512 ? 2 : 1;
  alignas(32) float rows[PANEL][CHUNK];
  alignas(64) float pk[2][CHUNK * PANEL];  // a cache line per k
  const PanelDecodeFn k_major = Decode::k_major();
  __m256 acc[2][TOKENS_PER_PASS][2];
  for (int64_t g0 = 0; g0 < nrows; g0 += group * PANEL) {
    const int np = group == 2 && nrows - g0 > PANEL ? 2 : 1;  // panels in this group
    int prow[2];
    for (int p = 0; p < np; ++p) {
      prow[p] = (int)(nrows - g0 - p * PANEL < PANEL ? nrows - g0 - p * PANEL : PANEL);
      // With at most 8 rows the second half of the panel stays zero: its transposes are skipped.
      if (prow[p] <= 8) memset(pk[p], 0, sizeof(pk[p]));
    }
    for (int t0 = 0; t0 < ntok; t0 += TOKENS_PER_PASS) {
      const int nt = ntok - t0 < TOKENS_PER_PASS ? ntok - t0 : TOKENS_PER_PASS;
      for (int p = 0; p < np; ++p)
        for (int t = 0; t < nt; ++t) acc[p][t][0] = acc[p][t][1] = _mm256_setzero_ps();
      const float* xt = x + (int64_t)t0 * ldx;
      for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        const int64_t cnt = n - i0 < CHUNK ? n - i0 : CHUNK;
        const int64_t cnt8 = (cnt + 7) & ~(int64_t)7;  // element rows need not be multiples of 8
        for (int p = 0; p < np; ++p) {
          const uint8_t* wp = w + (g0 + p * PANEL) * stride;
          // The next chunk's weights (this panel's, or at its end the next group's first) are fetched
          // while this one is multiplied: each chunk touches 16 rows a row apart, which the hardware
          // prefetcher does not follow (the misses were half of an AVX-512 panel's decode time).
          if (i0 + CHUNK < n) prefetch_rows<Decode::kChunkBytes>(wp, stride, prow[p], Decode::byte_offset(i0 + CHUNK));
          else if (t0 + TOKENS_PER_PASS >= ntok && g0 + (np + p) * PANEL < nrows)
            prefetch_rows<Decode::kChunkBytes>(wp + np * PANEL * stride, stride, PANEL, 0);
          if (k_major && cnt == CHUNK) {
            k_major(wp, stride, prow[p], i0, pk[p]);
            continue;
          }
          for (int r = 0; r < PANEL; ++r) {
            if (r < prow[p]) decode(wp + r * stride, i0, cnt, rows[r]);
            else memset(rows[r], 0, sizeof(rows[r]));  // the last panel's absent rows
            if (r < prow[p] && cnt8 != cnt) memset(rows[r] + cnt, 0, (size_t)(cnt8 - cnt) * sizeof(float));
          }
          for (int64_t k0 = 0; k0 < cnt8; k0 += 8) {
            transpose8(&rows[0][k0], CHUNK, pk[p] + k0 * PANEL, PANEL);
            if (prow[p] > 8) transpose8(&rows[8][k0], CHUNK, pk[p] + k0 * PANEL + 8, PANEL);  // else zeros (k_major too)
          }
        }
        if (np == 2) panel_pair_tiles_avx512(pk[0], pk[1], cnt, xt + i0, ldx, nt, (float*)acc[0], (float*)acc[1]);
        else if (group == 2) panel_tiles_avx512(pk[0], cnt, xt + i0, ldx, nt, (float*)acc[0]);
        else panel_tiles<TILE_TOKENS, Decode::kPairwise>(pk[0], cnt, xt + i0, ldx, nt, acc[0]);
      }
      for (int p = 0; p < np; ++p)
        for (int t = 0; t < nt; ++t) store_panel_outputs(out + (int64_t)(t0 + t) * ldo + g0 + p * PANEL, acc[p][t], prow[p]);
    }
  }
}

// ---- decode GEMV (ntok == 1) kernels that factor the block scales out of the inner loop ----
// sum_i (d*q_i - m) * x_i = d * sum_i q_i x_i - m * sum_i x_i: the inner loop is then one
// convert and one FMA per 8 weights (plus an add for the min), and the scales are applied once
// per sub-block. Same value as multiplying the dequantised weights, up to float32 rounding of
// the partial sums (the two terms are of the size of the result's terms, no cancellation beyond
// that of the sum itself). Quants are widened straight from memory (vpmovzxbd m64), so no
// lane-crossing shuffles are needed.

MS_INLINE __m256i load_u8x8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)); }
MS_INLINE __m256i load_i8x8(const int8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)); }

float gemv_q8_0(const block_q8_0* b, int64_t nb, const float* x) {
  if (kAvx512) return gemv_q8_0_avx512(b, nb, x);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK8_0) {
    prefetch_ahead<1>(b + k);
    const __m256 d = _mm256_set1_ps(half_to_float(b[k].d));
    __m256 s0 = _mm256_mul_ps(_mm256_cvtepi32_ps(load_i8x8(b[k].qs + 0)), _mm256_loadu_ps(x + 0));
    __m256 s1 = _mm256_mul_ps(_mm256_cvtepi32_ps(load_i8x8(b[k].qs + 8)), _mm256_loadu_ps(x + 8));
    s0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load_i8x8(b[k].qs + 16)), _mm256_loadu_ps(x + 16), s0);
    s1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load_i8x8(b[k].qs + 24)), _mm256_loadu_ps(x + 24), s1);
    if (k & 1) acc1 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc1);
    else acc0 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc0);
  }
  return hsum8(_mm256_add_ps(acc0, acc1));
}

float gemv_q4_0(const block_q4_0* b, int64_t nb, const float* x) {
  if (kAvx512) return gemv_q4_0_avx512(b, nb, x);
  const __m256i m4 = _mm256_set1_epi32(0x0F);
  const __m256 eight = _mm256_set1_ps(8.0f);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK4_0) {
    if (k & 1) prefetch_ahead<1>(b + k);  // 18-byte blocks: one line per two
    const __m256 d = _mm256_set1_ps(half_to_float(b[k].d));
    // Byte j holds element j (low nibble) and j + 16 (high nibble); q - 8 is exact in float.
    const __m256i v0 = load_u8x8(b[k].qs), v1 = load_u8x8(b[k].qs + 8);
    __m256 s0 = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, m4)), eight), _mm256_loadu_ps(x + 0));
    __m256 s1 = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, m4)), eight), _mm256_loadu_ps(x + 8));
    s0 = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4)), eight), _mm256_loadu_ps(x + 16), s0);
    s1 = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4)), eight), _mm256_loadu_ps(x + 24), s1);
    if (k & 1) acc1 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc1);
    else acc0 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc0);
  }
  return hsum8(_mm256_add_ps(acc0, acc1));
}

// Sums of x over each 32-element sub-block, xs[s] = sum x[32 s .. 32 s + 31], for n % 256 == 0.
// The K-quant GEMV needs them for the mins; computed once per call (dot_rows: once for all rows).
MS_INLINE void subblock_sums(const float* x, int64_t n, float* xs) {
  for (int64_t b = 0; b < n; b += QK_K, x += QK_K, xs += 8) {
    __m256 v[8];
    MS_UNROLL for (int s = 0; s < 8; ++s) {
      const float* p = x + 32 * s;
      v[s] = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)),
                           _mm256_add_ps(_mm256_loadu_ps(p + 16), _mm256_loadu_ps(p + 24)));
    }
    // Horizontal sums of 8 vectors at once: after two hadd levels lane i of the low (high) half
    // holds half of vector i's sum (i < 4 in h0123, i >= 4 in h4567).
    const __m256 h0123 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    const __m256 h4567 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    _mm256_storeu_ps(xs, _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20), _mm256_permute2f128_ps(h0123, h4567, 0x31)));
  }
}

// Q4_K and Q5_K: 32 bytes of qs hold sub-blocks 2j (low nibbles) and 2j+1 (high nibbles); Q5_K
// adds the fifth bit of element l of sub-block s as bit s of qh[l]. Eight bytes widened once give
// eight quants of each of the two sub-blocks (as Q4_0 does: 1.5x against unpacking to bytes first),
// converted to float and multiplied into x. The scale multiplies each 32-element sum once, and the
// min term is m * (sum of x over the sub-block), from the sums xs.
template <bool FIVE_BITS>
MS_INLINE float gemv_kquant(const kquant_block<FIVE_BITS>* b, int64_t nb, const float* x, const float* xs) {
  alignas(32) float dsc[8];
  // Each block's sum of d*sc*q*x and its min term nearly cancel when x has a large common offset;
  // subtracting them block by block keeps the running sum (and its rounding) at the size of the
  // result instead of growing with the row.
  __m256 acc = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK_K, xs += 8) {
    prefetch_ahead<sizeof(b[k])>(b + k);
    const __m256 d = _mm256_set1_ps(half_to_float(b[k].d));
    const __m256 dmin = _mm256_set1_ps(half_to_float(b[k].dmin));
    const __m128i smv = scales_mins_k4(b[k].scales);
    _mm256_store_ps(dsc, _mm256_mul_ps(d, u8_to_f32(smv)));                          // d * sc, per sub-block
    const __m256 bm = _mm256_mul_ps(_mm256_mul_ps(dmin, u8_to_f32(hi64(smv))), _mm256_loadu_ps(xs));  // dmin * m * sum x
    const uint8_t* qs = b[k].qs;
    const uint8_t* qh = kquant_qh(b[k]);
    const __m256i m4 = _mm256_set1_epi32(0x0F), one = _mm256_set1_epi32(1);
    __m256 bd0 = _mm256_setzero_ps(), bd1 = _mm256_setzero_ps();
    MS_UNROLL for (int j = 0; j < 4; ++j) {
      const float* xa = x + 64 * j;
      const float* xb = xa + 32;
      // Two independent chains per sum (elements l and l + 8 of each 16): with one chain the FMA
      // latency, not the arithmetic, would set the pace.
      __m256 sa[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, sb[2] = {sa[0], sa[0]};
      MS_UNROLL for (int l = 0; l < 32; l += 8) {
        const int c = (l >> 3) & 1;
        const __m256i v = load_u8x8(qs + 32 * j + l);
        __m256i qa = _mm256_and_si256(v, m4), qb = _mm256_srli_epi32(v, 4);
        if (FIVE_BITS) {
          const __m256i h = load_u8x8(qh + l);
          qa = _mm256_or_si256(qa, _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * j), one), 4));
          qb = _mm256_or_si256(qb, _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * j + 1), one), 4));
        }
        sa[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qa), _mm256_loadu_ps(xa + l), sa[c]);
        sb[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qb), _mm256_loadu_ps(xb + l), sb[c]);
      }
      bd0 = _mm256_fmadd_ps(_mm256_broadcast_ss(dsc + 2 * j), _mm256_add_ps(sa[0], sa[1]), bd0);
      bd1 = _mm256_fmadd_ps(_mm256_broadcast_ss(dsc + 2 * j + 1), _mm256_add_ps(sb[0], sb[1]), bd1);
    }
    // bm's lanes are sub-blocks, bd's are element positions: only the sum over lanes matters.
    acc = _mm256_add_ps(acc, _mm256_sub_ps(_mm256_add_ps(bd0, bd1), bm));
  }
  return hsum8(acc);
}

// A K-quant row with its own sub-block sums (single-row calls); rows longer than the stack
// buffer go in pieces.
template <bool FIVE_BITS>
MS_INLINE float gemv_kquant_row(const kquant_block<FIVE_BITS>* b, int64_t nb, const float* x) {
  constexpr int64_t PIECE = 64 * QK_K;  // 16384 elements, 2 KiB of sums
  alignas(32) float xs[PIECE / 32];
  float total = 0.0f;
  for (int64_t k0 = 0; k0 < nb; k0 += PIECE / QK_K) {
    const int64_t kn = nb - k0 < PIECE / QK_K ? nb - k0 : PIECE / QK_K;
    subblock_sums(x + k0 * QK_K, kn * QK_K, xs);
    total += gemv_kquant<FIVE_BITS>(b + k0, kn, x + k0 * QK_K, xs);
  }
  return total;
}

float gemv_q4_K(const block_q4_K* b, int64_t nb, const float* x) {
  return gemv_kquant_row<false>(b, nb, x);
}
float gemv_q5_K(const block_q5_K* b, int64_t nb, const float* x) {
  return gemv_kquant_row<true>(b, nb, x);
}

// Q6_K: the quants are assembled 32 at a time as signed bytes (as Q6_K::decode does), widened to
// float, and multiplied into x; the sub-block scale (one per 16 elements) multiplies the 16-element
// sum once instead of every weight. The assembly is q6k_unsigned's (quant_avx2_unpack.h) written out:
// through the helper this GEMV compiled to a 10 % slower loop (`node tests/ops/kernel-ab.js exact
// Q6_K 1024 2048 48`, three runs).
float gemv_q6_K(const block_q6_K* b, int64_t nb, const float* x) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30);
  const __m256i bias = _mm256_set1_epi8(32);
  alignas(32) int8_t q[QK_K];  // the block's quants in element order; widened from here like Q8_0's
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK_K) {
    prefetch_ahead<sizeof(block_q6_K)>(b + k);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[k].ql + 64 * h;
      const __m256i a = _mm256_loadu_si256((const __m256i*)ql);
      const __m256i c = _mm256_loadu_si256((const __m256i*)(ql + 32));
      const __m256i qh = _mm256_loadu_si256((const __m256i*)(b[k].qh + 32 * h));
      __m256i* out = (__m256i*)(q + 128 * h);
      _mm256_store_si256(out + 0, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(a, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)), bias));
      _mm256_store_si256(out + 1, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(c, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)), bias));
      _mm256_store_si256(out + 2, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(qh, m30)), bias));
      _mm256_store_si256(out + 3, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4),
                                                                  _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)), bias));
    }
    // d * scale for each of the 16 sub-blocks of 16 elements.
    const __m256 d = _mm256_set1_ps(half_to_float(b[k].d));
    const __m128i sc = _mm_loadu_si128((const __m128i*)b[k].scales);
    alignas(32) float ds[16];
    _mm256_store_ps(ds, _mm256_mul_ps(d, i8_to_f32(sc)));
    _mm256_store_ps(ds + 8, _mm256_mul_ps(d, i8_to_f32(hi64(sc))));
    MS_UNROLL for (int s = 0; s < 16; s += 2) {
      const int8_t* qs = q + 16 * s;
      const float* xs = x + 16 * s;
      const __m256 s0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load_i8x8(qs)), _mm256_loadu_ps(xs),
                                        _mm256_mul_ps(_mm256_cvtepi32_ps(load_i8x8(qs + 8)), _mm256_loadu_ps(xs + 8)));
      const __m256 s1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load_i8x8(qs + 16)), _mm256_loadu_ps(xs + 16),
                                        _mm256_mul_ps(_mm256_cvtepi32_ps(load_i8x8(qs + 24)), _mm256_loadu_ps(xs + 24)));
      acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(ds + s), s0, acc0);
      acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(ds + s + 1), s1, acc1);
    }
  }
  return hsum8(_mm256_add_ps(acc0, acc1));
}

// ---- the kernels ----

// A block type's rows decoded into floats, for the prefill panels.
template <class T>
struct DecodeBlocks {
  // Block-quantized weights sum each output over a 256-k chunk in one chain per lane, without the
  // pairwise span sums of F32 weights: those cost a quarter of the tile (the twelve accumulators go
  // to memory every 8 k), and quantized models are held to 1e-4 of float64, not to a float32 golden
  // at 1e-5. Measured (scout-mid, 512-token prefill, in-process A/B both orders): exact Q8_0
  // +28-30 %, Q4_K_M +21-25 %, fast Q8_0 +16 %; small-scout Q8_0/Q6_K/Q4_K_M prompt logits 3.0e-6 ..
  // 3.8e-6 from float64 instead of 1.2e-6 .. 1.7e-6 (tests/golden/fast-mode-error.js).
  static constexpr bool kPairwise = false;
  // Where the CPU has AVX-512, Q8_0, Q4_K and Q6_K panels decode straight into k-major order.
  static PanelDecodeFn k_major() { return kAvx512 ? panel_decode_avx512((uint32_t)T::kType) : nullptr; }
  static constexpr size_t kChunkBytes = CHUNK / T::QK * sizeof(typename T::block);
  static constexpr size_t byte_offset(int64_t i) { return (size_t)(i / T::QK) * sizeof(typename T::block); }
  MS_INLINE void operator()(const uint8_t* row, int64_t i0, int64_t cnt, float* dst) const {
    StoreSink s{dst};
    const typename T::block* blocks = (const typename T::block*)row;
    for (int64_t b = i0 / T::QK; b < (i0 + cnt) / T::QK; ++b, s.y += T::QK) T::decode(blocks + b, s);
  }
};

// The panels in a function of their own: inlined beside the decode GEMVs, their 40 KB frame left
// the exact Q4_K GEMV 8-10 % slower (`node tests/ops/kernel-ab.js exact Q4_K 1024 512 1`; whole-model
// exact decode, scout-mid Q4_K_M, in-process A/B both orders: +0.7 % and +3.2 %).
template <class Decode>
__attribute__((noinline)) void panel_rows(const uint8_t* w, size_t stride, int64_t nrows, const float* x, int64_t ldx, int64_t n,
                                          int ntok, float* out, int64_t ldo) {
  dot_panels(w, stride, nrows, x, ldx, n, ntok, out, ldo, Decode{});
}

// The K-quants, whose decode has integer kernels on AVX-512 CPUs (quant_x24.cpp); decided at compile
// time so that Q8_0's and Q4_0's row-by-row decode does not ask at every row.
template <class T>
constexpr bool kHasX24 = T::kType == GgmlType::Q4_K || T::kType == GgmlType::Q5_K || T::kType == GgmlType::Q6_K;

template <class T, float (*GEMV)(const typename T::block*, int64_t, const float*)>
void dot_blocks(const void* w, const float* x, int64_t ldx, int64_t n, int ntok, float* out, int64_t ldo) {
  if constexpr (kHasX24<T>)
    if (ntok == 1 && kAvx512 && dot_rows_x24((uint32_t)T::kType, w, 0, 1, x, n, out)) return;
  if (ntok == 1) out[0] = GEMV((const typename T::block*)w, n / T::QK, x);
  else panel_rows<DecodeBlocks<T>>((const uint8_t*)w, 0, 1, x, ldx, n, ntok, out, ldo);
}


// nrows rows of a block type: panels of 16 rows for prefill; single-row GEMVs for decode.
template <class T, float (*GEMV)(const typename T::block*, int64_t, const float*)>
void dot_rows_blocks(const void* w, size_t stride, int64_t nrows, const float* x, int64_t ldx, int64_t n, int ntok,
                     float* out, int64_t ldo) {
  const uint8_t* wb = (const uint8_t*)w;
  int64_t r = 0;
  if (ntok > 1) return panel_rows<DecodeBlocks<T>>(wb, stride, nrows, x, ldx, n, ntok, out, ldo);
  if constexpr (kHasX24<T>)
    if (kAvx512 && dot_rows_x24((uint32_t)T::kType, wb, stride, nrows, x, n, out)) return;
  if constexpr (T::KQUANT_BITS != 0) {
    // Decode of Q4_K/Q5_K rows: the sub-block sums of x are computed once for all rows, and each
    // row is then summed exactly as gemv_kquant_row sums it (same pieces), so the result is the
    // single-row dot's, bit for bit.
    constexpr int64_t MAX_N = 4 * 16384;
    constexpr int64_t PIECE_BLOCKS = 64;  // gemv_kquant_row's piece
    if (ntok == 1 && n <= MAX_N) {
      alignas(32) float xs[MAX_N / 32];
      subblock_sums(x, n, xs);
      const int64_t nb = n / QK_K;
      constexpr bool FIVE = T::KQUANT_BITS == 5;
      for (; r < nrows; ++r) {
        float total = 0.0f;
        for (int64_t k0 = 0; k0 < nb; k0 += PIECE_BLOCKS) {
          const int64_t kn = nb - k0 < PIECE_BLOCKS ? nb - k0 : PIECE_BLOCKS;
          total += gemv_kquant<FIVE>((const kquant_block<FIVE>*)(wb + r * stride) + k0, kn, x + k0 * QK_K, xs + k0 * 8);
        }
        out[r] = total;
      }
      return;
    }
  }
  for (; r < nrows; ++r) dot_blocks<T, GEMV>(wb + r * stride, x, ldx, n, ntok, out + r, ldo);
}

// Element types: load 8 weights as floats. kPairwise: whether prefill sums in pairwise 8-k spans
// (see DecodeBlocks): F32 models are held to float32 goldens at 1e-5, F16/BF16 ones, like the
// block formats, to 1e-4 of float64.
struct LoadF32 {
  static constexpr bool kPairwise = true;
  using elem = float;
  static MS_INLINE __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static MS_INLINE float one(const float* p) { return *p; }
};
struct LoadF16 {
  static constexpr bool kPairwise = false;
  using elem = f16_bits;
  static MS_INLINE __m256 load(const f16_bits* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
  static MS_INLINE float one(const f16_bits* p) { return half_to_float(*p); }
};
struct LoadBF16 {
  static constexpr bool kPairwise = false;
  using elem = uint16_t;
  static MS_INLINE __m256 load(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
  }
  static MS_INLINE float one(const uint16_t* p) { return bf16_to_fp32(*p); }
};

template <class L>
struct DecodeElems {
  static constexpr bool kPairwise = L::kPairwise;
  static PanelDecodeFn k_major() { return nullptr; }
  static constexpr size_t kChunkBytes = CHUNK * sizeof(typename L::elem);
  static constexpr size_t byte_offset(int64_t i) { return (size_t)i * sizeof(typename L::elem); }
  MS_INLINE void operator()(const uint8_t* row, int64_t i0, int64_t cnt, float* dst) const {
    const typename L::elem* e = (const typename L::elem*)row + i0;
    int64_t i = 0;
    for (; i + 8 <= cnt; i += 8) _mm256_store_ps(dst + i, L::load(e + i));
    for (; i < cnt; ++i) dst[i] = L::one(e + i);
  }
};

template <class L>
void dot_elems(const void* wv, const float* x, int64_t ldx, int64_t n, int ntok, float* out, int64_t ldo) {
  const typename L::elem* w = (const typename L::elem*)wv;
  if (ntok == 1) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      prefetch_ahead<32 * sizeof(typename L::elem)>(w + i);
      a0 = _mm256_fmadd_ps(L::load(w + i), _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(L::load(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
      a2 = _mm256_fmadd_ps(L::load(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
      a3 = _mm256_fmadd_ps(L::load(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(L::load(w + i), _mm256_loadu_ps(x + i), a0);
    float tail = 0.0f;
    for (; i < n; ++i) tail += L::one(w + i) * x[i];
    out[0] = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + tail;
    return;
  }
  panel_rows<DecodeElems<L>>((const uint8_t*)wv, 0, 1, x, ldx, n, ntok, out, ldo);
}

template <class L>
void dot_rows_elems(const void* w, size_t stride, int64_t nrows, const float* x, int64_t ldx, int64_t n, int ntok,
                    float* out, int64_t ldo) {
  const uint8_t* wb = (const uint8_t*)w;
  if (ntok > 1) return panel_rows<DecodeElems<L>>(wb, stride, nrows, x, ldx, n, ntok, out, ldo);
  for (int64_t r = 0; r < nrows; ++r) dot_elems<L>(wb + r * stride, x, ldx, n, ntok, out + r, ldo);
}

}  // namespace
}  // namespace moescope::quant

MS_AVX2_END

// Baseline code from here on: these run before anyone knows the CPU has AVX2.
namespace moescope::quant {

bool avx2_available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

DotRowsFn avx2_dot_rows(uint32_t type_id) {
  if (!avx2_available()) return nullptr;
  switch ((GgmlType)type_id) {
    case GgmlType::F32: return dot_rows_elems<LoadF32>;
    case GgmlType::F16: return dot_rows_elems<LoadF16>;
    case GgmlType::BF16: return dot_rows_elems<LoadBF16>;
    case GgmlType::Q8_0: return dot_rows_blocks<Q8_0, gemv_q8_0>;
    case GgmlType::Q4_0: return dot_rows_blocks<Q4_0, gemv_q4_0>;
    case GgmlType::Q4_K: return dot_rows_blocks<Q4_K, gemv_q4_K>;
    case GgmlType::Q5_K: return dot_rows_blocks<Q5_K, gemv_q5_K>;
    case GgmlType::Q6_K: return dot_rows_blocks<Q6_K, gemv_q6_K>;
    default: return nullptr;
  }
}

DotFn avx2_dot(uint32_t type_id) {
  if (!avx2_available()) return nullptr;
  switch ((GgmlType)type_id) {
    case GgmlType::F32: return dot_elems<LoadF32>;
    case GgmlType::F16: return dot_elems<LoadF16>;
    case GgmlType::BF16: return dot_elems<LoadBF16>;
    case GgmlType::Q8_0: return dot_blocks<Q8_0, gemv_q8_0>;
    case GgmlType::Q4_0: return dot_blocks<Q4_0, gemv_q4_0>;
    case GgmlType::Q4_K: return dot_blocks<Q4_K, gemv_q4_K>;
    case GgmlType::Q5_K: return dot_blocks<Q5_K, gemv_q5_K>;
    case GgmlType::Q6_K: return dot_blocks<Q6_K, gemv_q6_K>;
    default: return nullptr;
  }
}

}  // namespace moescope::quant

#else  // not x86: the portable kernels in quant.cpp are the only ones

namespace moescope::quant {
bool avx2_available() { return false; }
DotFn avx2_dot(uint32_t) { return nullptr; }
DotRowsFn avx2_dot_rows(uint32_t) { return nullptr; }
}  // namespace moescope::quant

#endif
