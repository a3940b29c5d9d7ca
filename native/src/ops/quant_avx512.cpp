// AVX-512 microkernels, for CPUs that have AVX-512 F/BW/VL/DQ (AMD Zen 4 and 5, Intel Xeon since
// Skylake-SP): the places where a 512-bit register does twice what an AVX2 one does per
// instruction. The AVX2 kernels (quant_avx2.cpp) call them when avx512_available() said yes.
//
// The decode GEMVs (ntok == 1): the AVX2 ones (quant_avx2.cpp) with 16 lanes: one widening gives
// 16 quants, one convert and one FMA take 16 weights. Same formulation (block and sub-block scales
// multiply partial sums, K-quant mins use the sub-block sums of x), so the same error bounds; the
// float32 sums are taken in another order than AVX2's, so the last bits differ between the two kinds
// of CPU (each within the tests' bounds; dot and dot_rows still agree bit for bit on one machine).
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
#include <cstring>
#include <utility>

#include "ops/quant_blocks.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/simd_region.h"

#if !defined(__clang__) && __GNUC__ < 13
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through masked builtins, and its
// uninitialized-value analysis flags them at every inlined use (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

MS_AVX512_BEGIN

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
MS_INLINE __m512 u8x16_to_f32(const uint8_t* p) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p))); }
MS_INLINE __m512 i8x16_to_f32(const int8_t* p) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p))); }

float gemv_q8_0(const void* w, int64_t nb, const float* x) {
  const block_q8_0* b = (const block_q8_0*)w;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK8_0) {
    prefetch_ahead<1>(b + k);
    const __m512 s = _mm512_fmadd_ps(i8x16_to_f32(b[k].qs + 16), _mm512_loadu_ps(x + 16),
                                     _mm512_mul_ps(i8x16_to_f32(b[k].qs), _mm512_loadu_ps(x)));
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

// Q4_K / Q5_K; xs: the sums of x over each 32-element sub-block (quant_avx2.cpp computes them once
// for all rows). As the AVX2 GEMV, each block's scaled sums minus its min term are added to the
// running sum block by block, so that a large common offset in x cancels within the block.
template <bool FIVE_BITS>
float gemv_kquant(const void* w, int64_t nb, const float* x, const float* xs) {
  const kquant_block<FIVE_BITS>* b = (const kquant_block<FIVE_BITS>*)w;
  const __m512i m4 = _mm512_set1_epi32(0x0F), one = _mm512_set1_epi32(1);
  alignas(32) float dsc[8];
  __m512 acc = _mm512_setzero_ps();
  for (int64_t k = 0; k < nb; ++k, x += QK_K, xs += 8) {
    prefetch_ahead<sizeof(b[k])>(b + k);
    const __m256 d = _mm256_set1_ps(half_to_float(b[k].d)), dmin = _mm256_set1_ps(half_to_float(b[k].dmin));
    alignas(16) uint8_t sm[16];
    unpack_scales_k4(b[k].scales, sm);
    const __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)sm));
    const __m256i mn = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(sm + 8)));
    _mm256_store_ps(dsc, _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc)));  // d * sc, per sub-block
    const __m256 bm = _mm256_mul_ps(_mm256_mul_ps(dmin, _mm256_cvtepi32_ps(mn)), _mm256_loadu_ps(xs));  // dmin * m * sum x
    const uint8_t* qs = b[k].qs;
    const uint8_t* qh = kquant_qh(b[k]);
    __m512 bd0 = _mm512_setzero_ps(), bd1 = _mm512_setzero_ps();
    MS_UNROLL for (int j = 0; j < 4; ++j) {
      const float* xa = x + 64 * j;  // sub-block 2j (low nibbles); 2j + 1 (high nibbles) at xa + 32
      __m512 sa = _mm512_setzero_ps(), sb = sa;
      MS_UNROLL for (int l = 0; l < 32; l += 16) {
        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(qs + 32 * j + l)));
        __m512i qa = _mm512_and_si512(v, m4), qb = _mm512_srli_epi32(v, 4);
        if (FIVE_BITS) {
          const __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(qh + l)));
          qa = _mm512_or_si512(qa, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 2 * j), one), 4));
          qb = _mm512_or_si512(qb, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 2 * j + 1), one), 4));
        }
        sa = _mm512_fmadd_ps(_mm512_cvtepi32_ps(qa), _mm512_loadu_ps(xa + l), sa);
        sb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(qb), _mm512_loadu_ps(xa + 32 + l), sb);
      }
      bd0 = _mm512_fmadd_ps(_mm512_set1_ps(dsc[2 * j]), sa, bd0);
      bd1 = _mm512_fmadd_ps(_mm512_set1_ps(dsc[2 * j + 1]), sb, bd1);
    }
    // bm's lanes are sub-blocks, bd's element positions: only the sum over lanes matters.
    acc = _mm512_add_ps(acc, _mm512_sub_ps(_mm512_add_ps(bd0, bd1), _mm512_zextps256_ps512(bm)));
  }
  return hsum16(acc);
}

