// The exact decode GEMVs of the K-quants (Q4_K, Q5_K, Q6_K) on CPUs with AVX-512 and VNNI, in
// integers: the products of 4-to-6-bit quants with float activations, 64 per instruction instead
// of 16 per float FMA, without giving up float32's precision in the activations.
//
// Every 4 consecutive activations (one 32-bit lane of vpdpbusd) are written as
// x = 2^E * (65536 a + 256 b + c) + r, with three signed byte digits a, b, c and E the smallest
// exponent that fits the largest |x| of the four into the digits (|x| / 2^E <= 8355711, 23 bits): r,
// the rounding, is at most 2^-23 of that largest |x|, one float32 ulp of it (float32 rounds each
// product to 2^-24 of itself). For each lane vpdpbusd gives sum q * a exactly; by Horner,
// lane = ((sum q a) * 256 + sum q b) * 256 + sum q c is the exact integer sum of q * x / 2^E over the
// four (|lane| <= 4 * 63 * 128 * 65793 < 2^31 for 6-bit quants). Each lane is converted to float once
// and multiplied by d * scale * 2^E; the K-quant mins (Q6_K: the -32 offset) use the sums of the
// rounded x over each sub-block (32; Q6_K: 16), so both terms see the same x and a common offset in
// x cancels within the block as in the float kernels. Against ref64, a one-token prompt's logits are
// 1.2-1.6e-6 away on the Q4_K_M / Q6_K fixtures (the float kernels: 0.6-1.4e-6; tests/golden);
// tests/ops hold these GEMVs to the float ones' bound against the dequantised rows, also for
// activations at the edges of the digits.
//
// x is converted once per matrix product (ops/matmul.cpp, through TypeTraits::gemv_x24) or per
// dot_rows call; either way each row's dot is the same computation and gives the same bits.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

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

// A converted activation row of n elements (convert_x24's layout: the digit planes a, b, c of n bytes
// each, 2^E per 4 elements, and the sums of the rounded x per 16 and per 32).
// It starts at the first 64-byte boundary of the buffer, so that no 64-byte load of digits straddles
// two cache lines (one that did cost Q6_K 17 %).
MS_INLINE const int8_t* aligned64(const void* p) { return (const int8_t*)(((uintptr_t)p + 63) & ~(uintptr_t)63); }
struct X24 {
  const int8_t *a, *b, *c;
  const float *e, *s16, *s32;
  X24(const void* p, int64_t n)
      : a(aligned64(p)), b(a + n), c(b + n), e((const float*)(c + n)), s16(e + n / 4), s32(s16 + n / 16) {}
};

MS_INLINE __m512i low_byte(__m512i v) { return _mm512_srai_epi32(_mm512_slli_epi32(v, 24), 24); }

// 64 quants (unsigned bytes, element order) against elements i .. i + 63 of x: per lane
// (4 elements) the exact integer sum of q * x / 2^E.
MS_INLINE __m512i dot64(__m512i q, const X24& x, int64_t i) {
  __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, _mm512_loadu_si512(x.a + i));
  t = _mm512_dpbusd_epi32(_mm512_slli_epi32(t, 8), q, _mm512_loadu_si512(x.b + i));
  return _mm512_dpbusd_epi32(_mm512_slli_epi32(t, 8), q, _mm512_loadu_si512(x.c + i));
}

// The scales of the 16 lanes of elements 256 k + 64 j .. + 63: lane l's entry of ds (at index
// `first` + l / (16 / PER), for PER scales per 64 elements), times the lane's 2^E.
template <int PER>
MS_INLINE __m512 lane_scales(__m512 ds, int first, const X24& x, int64_t k, int j) {
  static_assert(PER == 2 || PER == 4);
  const __m512i l = PER == 4 ? _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0)
                             : _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512 lane = _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(first), l), ds);
  return _mm512_mul_ps(lane, _mm512_loadu_ps(x.e + 64 * k + 16 * j));
}

