// The opt-in fast mode's K-quant kernels (Q4_K, Q5_K, Q6_K): activations rounded to int8 with one
// scale per 256 values and the int16 sum of every 16 (quantize_q8k: llama.cpp's Q8_K, the
// activations llama.cpp itself pairs with these weights), so that a whole K-quant block sums in
// int32 and one float step per block applies d * d_y and the offset term (the K-quants' mins,
// Q6_K's -32, itself summed in integers from the 16-sums). NOT exact, like every fast-mode kernel.
//
// gemm_q8k takes any number of activation rows:
// - 1 or 2 (decode steps): one weight row against one activation row at a time, as llama.cpp's
//   ggml_vec_dot_q4_K_q8_K / q6_K_q8_K: maddubs, then madd by the sub-block's scale word.
// - 3 or more (prompts): outputs are vectors of 8 weight rows, as in a float GEMM's register tile,
//   each 32-bit lane 4 consecutive quants of one row against the token's 4 int8 activations at
//   those k, broadcast: maddubs + madd give 32 multiply-adds in two instructions, against the 8 of
//   one float FMA. The weights of a 16-row panel are rearranged one 256-block at a time
//   (PanelBlock: the quants as bytes in 8 rows x 4 k lanes, the scale words, the offset words, two
//   float factors: 6 KB, in L1), then every token of the call runs against it in tiles of 16 rows
//   x 4 tokens; on CPUs with AVX-512 VNNI, 16 rows per register x 8 tokens (tile_vnni).
// Measured (BENCHMARKS.md, "Exact by default, fast by choice"): the tile with one float step per
// 32-element sub-block (per-32 activations) ran 0.93-1.06x the exact float panels, with one per
// block it runs 1.2-2.1x a per-32 int8 dot from 3 tokens on. The GEMV replaced such a per-32 dot in
// decode steps: 1.05-1.11x on Q4_K, 1.15-1.18x on Q6_K (one core, from L2), whole-model decode +7 %.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/quant_blocks.h"

namespace moescope::quant {

void quantize_q8k_portable(const float* x, int64_t n, void* dst) {
  const Q8KRowOut o = q8k_row_out(dst, n);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float amax = 0.0f;
    for (int j = 0; j < QK_K; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    float id;
    o.d[b] = int8_scale(amax, &id);
    int sums[QK_K / 16];
    round_int8(x, QK_K, id, o.qs + QK_K * b, sums);
    for (int h = 0; h < QK_K / 16; ++h) o.bsums[16 * b + h] = (int16_t)sums[h];
  }
}

// No registry kernel (quant.cpp leaves gemm_q8k empty without AVX2, where decoding every block once
// per token would be slower than the exact kernels): the portable twin is for tests.
DotQ8ActFn scalar_gemm_q8k(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::Q4_K: return dot_int8_portable<(uint32_t)GgmlType::Q4_K, Q8KRow, q8k_row, QK_K>;
    case GgmlType::Q5_K: return dot_int8_portable<(uint32_t)GgmlType::Q5_K, Q8KRow, q8k_row, QK_K>;
    case GgmlType::Q6_K: return dot_int8_portable<(uint32_t)GgmlType::Q6_K, Q8KRow, q8k_row, QK_K>;
    default: return nullptr;
  }
}

}  // namespace moescope::quant

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/simd_region.h"


namespace moescope::quant {
namespace {

constexpr int PANEL = 16;  // weight rows per panel: two vectors of 8 (one of 16 with AVX-512)

// One 256-block of a 16-row panel, as the tile reads it. value(row, k) = d * w * q - doff * ow, with
// q the unsigned quant and w, ow the integer scale and offset of k's 16-element half:
// Q4_K/Q5_K w = sc, ow = m, doff = dmin; Q6_K w = ow = sc, doff = 32 d (the -32 of every quant).
struct alignas(32) PanelBlock {
  __m256i q[8][8][2];  // [32-element sub-block][group of 4 k][row vector]: 8 rows x 4 quants (bytes)
  __m256i w[16][2];    // [16-half][row vector]: the half's scale as both words of each lane
  __m256i ow[8][2];    // [pair of halves][row vector]: the two halves' offsets as the lane's two words
  __m256 d[2];         // [row vector]
  __m256 doff[2];
};

}  // namespace
}  // namespace moescope::quant

