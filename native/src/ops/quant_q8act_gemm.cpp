// The opt-in fast mode's products of a few tokens (matmul.cpp: 5 to 12): K-quant weights (Q4_K, Q5_K,
// Q6_K) times int8 activation rows with a scale per 32 (quantize_q8act). NOT exact, like every
// fast-mode kernel; it computes what dot_q8act computes, up to float32 rounding. Longer products go
// to gemm_q8k (quant_q8k_gemm.cpp), which needs a scale per 256 but is faster from about 13 tokens.
//
// Why it is faster than the exact panel kernels: those spend 4 FMAs (8 multiply-adds each) on 32
// weights times one token; here it is maddubs (32 byte products, summed in pairs), madd (by the
// weights' integer sub-block scale), a conversion and one FMA by the activation block's scale.
// Keeping a 256-block in int32 instead (shifting by power-of-two activation scales, one conversion
// per block) was measured too: 5 % faster on the kernel for coarser activations, not worth it.
//
// Layout of the work: a thread's rows are unpacked a chunk at a time into PrepBlocks (unsigned quants,
// scale words, offset factors: 608 bytes per 256 weights; a chunk is as many rows as fit 20 KB, 8 rows
// of 1024 or 4 of 2048), then every token of the pass is dotted with the chunk in tiles of 2 rows x 2
// tokens, so each token's activations come from L2 once per chunk. Two 256-bit loads per cycle are
// the inner loop's limit on Zen 3 (llvm-mca -mcpu=znver3), so each operand is loaded into a register
// once per 32-group and used twice: 8 loads for 4 groups.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/quant_blocks.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include "ops/quant_avx2_unpack.h"

namespace moescope::quant {
namespace {

// The tile's loops over its rows and tokens must vanish, or its accumulator arrays live in memory.
#define MQ_UNROLL _Pragma("GCC unroll 4")

// What the tile needs of one weight row's 256-value block.
struct alignas(32) PrepBlock {
  __m256i u[8];    // each 32-group's unsigned quants: maddubs's unsigned operand
  __m256i sc[8];   // each group's integer scale, per 16-bit maddubs word (Q6_K: words 0-7 and 8-15 differ)
  float off[16];   // factors of the offset term, against the activation's 16-sums
  float d;         // scale of the integer part
};

// Q4_K / Q5_K: value = d * sc_j * q - dmin * m_j, q = the 4 (5) bit quant. The mins term of a
// 32-group is dmin * m_j * (d_y * sum y) = dmin * m_j * (s16[2j] + s16[2j+1]).
template <bool FIVE_BITS>
MQ_INLINE void prep_kquant(const kquant_block<FIVE_BITS>& b, PrepBlock& p) {
  const float d = _cvtsh_ss(b.d), dmin = _cvtsh_ss(b.dmin);
  alignas(16) uint8_t sm[16];
  unpack_scales_k4(b.scales, sm);
  const __m256i qh = FIVE_BITS ? _mm256_loadu_si256((const __m256i*)kquant_qh(b)) : _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) kquant_unsigned<FIVE_BITS>(b.qs, qh, i, &p.u[2 * i], &p.u[2 * i + 1]);
  for (int j = 0; j < 8; ++j) {
    p.sc[j] = _mm256_set1_epi16(sm[j]);
    p.off[2 * j] = p.off[2 * j + 1] = dmin * (float)sm[8 + j];
  }
  p.d = d;
}

void prep_q4_K(const uint8_t* blk, PrepBlock& p) { prep_kquant<false>(*(const block_q4_K*)blk, p); }
void prep_q5_K(const uint8_t* blk, PrepBlock& p) { prep_kquant<true>(*(const block_q5_K*)blk, p); }

// Q6_K: value = d * sc_i * (u - 32), u = the 6-bit quant (0..63), one signed scale per 16; the -32
// is the offset term, 32 * d * sc_i * (d_y * sum of the 16). Quants and scales unpacked as the
// decode GEMV does (quant_avx2_unpack.h).
void prep_q6_K(const uint8_t* blk, PrepBlock& p) {
  const block_q6_K& b = *(const block_q6_K*)blk;
  const float d = _cvtsh_ss(b.d);
  for (int h = 0; h < 2; ++h) {
    q6k_unsigned(b, h, p.u + 4 * h);
    const __m256i sw = q6k_half_scales(b, h);
    for (int g = 0; g < 4; ++g) p.sc[4 * h + g] = q6k_group_scales(sw, g);
  }
  for (int i = 0; i < 16; ++i) p.off[i] = 32.0f * d * (float)b.scales[i];
  p.d = d;
}

// R prepared rows (p[r] = the row's nb blocks) times T activation rows -> out[t*ldo + r].
template <int R, int T>
void tile(const PrepBlock* const* p, const Q8ActRow* a, int64_t nb, float* out, int64_t ldo) {
  __m256 facc[R][T];
  MQ_UNROLL for (int r = 0; r < R; ++r)
    MQ_UNROLL for (int t = 0; t < T; ++t) facc[r][t] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    __m256 acc[R][T];  // sum over the block's groups of (sc * integer dot) * d_y, before the block scale d
    MQ_UNROLL for (int r = 0; r < R; ++r)
      MQ_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int j = 0; j < 8; ++j) {
      __m256i u[R], sc[R], y[T];
      __m256 dy[T];
      MQ_UNROLL for (int r = 0; r < R; ++r) {
        u[r] = _mm256_load_si256(&p[r][k].u[j]);
        sc[r] = _mm256_load_si256(&p[r][k].sc[j]);
        __asm__("" : "+x"(u[r]), "+x"(sc[r]));  // keep in a register: no load folded into each use
      }
      MQ_UNROLL for (int t = 0; t < T; ++t) {
        y[t] = _mm256_loadu_si256((const __m256i*)(a[t].qs + QK_K * k + 32 * j));
        dy[t] = _mm256_broadcast_ss(a[t].d + 8 * k + j);
        __asm__("" : "+x"(y[t]), "+x"(dy[t]));
      }
      MQ_UNROLL for (int t = 0; t < T; ++t)
        MQ_UNROLL for (int r = 0; r < R; ++r) {
          const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(u[r], y[t]), sc[r]);
          acc[r][t] = _mm256_fmadd_ps(dy[t], _mm256_cvtepi32_ps(s), acc[r][t]);
        }
    }
    MQ_UNROLL for (int t = 0; t < T; ++t) {
      const __m256 s16a = _mm256_loadu_ps(a[t].s16 + 16 * k), s16b = _mm256_loadu_ps(a[t].s16 + 16 * k + 8);
      MQ_UNROLL for (int r = 0; r < R; ++r) {
        const PrepBlock& b = p[r][k];
        __m256 f = _mm256_fmadd_ps(_mm256_set1_ps(b.d), acc[r][t], facc[r][t]);
        f = _mm256_fnmadd_ps(_mm256_load_ps(b.off), s16a, f);
        facc[r][t] = _mm256_fnmadd_ps(_mm256_load_ps(b.off + 8), s16b, f);
      }
    }
  }
  MQ_UNROLL for (int r = 0; r < R; ++r)
    MQ_UNROLL for (int t = 0; t < T; ++t) out[(int64_t)t * ldo + r] = hsum8(facc[r][t]);
}