// Q4_K / Q5_K: 32 bytes of qs hold sub-block 2j (low nibbles) and 2j + 1 (high nibbles): the same
// bytes in both halves of a register, the high half shifted by 4, give the 64 quants in element
// order. Q5_K's fifth bit of element l of sub-block s is bit s of qh[l].
template <bool FIVE_BITS>
float gemv_kquant(const kquant_block<FIVE_BITS>* b, int64_t nb, const X24& x) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
  const __m512i nibble = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0x0004000400040004, 0x0004000400040004, 0, 0, 0, 0);
  const __m512i d_dmin = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead<sizeof(b[k])>(b + k);
    // dm: d * scale of the 8 sub-blocks (lanes 0-7), dmin * min (lanes 8-15); the min term of
    // each sub-block is dmin * min * (sum of its x).
    uint32_t d2;
    std::memcpy(&d2, &b[k].d, 4);  // d and dmin
    const __m512 dv = _mm512_permutexvar_ps(d_dmin, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)d2))));
    const __m512 dm = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(scales_mins_k4(b[k].scales))));
    const __m256 bm = _mm256_mul_ps(_mm512_extractf32x8_ps(dm, 1), _mm256_loadu_ps(x.s32 + 8 * k));
    __m512 bd = _mm512_setzero_ps();
    MS_UNROLL for (int j = 0; j < 4; ++j) {
      const __m512i y = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(b[k].qs + 32 * j)));
      __m512i q = _mm512_and_si512(_mm512_srlv_epi16(y, nibble), m4);
      if constexpr (FIVE_BITS) {
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)b[k].qh));
        // Bit 2j (low half) or 2j + 1 (high half) of each qh byte, moved to bit 4.
        const __m512i cnt = _mm512_add_epi16(_mm512_set1_epi16((short)(2 * j)),
                                             _mm512_set_epi64(0x0001000100010001, 0x0001000100010001, 0x0001000100010001,
                                                              0x0001000100010001, 0, 0, 0, 0));
        q = _mm512_or_si512(q, _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(h, cnt), 4), bit4));
      }
      bd = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64(q, x, QK_K * k + 64 * j)), lane_scales<2>(dm, 2 * j, x, k, j), bd);
    }
    // bm's lanes are sub-blocks, bd's element positions: only the sum over lanes matters.
    acc = _mm512_add_ps(acc, _mm512_sub_ps(bd, _mm512_zextps256_ps512(bm)));
  }
  return _mm512_reduce_add_ps(acc);
}

// Q6_K: weight = d * scale * (q - 32), one scale per group of 16. Half h of a block: ql's 64 bytes
// give the low 4 bits of elements 128h + 0..63 (low nibbles) and + 64..127 (high nibbles); qh's 32
// bytes the top 2 bits, at bit pairs 0, 2, 4, 6 for the four runs of 32.
float gemv_q6_K(const block_q6_K* b, int64_t nb, const X24& x) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const __m512i up = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                      0x0004000400040004, 0x0004000400040004, 0x0004000400040004, 0x0004000400040004);
  const __m512i down = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0, 0, 0, 0);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead<sizeof(block_q6_K)>(b + k);
    const __m512 dsc = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b[k].d)),
                                     _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)b[k].scales))));
    __m512 bd = _mm512_setzero_ps();
    MS_UNROLL for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(b[k].ql + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(b[k].qh + 32 * h)));
      const __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, up), m30));
      const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(_mm512_srlv_epi16(qh, down), m30));
      bd = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64(q01, x, QK_K * k + 128 * h)), lane_scales<4>(dsc, 8 * h, x, k, 2 * h), bd);
      bd = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64(q23, x, QK_K * k + 128 * h + 64)), lane_scales<4>(dsc, 8 * h + 4, x, k, 2 * h + 1), bd);
    }
    // The -32 of every quant: 32 * d * scale * (sum of the group's x).
    acc = _mm512_add_ps(acc, _mm512_fnmadd_ps(_mm512_set1_ps(32.0f), _mm512_mul_ps(dsc, _mm512_loadu_ps(x.s16 + 16 * k)), bd));
  }
  return _mm512_reduce_add_ps(acc);
}

template <class Block, float (*GEMV)(const Block*, int64_t, const X24&)>
void rows(const void* w, size_t stride, int64_t nrows, const void* x24, int64_t n, float* out) {
  const X24 x(x24, n);
  for (int64_t r = 0; r < nrows; ++r) out[r] = GEMV((const Block*)((const uint8_t*)w + r * stride), n / QK_K, x);
}

}  // namespace

GemvX24Fn avx512_gemv_x24(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::Q4_K: return rows<block_q4_K, gemv_kquant<false>>;
    case GgmlType::Q5_K: return rows<block_q5_K, gemv_kquant<true>>;
    case GgmlType::Q6_K: return rows<block_q6_K, gemv_q6_K>;
    default: return nullptr;
  }
}