// ---- AVX-512 VNNI: the prompts' tile (AVX2's `tile`, further down) with 16 rows per register ----
// vpdpbusd sums four u8 x s8 products into each int32 lane in one instruction, where AVX2 needs
// maddubs + madd + add. The scale of a 16-element half multiplies its four groups' sum once
// (vpmulld), where AVX2's madd applied it per group: the same integers, so the same float steps
// and the same bits as the AVX2 tile (tested).
MS_AVX512_BEGIN

namespace moescope::quant {
namespace {

constexpr int VNNI_TOKENS = 8;  // 8 accumulators + 8 half sums + 4 quant vectors + the scales

template <int T>
void tile_vnni(const PanelBlock& pb, const Q8KRow* a, int64_t k, float* acc) {
  __m512i s[T];
  for (int t = 0; t < T; ++t) s[t] = _mm512_setzero_si512();
  for (int h = 0; h < 16; ++h) {  // half h: k 16h .. 16h + 15 of the block, groups 4 (h & 1) .. + 3 of sub-block h / 2
    const int j = h >> 1, g0 = 4 * (h & 1);
    __m512i q[4];
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) q[g] = _mm512_loadu_si512((const void*)&pb.q[j][g0 + g][0]);  // rows 0-7, 8-15
    const __m512i w = _mm512_srai_epi32(_mm512_loadu_si512((const void*)&pb.w[h][0]), 16);  // the scale word
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const int8_t* y = a[t].qs + QK_K * k + 16 * h;
      int32_t y4[4];
      memcpy(y4, y, 16);
      __m512i hs = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], _mm512_set1_epi32(y4[0]));
      hs = _mm512_dpbusd_epi32(hs, q[1], _mm512_set1_epi32(y4[1]));
      hs = _mm512_dpbusd_epi32(hs, q[2], _mm512_set1_epi32(y4[2]));
      hs = _mm512_dpbusd_epi32(hs, q[3], _mm512_set1_epi32(y4[3]));
      s[t] = _mm512_add_epi32(s[t], _mm512_mullo_epi32(hs, w));
    }
  }
  const __m512 d = _mm512_loadu_ps((const float*)pb.d), doff = _mm512_loadu_ps((const float*)pb.doff);
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const __m512 dy = _mm512_set1_ps(a[t].d[k]);
    __m512i o = _mm512_setzero_si512();  // the offset term in integers, as the AVX2 tile
    for (int i = 0; i < 8; ++i) {
      int32_t b2;
      memcpy(&b2, a[t].bsums + 16 * k + 2 * i, 4);
      o = _mm512_add_epi32(o, _mm512_madd_epi16(_mm512_loadu_si512((const void*)&pb.ow[i][0]), _mm512_set1_epi32(b2)));
    }
    float* at = acc + 16 * t;
    const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(d, dy), _mm512_loadu_ps(at));
    _mm512_storeu_ps(at, _mm512_fnmadd_ps(_mm512_cvtepi32_ps(o), _mm512_mul_ps(doff, dy), f));
  }
}

// acc[16 t + r] += block k of the panel times activation rows a[0..nt), for every t < nt.
void tiles_vnni(const PanelBlock& pb, const Q8KRow* a, int nt, int64_t k, float* acc) {
  int t = 0;
  for (; t + VNNI_TOKENS <= nt; t += VNNI_TOKENS) tile_vnni<VNNI_TOKENS>(pb, a + t, k, acc + 16 * t);
  switch (nt - t) {
    case 7: tile_vnni<7>(pb, a + t, k, acc + 16 * t); break;
    case 6: tile_vnni<6>(pb, a + t, k, acc + 16 * t); break;
    case 5: tile_vnni<5>(pb, a + t, k, acc + 16 * t); break;
    case 4: tile_vnni<4>(pb, a + t, k, acc + 16 * t); break;
    case 3: tile_vnni<3>(pb, a + t, k, acc + 16 * t); break;
    case 2: tile_vnni<2>(pb, a + t, k, acc + 16 * t); break;
    case 1: tile_vnni<1>(pb, a + t, k, acc + 16 * t); break;
    default: break;
  }
}

}  // namespace
}  // namespace moescope::quant

