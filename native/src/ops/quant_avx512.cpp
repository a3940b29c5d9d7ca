// AVX-512 microkernels, for CPUs that have AVX-512 F/BW/VL/DQ/VNNI (AMD Zen 4 and 5, Intel Xeon
// since Cascade Lake): the places where a 512-bit register does twice what an AVX2 one does per
// instruction. The AVX2 kernels (quant_avx2.cpp) call them when avx512_available() said yes.
//
// The decode GEMVs (ntok == 1) of Q8_0 and Q4_0: the AVX2 ones (quant_avx2.cpp) with 16 lanes: one
// widening gives 16 quants, one convert and one FMA take 16 weights. Same formulation (block scales
// multiply partial sums), so the same error bounds; the float32 sums are taken in another order than
// AVX2's, so the last bits differ between the two kinds of CPU (each within the tests' bounds; dot and
// dot_rows still agree bit for bit on one machine). The K-quants' GEMVs are quant_x24.cpp's.
//
// The prefill panels' weights: Q8_0, Q4_K and Q6_K decoded straight into the k-major order the tile
// reads (the same floats as quant_avx2.cpp's decoders; the section's comment says how).
//
// The prefill tile: the exact panels of quant_avx2.cpp (16 weight rows decoded to floats, packed
// k-major) against up to 12 tokens at once. One 512-bit register holds the 16 rows of one k, so
// per k it is one weight load and, per token, one FMA with the activation broadcast from memory.
// Each output is still one FMA chain over the chunk's k in order, added to acc once per chunk: the
// AVX2 tile's roundings exactly, so results are the same bits on either kind of CPU. Why 12: tiles
// of 24 tokens ran 30 % slower than AVX2 at 128 tokens (24 activation rows 4 KiB apart, and the
// pointers to them spilled), 8 and 12 ran 30-40 % faster (`node tests/ops/kernel-ab.js prefill`).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstddef>
#include <cstring>
#include <utility>

#include "ops/quant_blocks.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/simd_region.h"

MS_AVX512_BEGIN

#include "ops/quant_avx2_unpack.h"

namespace moescope::quant {
namespace {

#if defined(__clang__)
#define MS_UNROLL _Pragma("unroll")
#else
#define MS_UNROLL _Pragma("GCC unroll 32")
#endif
#define MS_INLINE inline __attribute__((always_inline))

MS_INLINE float hsum16(__m512 v) { return _mm512_reduce_add_ps(v); }
MS_INLINE float half_to_float(f16_bits h) { return _cvtsh_ss(h); }
// 16 bytes as 16 floats.
MS_INLINE __m512 u8x16(const void* p) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p))); }
MS_INLINE __m512 i8x16(const void* p) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p))); }

float gemv_q8_0(const void* w, int64_t nb, const float* x) {
  const block_q8_0* b = (const block_q8_0*)w;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK8_0) {
    prefetch_ahead<1>(b + k);
    const __m512 s = _mm512_fmadd_ps(i8x16(b[k].qs + 16), _mm512_loadu_ps(x + 16),
                                     _mm512_mul_ps(i8x16(b[k].qs), _mm512_loadu_ps(x)));
    const __m512 d = _mm512_set1_ps(half_to_float(b[k].d));
    if (k & 1) acc1 = _mm512_fmadd_ps(d, s, acc1);
    else acc0 = _mm512_fmadd_ps(d, s, acc0);
  }
  return hsum16(_mm512_add_ps(acc0, acc1));
}

float gemv_q4_0(const void* w, int64_t nb, const float* x) {
  const block_q4_0* b = (const block_q4_0*)w;
  const __m512i m4 = _mm512_set1_epi32(0x0F);
  const __m512 eight = _mm512_set1_ps(8.0f);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK4_0) {
    if (k & 1) prefetch_ahead<1>(b + k);  // 18-byte blocks: one line per two
    // Byte j holds element j (low nibble) and j + 16 (high nibble); q - 8 is exact in float.
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)b[k].qs));
    const __m512 lo = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, m4)), eight);
    const __m512 hi = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), eight);
    const __m512 s = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(x)));
    const __m512 d = _mm512_set1_ps(half_to_float(b[k].d));
    if (k & 1) acc1 = _mm512_fmadd_ps(d, s, acc1);
    else acc0 = _mm512_fmadd_ps(d, s, acc0);
  }
  return hsum16(_mm512_add_ps(acc0, acc1));
}