bool dot_rows_x24(uint32_t type_id, const void* w, size_t stride, int64_t nrows, const float* x, int64_t n, float* out) {
  const GemvX24Fn gemv = avx512_gemv_x24(type_id);
  if (!gemv) return false;
  thread_local std::vector<uint8_t> buf;  // kept per thread: no allocation per call
  buf.resize(x24_bytes(n));
  convert_x24(x, n, buf.data());
  gemv(w, stride, nrows, buf.data(), n, out);
  return true;
}

}  // namespace moescope::quant

namespace moescope {

size_t x24_bytes(int64_t n) { return 63 + (size_t)n * 3 + (size_t)(n / 4 + n / 16 + n / 32) * sizeof(float); }

void convert_x24(const float* x, int64_t n, void* dst) {
  using namespace quant;
  int8_t* a = (int8_t*)aligned64(dst);
  int8_t *b = a + n, *c = b + n;
  float* e = (float*)(c + n);
  float *s16 = e + n / 4, *s32 = s16 + n / 16;
  const __m512 digits_max = _mm512_set1_ps(8355711.5f);  // 127 * 65793, plus the rounding's half
  const __m512i quad_leaders = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
  for (int64_t g = 0; g < n / 16; ++g) {
    const __m512 v = _mm512_loadu_ps(x + 16 * g);
    __m512 m = _mm512_abs_ps(v);  // the largest |x| of each 4, in all four lanes
    m = _mm512_max_ps(m, _mm512_permute_ps(m, 0xB1));
    m = _mm512_max_ps(m, _mm512_permute_ps(m, 0x4E));
    // m < 2^(getexp(m) + 1): E = getexp(m) - 22 puts m / 2^E in [2^22, 2^23), one more where that
    // passes the digits. At least -126, so that 2^E is a normal float: fours whose largest |x| is
    // below 2^-104 are rounded to 2^-127 absolute.
    __m512 E = _mm512_max_ps(_mm512_sub_ps(_mm512_getexp_ps(m), _mm512_set1_ps(22.0f)), _mm512_set1_ps(-126.0f));
    E = _mm512_mask_add_ps(E, _mm512_cmp_ps_mask(_mm512_scalef_ps(m, -E), digits_max, _CMP_GE_OQ), E, _mm512_set1_ps(1.0f));
    const __mmask16 bad = _mm512_cmp_ps_mask(m, m, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(m, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ);
    const __m512i xi = _mm512_maskz_cvtps_epi32(~bad, _mm512_scalef_ps(v, -E));  // exact scaling, one rounding
    const __m512i lo = low_byte(xi), r = _mm512_srai_epi32(_mm512_sub_epi32(xi, lo), 8);
    const __m512i mid = low_byte(r), hi = _mm512_srai_epi32(_mm512_sub_epi32(r, mid), 8);
    _mm_storeu_si128((__m128i*)(a + 16 * g), _mm512_cvtepi32_epi8(hi));
    _mm_storeu_si128((__m128i*)(b + 16 * g), _mm512_cvtepi32_epi8(mid));
    _mm_storeu_si128((__m128i*)(c + 16 * g), _mm512_cvtepi32_epi8(lo));
    // Inf or NaN among the four: the lane's products become NaN, as float sums would.
    const __m512 pe = _mm512_mask_mov_ps(_mm512_scalef_ps(_mm512_set1_ps(1.0f), E), bad, _mm512_set1_ps(NAN));
    _mm_storeu_ps(e + 4 * g, _mm512_castps512_ps128(_mm512_permutexvar_ps(quad_leaders, pe)));
    s16[g] = _mm512_reduce_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(xi), pe));
    if (g & 1) s32[g / 2] = s16[g - 1] + s16[g];
  }
}

}  // namespace moescope

MS_AVX512_END

#else  // not x86

namespace moescope {
size_t x24_bytes(int64_t) { return 0; }
void convert_x24(const float*, int64_t, void*) {}
namespace quant {
GemvX24Fn avx512_gemv_x24(uint32_t) { return nullptr; }
bool dot_rows_x24(uint32_t, const void*, size_t, int64_t, const float*, int64_t, float*) { return false; }
}  // namespace quant
}  // namespace moescope

#endif