using TileFn = void (*)(const PrepBlock* const*, const Q8ActRow*, int64_t, float*, int64_t);
constexpr int kTileRows = 2, kTileTokens = 2;
const TileFn kTiles[kTileRows][kTileTokens] = {{tile<1, 1>, tile<1, 2>}, {tile<2, 1>, tile<2, 2>}};

// Rows are prepared a chunk at a time, as many as fit this budget (at least one tile's worth): the
// chunk's PrepBlocks stay in L1 while each pair of tokens, read once from L2, serves all its rows.
constexpr size_t kPrepBudget = 20 * 1024;

template <void (*PREP)(const uint8_t*, PrepBlock&), size_t BLOCK_BYTES>
void gemm_q8act_avx2(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                     float* out, int64_t ldo) {
  const int64_t nb = n / QK_K;
  int64_t chunk = (int64_t)(kPrepBudget / (sizeof(PrepBlock) * (size_t)nb)) / kTileRows * kTileRows;
  if (chunk < kTileRows) chunk = kTileRows;
  thread_local std::vector<PrepBlock> prep;  // kept per thread: no allocation per call
  prep.resize((size_t)(chunk * nb));
  for (int64_t c0 = 0; c0 < nrows; c0 += chunk) {
    const int64_t nc = nrows - c0 < chunk ? nrows - c0 : chunk;
    for (int64_t r = 0; r < nc; ++r) {
      const uint8_t* wr = (const uint8_t*)w + (size_t)(c0 + r) * row_stride;
      for (int64_t k = 0; k < nb; ++k) PREP(wr + (size_t)k * BLOCK_BYTES, prep[(size_t)(r * nb + k)]);
    }
    for (int t0 = 0; t0 < ntok; t0 += kTileTokens) {
      const int T = ntok - t0 < kTileTokens ? ntok - t0 : kTileTokens;
      Q8ActRow a[kTileTokens];
      for (int t = 0; t < T; ++t) a[t] = q8act_row((const uint8_t*)xq + (size_t)(t0 + t) * ldxq, n);
      for (int64_t r0 = 0; r0 < nc; r0 += kTileRows) {
        const int R = (int)(nc - r0 < kTileRows ? nc - r0 : kTileRows);
        const PrepBlock* rows[kTileRows];
        for (int r = 0; r < R; ++r) rows[r] = &prep[(size_t)((r0 + r) * nb)];
        kTiles[R - 1][T - 1](rows, a, nb, out + (int64_t)t0 * ldo + c0 + r0, ldo);
      }
    }
  }
}

}  // namespace
}  // namespace moescope::quant

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace moescope::quant {
DotQ8ActFn avx2_gemm_q8act(uint32_t type_id) {
  if (!avx2_available()) return nullptr;
  switch ((GgmlType)type_id) {
    case GgmlType::Q4_K: return gemm_q8act_avx2<prep_q4_K, sizeof(block_q4_K)>;
    case GgmlType::Q5_K: return gemm_q8act_avx2<prep_q5_K, sizeof(block_q5_K)>;
    case GgmlType::Q6_K: return gemm_q8act_avx2<prep_q6_K, sizeof(block_q6_K)>;
    default: return nullptr;
  }
}
}  // namespace moescope::quant

#else

namespace moescope::quant {
DotQ8ActFn avx2_gemm_q8act(uint32_t) { return nullptr; }
}  // namespace moescope::quant

#endif