// A Q6_K block's 256 quants, q - 32, as signed bytes in element order at q (32-byte aligned).
MS_INLINE void q6k_signed_bytes(const block_q6_K& b, int8_t* q) {
  const __m256i bias = _mm256_set1_epi8(32);
  for (int h = 0; h < 2; ++h) {
    __m256i u[4];
    q6k_unsigned(b, h, u);
    MS_UNROLL for (int g = 0; g < 4; ++g) _mm256_store_si256((__m256i*)(q + 128 * h + 32 * g), _mm256_sub_epi8(u[g], bias));
  }
}

// ---- the prefill panels' weights, decoded straight into k-major order ----
// pk[16 k + r] = weight k of row r of a 16-row panel, for one 256-element chunk: what quant_avx2.cpp's
// dot_panels otherwise gets by decoding each row to floats and transposing 8 x 8 blocks of floats.
// Here the quant bytes of the 16 rows are transposed as bytes (16 bytes per k instead of 64), and
// each k's 16 quants are converted at once, with the 16 rows' scales as a vector. Every weight is
// the same float as the AVX2 decoders give (the same products, the scales formed the same way), so
// the panels stay bit for bit those of an AVX2 CPU. Rows from prow on are zeros.

// 16 rows of 32 bytes (row r in r[r]) -> t[i]: the 16 rows' byte i (low lane) and byte 16 + i (high
// lane), by four rounds of in-lane unpacks.
MS_INLINE void transpose16x32_bytes(const __m256i r[16], __m256i t[16]) {
  __m256i a[16], b[16];
  MS_UNROLL for (int i = 0; i < 8; ++i) {  // 16-bit units: rows 2i, 2i+1 at k 0-7 (a[i]), 8-15 (a[8+i])
    a[i] = _mm256_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
    a[8 + i] = _mm256_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
  }
  MS_UNROLL for (int h = 0; h < 2; ++h)  // 32-bit units: rows 4m..4m+3, k groups of 4: b[8h + 4q + m]
    MS_UNROLL for (int m = 0; m < 4; ++m) {
      b[8 * h + m] = _mm256_unpacklo_epi16(a[8 * h + 2 * m], a[8 * h + 2 * m + 1]);      // k 8h + 0..3
      b[8 * h + 4 + m] = _mm256_unpackhi_epi16(a[8 * h + 2 * m], a[8 * h + 2 * m + 1]);  // k 8h + 4..7
    }
  MS_UNROLL for (int g = 0; g < 4; ++g) {  // 64-bit units (rows 0-7, 8-15; k pairs), then all 16 rows
      const __m256i c0 = _mm256_unpacklo_epi32(b[4 * g + 0], b[4 * g + 1]), c1 = _mm256_unpacklo_epi32(b[4 * g + 2], b[4 * g + 3]);
      const __m256i c2 = _mm256_unpackhi_epi32(b[4 * g + 0], b[4 * g + 1]), c3 = _mm256_unpackhi_epi32(b[4 * g + 2], b[4 * g + 3]);
      t[4 * g + 0] = _mm256_unpacklo_epi64(c0, c1);
      t[4 * g + 1] = _mm256_unpackhi_epi64(c0, c1);
      t[4 * g + 2] = _mm256_unpacklo_epi64(c2, c3);
      t[4 * g + 3] = _mm256_unpackhi_epi64(c2, c3);
    }
}