MS_AVX512_END

namespace moescope::quant {
static const bool kAvx512 = avx512_available();  // baseline code: decided once at load time
}  // namespace moescope::quant

MS_AVX2_BEGIN

#include "ops/quant_avx2_unpack.h"

namespace moescope::quant {
namespace {

// quantize_q8k_portable, 32 values at a time: the same bytes and sums.
void quantize_q8k_avx2(const float* x, int64_t n, void* dst) {
  const Q8KRowOut o = q8k_row_out(dst, n);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < QK_K; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    float id;
    o.d[b] = int8_scale(hmax8(m), &id);
    for (int i = 0; i < QK_K; i += 32) {
      int sums[2];
      round32_int8(x + i, _mm256_set1_ps(id), o.qs + QK_K * b + i, sums);
      o.bsums[16 * b + i / 16] = (int16_t)sums[0];
      o.bsums[16 * b + i / 16 + 1] = (int16_t)sums[1];
    }
  }
}

// The tile's loops over its rows and tokens must vanish, or its accumulator arrays live in memory.
#define MQ_UNROLL _Pragma("GCC unroll 8")

constexpr int TILE_TOKENS = 4;

// What a type's row gives before the rearrangement.
struct RowBlock {
  __m256i q[8];  // sub-block j's 32 unsigned quants, in k order
  __m256i w;     // the 16 halves' scales, 16-bit words
  __m256i ow;    // and their offsets
  float d, doff;
};

template <bool FIVE_BITS>
MQ_INLINE void row_kquant(const kquant_block<FIVE_BITS>& b, RowBlock& r) {
  const __m128i smv = scales_mins_k4(b.scales);  // 8 scales, then 8 mins; each covers two halves
  const __m256i qh = FIVE_BITS ? _mm256_loadu_si256((const __m256i*)kquant_qh(b)) : _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) kquant_unsigned<FIVE_BITS>(b.qs, qh, i, &r.q[2 * i], &r.q[2 * i + 1]);
  r.w = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(smv, smv));
  r.ow = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv));
  r.d = _cvtsh_ss(b.d);
  r.doff = _cvtsh_ss(b.dmin);
}
void row_q4_K(const uint8_t* blk, RowBlock& r) { row_kquant<false>(*(const block_q4_K*)blk, r); }
void row_q5_K(const uint8_t* blk, RowBlock& r) { row_kquant<true>(*(const block_q5_K*)blk, r); }

void row_q6_K(const uint8_t* blk, RowBlock& r) {
  const block_q6_K& b = *(const block_q6_K*)blk;
  for (int h = 0; h < 2; ++h) q6k_unsigned(b, h, r.q + 4 * h);  // sub-block 4h + g: elements 128h + 32g ..
  r.w = r.ow = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)b.scales));
  r.d = _cvtsh_ss(b.d);
  r.doff = 32.0f * r.d;
}

// 8 rows' 32-byte vectors -> 8 vectors of (8 rows x 4 bytes), one per group of 4 k: the 8 x 8
// transpose of 32-bit elements.
MQ_INLINE void transpose8x32(const __m256i* rows, __m256i* out) {
  __m256 r[8], o[8];
  MQ_UNROLL for (int i = 0; i < 8; ++i) r[i] = _mm256_castsi256_ps(rows[i]);
  transpose8x8(r, o);
  MQ_UNROLL for (int i = 0; i < 8; ++i) out[i] = _mm256_castps_si256(o[i]);
}