// Q6_K: a block's quants assembled as signed bytes in element order (quant_avx2.cpp's gemv_q6_K),
// then one 16-element sub-block per register: widen, convert, multiply into x, scale once.
float gemv_q6_K(const void* w, int64_t nb, const float* x) {
  const block_q6_K* b = (const block_q6_K*)w;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30);
  const __m256i bias = _mm256_set1_epi8(32);
  alignas(32) int8_t q[QK_K];
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
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
    const __m512 ds = _mm512_mul_ps(_mm512_set1_ps(half_to_float(b[k].d)), i8x16_to_f32(b[k].scales));  // d * scale
    alignas(64) float dsa[16];
    _mm512_store_ps(dsa, ds);
    MS_UNROLL for (int s = 0; s < 16; ++s)
      acc[s & 3] = _mm512_fmadd_ps(_mm512_set1_ps(dsa[s]), _mm512_mul_ps(i8x16_to_f32(q + 16 * s), _mm512_loadu_ps(x + 16 * s)), acc[s & 3]);
  }
  return hsum16(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
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

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*);
template <int... I>
constexpr auto tile_table(std::integer_sequence<int, I...>) {
  return std::array<TileFn, sizeof...(I)>{tile<I + 1>...};
}

}  // namespace

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

float gemv_q8_0_avx512(const void* w, int64_t nb, const float* x) { return gemv_q8_0(w, nb, x); }
float gemv_q4_0_avx512(const void* w, int64_t nb, const float* x) { return gemv_q4_0(w, nb, x); }
float gemv_q6_K_avx512(const void* w, int64_t nb, const float* x) { return gemv_q6_K(w, nb, x); }
float gemv_q4_K_avx512(const void* w, int64_t nb, const float* x, const float* xs) { return gemv_kquant<false>(w, nb, x, xs); }
float gemv_q5_K_avx512(const void* w, int64_t nb, const float* x, const float* xs) { return gemv_kquant<true>(w, nb, x, xs); }

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
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
}  // namespace moescope::quant

#else  // not x86

namespace moescope::quant {
bool avx512_available() { return false; }
void panel_tiles_avx512(const float*, int64_t, const float*, int64_t, int, float*) {}
float gemv_q8_0_avx512(const void*, int64_t, const float*) { return 0.0f; }
float gemv_q4_0_avx512(const void*, int64_t, const float*) { return 0.0f; }
float gemv_q6_K_avx512(const void*, int64_t, const float*) { return 0.0f; }
float gemv_q4_K_avx512(const void*, int64_t, const float*, const float*) { return 0.0f; }
float gemv_q5_K_avx512(const void*, int64_t, const float*, const float*) { return 0.0f; }
}  // namespace moescope::quant

#endif