// The 16 rows' 32 bytes at byte offset `at` of each row (absent rows: zeros), transposed into
// q[k][16] for k = 0..31.
MS_INLINE void gather_transposed(const uint8_t* w, size_t stride, int prow, size_t at, uint8_t (*q)[16]) {
  __m256i r[16], t[16];
  MS_UNROLL for (int i = 0; i < 16; ++i)
    r[i] = i < prow ? _mm256_loadu_si256((const __m256i*)(w + i * stride + at)) : _mm256_setzero_si256();
  transpose16x32_bytes(r, t);
  MS_UNROLL for (int i = 0; i < 16; ++i) {
    _mm_storeu_si128((__m128i*)q[i], _mm256_castsi256_si128(t[i]));
    _mm_storeu_si128((__m128i*)q[16 + i], _mm256_extracti128_si256(t[i], 1));
  }
}


// Q8_0: 8 blocks of 32; weight = q * d (Q8_0::decode).
void panel_q8_0(const uint8_t* w, size_t stride, int prow, int64_t i0, float* pk) {
  alignas(64) uint8_t q[32][16];
  alignas(64) float d[16];
  for (int64_t blk = i0 / QK8_0; blk < i0 / QK8_0 + 8; ++blk, pk += 16 * QK8_0) {
    const size_t at = (size_t)blk * sizeof(block_q8_0);
    for (int r = 0; r < 16; ++r) d[r] = r < prow ? half_to_float(((const block_q8_0*)(w + r * stride + at))->d) : 0.0f;
    gather_transposed(w, stride, prow, at + offsetof(block_q8_0, qs), q);
    const __m512 dv = _mm512_load_ps(d);
    MS_UNROLL for (int k = 0; k < 32; ++k) _mm512_store_ps(pk + 16 * k, _mm512_mul_ps(i8x16(q[k]), dv));
  }
}

// Q4_K: weight = (d * sc) * q - dmin * m, the sub-block's scale and min (Q4_K::decode's affine32).
void panel_q4_K(const uint8_t* w, size_t stride, int prow, int64_t i0, float* pk) {
  alignas(64) float dsc[8][16], dm[8][16];
  const size_t at = (size_t)(i0 / QK_K) * sizeof(block_q4_K);
  for (int r = 0; r < 16; ++r) {
    if (r >= prow) {
      for (int s = 0; s < 8; ++s) dsc[s][r] = dm[s][r] = 0.0f;
      continue;
    }
    const block_q4_K& b = *(const block_q4_K*)(w + r * stride + at);
    const float d = half_to_float(b.d), dmin = half_to_float(b.dmin);
    alignas(16) uint8_t sm[16];  // 8 scales, 8 mins
    _mm_store_si128((__m128i*)sm, scales_mins_k4(b.scales));
    for (int s = 0; s < 8; ++s) {
      dsc[s][r] = d * sm[s];
      dm[s][r] = dmin * sm[8 + s];
    }
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int j = 0; j < 4; ++j) {  // bytes 32j .. 32j + 31: sub-blocks 2j (low nibbles) and 2j + 1 (high)
    __m256i r[16], t[16];
    MS_UNROLL for (int i = 0; i < 16; ++i)
      r[i] = i < prow ? _mm256_loadu_si256((const __m256i*)(w + i * stride + at + offsetof(block_q4_K, qs) + 32 * j)) : _mm256_setzero_si256();
    transpose16x32_bytes(r, t);
    alignas(64) uint8_t lo[32][16], hi[32][16];
    MS_UNROLL for (int i = 0; i < 16; ++i) {
      const __m256i l = _mm256_and_si256(t[i], m4), h = _mm256_and_si256(_mm256_srli_epi16(t[i], 4), m4);
      _mm_store_si128((__m128i*)lo[i], _mm256_castsi256_si128(l));
      _mm_store_si128((__m128i*)lo[16 + i], _mm256_extracti128_si256(l, 1));
      _mm_store_si128((__m128i*)hi[i], _mm256_castsi256_si128(h));
      _mm_store_si128((__m128i*)hi[16 + i], _mm256_extracti128_si256(h, 1));
    }
    const __m512 da = _mm512_load_ps(dsc[2 * j]), ma = _mm512_load_ps(dm[2 * j]);
    const __m512 db = _mm512_load_ps(dsc[2 * j + 1]), mb = _mm512_load_ps(dm[2 * j + 1]);
    float* pa = pk + 16 * (64 * j), *pb = pa + 16 * 32;
    MS_UNROLL for (int k = 0; k < 32; ++k) {
      _mm512_store_ps(pa + 16 * k, _mm512_fmsub_ps(u8x16(lo[k]), da, ma));
      _mm512_store_ps(pb + 16 * k, _mm512_fmsub_ps(u8x16(hi[k]), db, mb));
    }
  }
}