// Block k of rows [0, prow) of the panel (absent rows are zeros) into pb. Everything that goes from
// rows to row vectors is an 8 x 8 transpose of 32-bit lanes: the quants (a lane is 4 k), the scale
// words (a lane is one half's word twice) and the offset words (a lane is two halves' words).
template <void (*ROW)(const uint8_t*, RowBlock&), size_t BLOCK_BYTES>
MQ_INLINE void prepare(const uint8_t* w, size_t row_stride, int prow, int64_t k, PanelBlock& pb) {
  RowBlock rb[PANEL];
  alignas(32) float d[PANEL], doff[PANEL];
  for (int r = 0; r < PANEL; ++r) {
    if (r < prow) ROW(w + (size_t)r * row_stride + (size_t)k * BLOCK_BYTES, rb[r]);
    else memset(&rb[r], 0, sizeof(rb[r]));
    d[r] = rb[r].d;
    doff[r] = rb[r].doff;
  }
  for (int v = 0; v < 2; ++v) {
    const RowBlock* b = rb + 8 * v;
    __m256i in[8], out[8];
    for (int j = 0; j < 8; ++j) {
      MQ_UNROLL for (int i = 0; i < 8; ++i) in[i] = b[i].q[j];
      transpose8x32(in, out);
      MQ_UNROLL for (int g = 0; g < 8; ++g) pb.q[j][g][v] = out[g];
    }
    // unpacklo/hi of the words with themselves: lanes hold halves 0-3 and 8-11, then 4-7 and 12-15.
    MQ_UNROLL for (int i = 0; i < 8; ++i) in[i] = _mm256_unpacklo_epi16(b[i].w, b[i].w);
    transpose8x32(in, out);
    MQ_UNROLL for (int c = 0; c < 4; ++c) pb.w[c][v] = out[c], pb.w[8 + c][v] = out[4 + c];
    MQ_UNROLL for (int i = 0; i < 8; ++i) in[i] = _mm256_unpackhi_epi16(b[i].w, b[i].w);
    transpose8x32(in, out);
    MQ_UNROLL for (int c = 0; c < 4; ++c) pb.w[4 + c][v] = out[c], pb.w[12 + c][v] = out[4 + c];
    MQ_UNROLL for (int i = 0; i < 8; ++i) in[i] = b[i].ow;
    transpose8x32(in, out);
    MQ_UNROLL for (int p = 0; p < 8; ++p) pb.ow[p][v] = out[p];
    pb.d[v] = _mm256_load_ps(&d[8 * v]);
    pb.doff[v] = _mm256_load_ps(&doff[8 * v]);
  }
}

// acc[t][v] += block k of the panel times activation rows a[0..T).
template <int T>
void tile(const PanelBlock& pb, const Q8KRow* a, int64_t k, __m256 (*acc)[2]) {
  __m256i s[T][2];
  MQ_UNROLL for (int t = 0; t < T; ++t) s[t][0] = s[t][1] = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
#pragma GCC unroll 2
    for (int g = 0; g < 8; ++g) {
      // 8 accumulators, 2 quant vectors, the activations and 2 products in registers; the scale
      // words are madd's memory operand (held in registers too, they pushed accumulators to the stack).
      __m256i q0 = _mm256_load_si256(&pb.q[j][g][0]), q1 = _mm256_load_si256(&pb.q[j][g][1]);
      __asm__("" : "+x"(q0), "+x"(q1));
      const __m256i* w = pb.w[2 * j + g / 4];
      MQ_UNROLL for (int t = 0; t < T; ++t) {
        int32_t y4;
        memcpy(&y4, a[t].qs + QK_K * k + 32 * j + 4 * g, 4);
        const __m256i y = _mm256_set1_epi32(y4);
        s[t][0] = _mm256_add_epi32(s[t][0], _mm256_madd_epi16(_mm256_maddubs_epi16(q0, y), _mm256_load_si256(w)));
        s[t][1] = _mm256_add_epi32(s[t][1], _mm256_madd_epi16(_mm256_maddubs_epi16(q1, y), _mm256_load_si256(w + 1)));
      }
    }
  }
  MQ_UNROLL for (int t = 0; t < T; ++t) {
    const __m256 dy = _mm256_broadcast_ss(a[t].d + k);
    MQ_UNROLL for (int v = 0; v < 2; ++v) {
      // The offset term in integers: sum over the 16 halves of ow * (sum of the half's activations).
      __m256i o = _mm256_setzero_si256();
      for (int i = 0; i < 8; ++i) {
        int32_t b2;
        memcpy(&b2, a[t].bsums + 16 * k + 2 * i, 4);
        o = _mm256_add_epi32(o, _mm256_madd_epi16(pb.ow[i][v], _mm256_set1_epi32(b2)));
      }
      const __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][v]), _mm256_mul_ps(pb.d[v], dy), acc[t][v]);
      acc[t][v] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(o), _mm256_mul_ps(pb.doff[v], dy), f);
    }
  }
}

// ---- 1-2 tokens (decode steps): one weight row against one activation row ----

// Scale word s (0-7) of a 16-word vector, in every word.
MQ_INLINE __m256i word_of(__m256i words, int s) {
  return _mm256_shuffle_epi8(words, _mm256_set1_epi16((short)(((2 * s + 1) << 8) | (2 * s))));
}

// Q4_K / Q5_K: each 32-element sub-block's maddubs (quants < 32 times int8: pairs within int16),
// madd by its 6-bit scale word, summed in int32 over the block (< 2^24); the mins term
// dmin * sum_s m_s * (sum of sub-block s's activations) from the 16-sums, in a float vector of its own.
template <bool FIVE_BITS>
MQ_INLINE float gemv_kquant_q8k(const kquant_block<FIVE_BITS>* b, const Q8KRow& y, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead<sizeof(b[k])>(b + k);
    const __m256i sc_mins = _mm256_cvtepu8_epi16(scales_mins_k4(b[k].scales));  // words 0-7 scales, 8-15 mins
    // mins: sum over sub-blocks of m_s * (sum of its 32 activations), the 16-sums added in pairs.
    const __m256i bs = _mm256_loadu_si256((const __m256i*)(y.bsums + 16 * k));
    const __m128i ys = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i mprod = _mm_madd_epi16(_mm256_extracti128_si256(sc_mins, 1), ys);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(y.d[k] * _cvtsh_ss(b[k].dmin)), _mm_cvtepi32_ps(mprod), acc_m);
    const __m256i scales = _mm256_permute2x128_si256(sc_mins, sc_mins, 0x00);
    const uint8_t* qs = b[k].qs;
    const __m256i qh = FIVE_BITS ? _mm256_loadu_si256((const __m256i*)kquant_qh(b[k])) : _mm256_setzero_si256();
    const int8_t* q8 = y.qs + QK_K * k;
    __m256i sumi = _mm256_setzero_si256();
    MQ_UNROLL for (int j = 0; j < 4; ++j) {
      __m256i lo, hi;
      kquant_unsigned<FIVE_BITS>(qs, qh, j, &lo, &hi);
      const __m256i pl = _mm256_madd_epi16(word_of(scales, 2 * j), _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)(q8 + 64 * j))));
      const __m256i ph = _mm256_madd_epi16(word_of(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(q8 + 64 * j + 32))));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y.d[k] * _cvtsh_ss(b[k].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum8(acc) - hsum4(acc_m);
}

// Q6_K: the unsigned quants q + 32 (< 64) through maddubs, madd by the two 16-element scales of each
// 32 (signed bytes), int32 over the block (< 2^26); the + 32 taken back in integers from the 16-sums.
MQ_INLINE float gemv_q6k_q8k(const block_q6_K* w, const Q8KRow& y, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    prefetch_ahead<sizeof(block_q6_K)>(w + k);
    // The -32 of every quant: 32 * sum over the 16 scales of sc * (sum of its 16 activations).
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)w[k].scales));
    const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i*)(y.bsums + 16 * k)), sc16), 5);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const int8_t* q8 = y.qs + QK_K * k + 128 * h;
      __m256i u[4];  // elements l, l+32, l+64, l+96 of the half, plus 32
      q6k_unsigned(w[k], h, u);
      const __m256i sw = q6k_half_scales(w[k], h);
      MQ_UNROLL for (int g = 0; g < 4; ++g)
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(u[g], _mm256_loadu_si256((const __m256i*)(q8 + 32 * g))),
                                                        q6k_group_scales(sw, g)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y.d[k] * _cvtsh_ss(w[k].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, off)), acc);
  }
  return hsum8(acc);
}

// Up to this many tokens a call dots row by row: at 2 the tile was only 1.03 / 1.08x (Q4_K / Q6_K)
// as fast as the per-32 int8 dot that this GEMV outruns; at 3 it runs 1.17-1.49x this GEMV token by
// token (`node tests/ops/kernel-ab.js gemm Q4_K,Q6_K 1024 256 NTOK`).
constexpr int kGemvMaxTokens = 2;