// Q6_K: weight = (d * sc) * (q - 32), one scale per 16 (Q6_K::decode's scaled32); each row's
// quants first assembled as signed bytes in element order (gemv_q6_K's assembly).
void panel_q6_K(const uint8_t* w, size_t stride, int prow, int64_t i0, float* pk) {
  alignas(64) int8_t rows[16][QK_K];
  alignas(64) float ds[16][16];  // [group of 16 k][row]
  alignas(64) uint8_t q[32][16];
  const size_t at = (size_t)(i0 / QK_K) * sizeof(block_q6_K);
  for (int r = 0; r < 16; ++r) {
    if (r >= prow) {
      memset(rows[r], 0, sizeof(rows[r]));
      for (int g = 0; g < 16; ++g) ds[g][r] = 0.0f;
      continue;
    }
    const block_q6_K& b = *(const block_q6_K*)(w + r * stride + at);
    const float d = half_to_float(b.d);
    for (int g = 0; g < 16; ++g) ds[g][r] = d * b.scales[g];
    q6k_signed_bytes(b, rows[r]);
  }
  for (int c = 0; c < 8; ++c) {  // elements 32c .. 32c + 31
    gather_transposed((const uint8_t*)rows, QK_K, 16, 32 * c, q);
    const __m512 d0 = _mm512_load_ps(ds[2 * c]), d1 = _mm512_load_ps(ds[2 * c + 1]);
    MS_UNROLL for (int k = 0; k < 16; ++k) _mm512_store_ps(pk + 16 * (32 * c + k), _mm512_mul_ps(i8x16(q[k]), d0));
    MS_UNROLL for (int k = 16; k < 32; ++k) _mm512_store_ps(pk + 16 * (32 * c + k), _mm512_mul_ps(i8x16(q[k]), d1));
  }
}

constexpr int PANEL = 16;      // rows per panel: quant_avx2.cpp's
constexpr int MAX_TOKENS = 12;  // accumulators per tile (see the top of the file)

// acc[16 t .. 16 t + 15] += sum over k < cnt of pk[16 k .. 16 k + 15] * x[t * ldx + k], t < TT.
template <int TT>
void tile(const float* pk, int64_t cnt, const float* x, int64_t ldx, float* acc) {
  __m512 a[TT];
  MS_UNROLL for (int t = 0; t < TT; ++t) a[t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < cnt; ++k) {
    const __m512 w = _mm512_loadu_ps(pk + k * PANEL);
    MS_UNROLL for (int t = 0; t < TT; ++t) a[t] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[t * ldx + k]), a[t]);
  }
  MS_UNROLL for (int t = 0; t < TT; ++t) _mm512_storeu_ps(acc + PANEL * t, _mm512_add_ps(_mm512_loadu_ps(acc + PANEL * t), a[t]));
}

// The same for two panels at once (pa's rows into acc_a, pb's into acc_b): each broadcast activation
// feeds two FMAs, so per k two weight loads and TT broadcasts serve 2 TT FMAs.
template <int TT>
void tile_pair(const float* pa, const float* pb, int64_t cnt, const float* x, int64_t ldx, float* acc_a, float* acc_b) {
  __m512 a[TT], b[TT];
  MS_UNROLL for (int t = 0; t < TT; ++t) a[t] = b[t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < cnt; ++k) {
    const __m512 wa = _mm512_loadu_ps(pa + k * PANEL), wb = _mm512_loadu_ps(pb + k * PANEL);
    MS_UNROLL for (int t = 0; t < TT; ++t) {
      const __m512 xb = _mm512_set1_ps(x[t * ldx + k]);
      a[t] = _mm512_fmadd_ps(wa, xb, a[t]);
      b[t] = _mm512_fmadd_ps(wb, xb, b[t]);
    }
  }
  MS_UNROLL for (int t = 0; t < TT; ++t) {
    _mm512_storeu_ps(acc_a + PANEL * t, _mm512_add_ps(_mm512_loadu_ps(acc_a + PANEL * t), a[t]));
    _mm512_storeu_ps(acc_b + PANEL * t, _mm512_add_ps(_mm512_loadu_ps(acc_b + PANEL * t), b[t]));
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*);
using PairTileFn = void (*)(const float*, const float*, int64_t, const float*, int64_t, float*, float*);
template <int... I>
constexpr auto tile_table(std::integer_sequence<int, I...>) {
  return std::array<TileFn, sizeof...(I)>{tile<I + 1>...};
}
template <int... I>
constexpr auto pair_tile_table(std::integer_sequence<int, I...>) {
  return std::array<PairTileFn, sizeof...(I)>{tile_pair<I + 1>...};
}

}  // namespace

void panel_pair_tiles_avx512(const float* pa, const float* pb, int64_t cnt, const float* x, int64_t ldx, int nt, float* acc_a,
                             float* acc_b) {
  static constexpr auto tiles = pair_tile_table(std::make_integer_sequence<int, MAX_TOKENS>{});
  const int ntiles = (nt + MAX_TOKENS - 1) / MAX_TOKENS;
  for (int i = 0, t = 0; i < ntiles; ++i) {
    const int size = (nt - t) / (ntiles - i);
    tiles[size - 1](pa, pb, cnt, x + t * ldx, ldx, acc_a + PANEL * t, acc_b + PANEL * t);
    t += size;
  }
}

void panel_tiles_avx512(const float* pk, int64_t cnt, const float* x, int64_t ldx, int nt, float* acc) {
  static constexpr auto tiles = tile_table(std::make_integer_sequence<int, MAX_TOKENS>{});
  // Tiles of even size (26 tokens: 13 + 13, not 24 + 2): a tile of few tokens has too few chains to
  // hide the FMA latency.
  const int ntiles = (nt + MAX_TOKENS - 1) / MAX_TOKENS;
  for (int i = 0, t = 0; i < ntiles; ++i) {
    const int size = (nt - t) / (ntiles - i);
    tiles[size - 1](pk, cnt, x + t * ldx, ldx, acc + PANEL * t);
    t += size;
  }
}

PanelDecodeFn panel_decode_avx512(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::Q8_0: return panel_q8_0;
    case GgmlType::Q4_K: return panel_q4_K;
    case GgmlType::Q6_K: return panel_q6_K;
    default: return nullptr;
  }
}

float gemv_q8_0_avx512(const void* w, int64_t nb, const float* x) { return gemv_q8_0(w, nb, x); }
float gemv_q4_0_avx512(const void* w, int64_t nb, const float* x) { return gemv_q4_0(w, nb, x); }

}  // namespace moescope::quant

MS_AVX512_END

namespace moescope::quant {
bool avx512_available() {
  // MOESCOPE_NO_AVX512=1 keeps the AVX2 kernels on an AVX-512 CPU: how the tests check those
  // kernels there, and how to compare the two on one machine.
  const char* off = std::getenv("MOESCOPE_NO_AVX512");
  if (off && *off && std::strcmp(off, "0") != 0) return false;
  __builtin_cpu_init();
  return avx2_available() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
}
}  // namespace moescope::quant

#else  // not x86

namespace moescope::quant {
bool avx512_available() { return false; }
void panel_tiles_avx512(const float*, int64_t, const float*, int64_t, int, float*) {}
void panel_pair_tiles_avx512(const float*, const float*, int64_t, const float*, int64_t, int, float*, float*) {}
PanelDecodeFn panel_decode_avx512(uint32_t) { return nullptr; }
float gemv_q8_0_avx512(const void*, int64_t, const float*) { return 0.0f; }
float gemv_q4_0_avx512(const void*, int64_t, const float*) { return 0.0f; }
}  // namespace moescope::quant

#endif