// GEMV_ROWS: dot_each_row over the type's GEMV, for 1-2 tokens.
template <void (*ROW)(const uint8_t*, RowBlock&), size_t BLOCK_BYTES, DotQ8ActFn GEMV_ROWS>
void gemm_q8k_avx2(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                   float* out, int64_t ldo) {
  constexpr int kMaxTokens = 128;  // matmul.cpp's token tile: callers give at most this many at once
  const int64_t nb = n / QK_K;
  if (ntok <= kGemvMaxTokens) return GEMV_ROWS(w, row_stride, nrows, xq, ldxq, n, ntok, out, ldo);
  PanelBlock pb;
  __m256 acc[kMaxTokens][2];
  Q8KRow a[kMaxTokens];
  for (int t0 = 0; t0 < ntok; t0 += kMaxTokens) {
    const int nt = ntok - t0 < kMaxTokens ? ntok - t0 : kMaxTokens;
    for (int t = 0; t < nt; ++t) a[t] = q8k_row((const uint8_t*)xq + (size_t)(t0 + t) * ldxq, n);
    for (int64_t r0 = 0; r0 < nrows; r0 += PANEL) {
      const int prow = (int)(nrows - r0 < PANEL ? nrows - r0 : PANEL);
      for (int t = 0; t < nt; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
      for (int64_t k = 0; k < nb; ++k) {
        prepare<ROW, BLOCK_BYTES>((const uint8_t*)w + (size_t)r0 * row_stride, row_stride, prow, k, pb);
        if (kAvx512) {
          tiles_vnni(pb, a, nt, k, (float*)acc);
          continue;
        }
        int t = 0;
        for (; t + TILE_TOKENS <= nt; t += TILE_TOKENS) tile<TILE_TOKENS>(pb, a + t, k, acc + t);
        switch (nt - t) {
          case 3: tile<3>(pb, a + t, k, acc + t); break;
          case 2: tile<2>(pb, a + t, k, acc + t); break;
          case 1: tile<1>(pb, a + t, k, acc + t); break;
          default: break;
        }
      }
      for (int t = 0; t < nt; ++t) store_panel_outputs(out + (int64_t)(t0 + t) * ldo + r0, acc[t], prow);
    }
  }
}

}  // namespace
}  // namespace moescope::quant

MS_AVX2_END

namespace moescope::quant {
static QuantizeFn avx2_quantize_q8k() { return avx2_available() ? quantize_q8k_avx2 : nullptr; }

DotQ8ActFn avx2_gemm_q8k(uint32_t type_id) {
  if (!avx2_available()) return nullptr;
  switch ((GgmlType)type_id) {
    case GgmlType::Q4_K:
      return gemm_q8k_avx2<row_q4_K, sizeof(block_q4_K), dot_each_row<block_q4_K, Q8KRow, q8k_row, gemv_kquant_q8k<false>, QK_K>>;
    case GgmlType::Q5_K:
      return gemm_q8k_avx2<row_q5_K, sizeof(block_q5_K), dot_each_row<block_q5_K, Q8KRow, q8k_row, gemv_kquant_q8k<true>, QK_K>>;
    case GgmlType::Q6_K:
      return gemm_q8k_avx2<row_q6_K, sizeof(block_q6_K), dot_each_row<block_q6_K, Q8KRow, q8k_row, gemv_q6k_q8k, QK_K>>;
    default: return nullptr;
  }
}
}  // namespace moescope::quant

#else

namespace moescope::quant {
static QuantizeFn avx2_quantize_q8k() { return nullptr; }
DotQ8ActFn avx2_gemm_q8k(uint32_t) { return nullptr; }
}  // namespace moescope::quant

#endif

namespace moescope {
void quantize_q8k(const float* x, int64_t n, void* dst) {
  static const quant::QuantizeFn impl = quant::avx2_quantize_q8k() ? quant::avx2_quantize_q8k() : quant::quantize_q8k_portable;
  impl(x, n, dst);
}
}  // namespace moescope
