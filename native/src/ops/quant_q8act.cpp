// The opt-in fast mode for Q8_0 and Q4_0 weights: activations rounded to int8 with one float scale
// per 32 values (ggml's Q8_0 activation blocks, which llama.cpp pairs with these weights) and
// dotted with the weights in integer arithmetic, as llama.cpp does. NOT exact: the activation
// rounding (relative 1/254 of each 32-block's largest value) moves the result by about 1e-3
// relative, enough to flip close routing decisions. It exists for speed comparisons and for users
// who ask for it; the default kernels (quant.cpp, quant_avx2.cpp) keep activations float32. The
// K-quants' fast mode rounds per 256 instead (quant_q8k.cpp).
//
// Contract: quantize_q8act(x, n, dst) writes q8act_row_bytes(n) bytes laid out as Q8ActRow
// (quant_blocks.h); dot_q8act(w, row_stride, nrows, xq, ldxq, n, ntok, out, ldo) computes, for each
// of nrows weight rows and ntok activation rows (row t at (const char*)xq + t*ldxq), the dot of the
// dequantised weight row with the dequantised activation row, up to float32 rounding, into
// out[t*ldo + r]. ops/matmul.cpp calls it for products of at most dot_q8act_max_tokens rows.
// The portable kernels dequantise both sides to float; the AVX2 ones (compiled for AVX2 in a
// target region, picked only when the CPU has it) stay in integers within each 32-block, and so
// does the AVX-512 VNNI tile for Q8_0 prompts (below).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ops/quant_blocks.h"

namespace moescope::quant {

void quantize_q8act_portable(const float* x, int64_t n, void* dst) {
  int8_t* qs = (int8_t*)dst;
  float* d = (float*)(qs + n);
  float* s32 = d + n / QK8_0;
  for (int64_t k = 0; k < n / QK8_0; ++k, x += QK8_0, qs += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    float id;
    const float dk = int8_scale(amax, &id);
    int sum[2];
    round_int8(x, QK8_0, id, qs, sum);
    d[k] = dk;
    s32[k] = dk * (float)(sum[0] + sum[1]);
  }
}

DotQ8ActFn scalar_dot_q8act(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::Q8_0: return dot_int8_portable<(uint32_t)GgmlType::Q8_0, Q8ActRow, q8act_row, QK8_0>;
    case GgmlType::Q4_0: return dot_int8_portable<(uint32_t)GgmlType::Q4_0, Q8ActRow, q8act_row, QK4_0>;
    default: return nullptr;
  }
}

}  // namespace moescope::quant

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/simd_region.h"


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

// quantize_q8act_portable, 32 values at a time: the same bytes and sums.
void quantize_q8act_avx2(const float* x, int64_t n, void* dst) {
  int8_t* qs = (int8_t*)dst;
  float* d = (float*)(qs + n);
  float* s32 = d + n / QK8_0;
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
  }
}

}  // namespace
}  // namespace moescope::quant

MS_AVX2_END

// ---- AVX-512 VNNI: Q8_0 against any number of activation rows ----
// Panels of 16 weight rows, lane = row: a block's 32 quants of the 16 rows as 8 registers of 4
// consecutive k per lane, and per token vpdpbusd against 4 activation bytes broadcast. vpdpbusd
// multiplies unsigned by signed bytes: the activations go in offset by 128 (y ^ 0x80 = y + 128 as
// unsigned) and 128 * (sum of the row's 32 quants) comes off again, exactly. One float step per block
// and row: (d_w * d_y) * the block's int32 dot, as q8_0_row. Per 16 rows x 32 k and token: 8
// vpdpbusd and 4 more instructions, against the exact panels' 32 FMAs. On AVX2 the exact panels stay
// the faster from 5 tokens (matmul.cpp); here this is.
MS_AVX512_BEGIN

namespace moescope::quant {
namespace {

constexpr int Q8_PANEL = 16;
constexpr int Q8_TOKENS = 8;       // accumulators per tile
constexpr int64_t Q8_BLOCKS = 32;  // blocks prepared at once: 1024 k, 20 KB

struct alignas(64) Q8Panel {
  __m512i q[Q8_BLOCKS][8];  // [block][group of 4 k]: 16 rows x 4 signed bytes
  __m512i wsum128[Q8_BLOCKS];  // 128 * sum of each row's 32 quants
  __m512 d[Q8_BLOCKS];         // each row's block scale
};

// Blocks [b0, b0 + nb) of rows [0, prow) (absent rows: zeros) into p.
void q8_panel_prepare(const uint8_t* w, size_t stride, int prow, int64_t b0, int64_t nb, Q8Panel& p) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    alignas(64) float d[Q8_PANEL];
    __m256i r[Q8_PANEL];
    for (int i = 0; i < Q8_PANEL; ++i) {
      const block_q8_0* blk = (const block_q8_0*)(w + i * stride) + b0 + b;
      r[i] = i < prow ? _mm256_loadu_si256((const __m256i*)blk->qs) : _mm256_setzero_si256();
      d[i] = i < prow ? _cvtsh_ss(blk->d) : 0.0f;
    }
    __m256 lo[8], hi[8];
    transpose8x8((const __m256*)r, lo);      // rows 0-7: lo[g] = their dword g (k 4g .. 4g + 3)
    transpose8x8((const __m256*)(r + 8), hi);
    __m512i ws = _mm512_setzero_si512();
    for (int g = 0; g < 8; ++g) {
      const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(lo[g])), _mm256_castps_si256(hi[g]), 1);
      p.q[b][g] = q;
      ws = _mm512_dpbusd_epi32(ws, ones, q);
    }
    p.wsum128[b] = _mm512_slli_epi32(ws, 7);
    p.d[b] = _mm512_load_ps(d);
  }
}

// acc[16 t + r] += blocks [0, nb) of the panel times activation rows t < T from block b0: yu + t * n
// holds row t's int8 values offset by 128 (unsigned), d[t] its scales.
template <int T>
void q8_tile(const Q8Panel& p, int64_t nb, const uint8_t* yu, int64_t n, const float* const* d, int64_t b0, float* acc) {
  __m512 f[T];
  for (int t = 0; t < T; ++t) f[t] = _mm512_loadu_ps(acc + 16 * t);
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const uint8_t* y = yu + t * n + QK8_0 * (b0 + b);
      __m512i s = _mm512_sub_epi32(_mm512_setzero_si512(), p.wsum128[b]);
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        int32_t y4;
        memcpy(&y4, y + 4 * g, 4);
        s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(y4), p.q[b][g]);
      }
      f[t] = _mm512_fmadd_ps(_mm512_mul_ps(p.d[b], _mm512_set1_ps(d[t][b0 + b])), _mm512_cvtepi32_ps(s), f[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(acc + 16 * t, f[t]);
}

using Q8TileFn = void (*)(const Q8Panel&, int64_t, const uint8_t*, int64_t, const float* const*, int64_t, float*);
constexpr Q8TileFn kQ8Tiles[Q8_TOKENS + 1] = {nullptr, q8_tile<1>, q8_tile<2>, q8_tile<3>, q8_tile<4>,
                                               q8_tile<5>, q8_tile<6>, q8_tile<7>, q8_tile<8>};

void gemm_q8_0_vnni(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                    float* out, int64_t ldo) {
  constexpr int kMaxTokens = 128;  // matmul.cpp's token tile: callers give at most this many at once
  const int64_t nb = n / QK8_0;
  static thread_local Q8Panel p;  // 20 KB: off the stack
  alignas(64) float acc[kMaxTokens][Q8_PANEL];
  const float* d[kMaxTokens];
  // The activations + 128, once per call (per thread's piece of rows): XOR-ing each broadcast in the
  // tile instead ran 7-20 % slower (one process, both builds interleaved, 32 tokens).
  static thread_local std::vector<uint8_t> yu_buf;
  yu_buf.resize((size_t)kMaxTokens * n);
  uint8_t* yu = yu_buf.data();
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  for (int t0 = 0; t0 < ntok; t0 += kMaxTokens) {
    const int nt = ntok - t0 < kMaxTokens ? ntok - t0 : kMaxTokens;
    for (int t = 0; t < nt; ++t) {
      const Q8ActRow a = q8act_row((const uint8_t*)xq + (size_t)(t0 + t) * ldxq, n);
      d[t] = a.d;
      for (int64_t i = 0; i < n; i += 64)  // n % 32 == 0: the last 32 may go as half a vector
        _mm512_mask_storeu_epi8(yu + t * n + i, n - i >= 64 ? ~0ull : 0xFFFFFFFFull,
                                _mm512_xor_si512(_mm512_maskz_loadu_epi8(n - i >= 64 ? ~0ull : 0xFFFFFFFFull, a.qs + i), flip));
    }
    for (int64_t r0 = 0; r0 < nrows; r0 += Q8_PANEL) {
      const int prow = (int)(nrows - r0 < Q8_PANEL ? nrows - r0 : Q8_PANEL);
      memset(acc, 0, sizeof(float) * Q8_PANEL * nt);
      for (int64_t b0 = 0; b0 < nb; b0 += Q8_BLOCKS) {
        const int64_t cnt = nb - b0 < Q8_BLOCKS ? nb - b0 : Q8_BLOCKS;
        q8_panel_prepare((const uint8_t*)w + (size_t)r0 * row_stride, row_stride, prow, b0, cnt, p);
        for (int t = 0; t < nt; t += Q8_TOKENS) {
          const int tt = nt - t < Q8_TOKENS ? nt - t : Q8_TOKENS;
          kQ8Tiles[tt](p, cnt, yu + t * n, n, d + t, b0, acc[t]);
        }
      }
      const __mmask16 m = (__mmask16)((1u << prow) - 1);
      for (int t = 0; t < nt; ++t) _mm512_mask_storeu_ps(out + (int64_t)(t0 + t) * ldo + r0, m, _mm512_load_ps(acc[t]));
    }
  }
}

}  // namespace
}  // namespace moescope::quant

MS_AVX512_END

namespace moescope::quant {
static QuantizeFn avx2_quantize_q8act() { return avx2_available() ? quantize_q8act_avx2 : nullptr; }

// Q8_0 on AVX-512 VNNI: row by row for 1-2 tokens, the tile from 3 (any number). At 2 tokens the two
// run within 10 % of each other (45-46 against 48-49 GFLOP/s, one process, interleaved); at 3 the
// tile leads.
static void dot_q8_0_avx512(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                     float* out, int64_t ldo) {
  if (ntok <= 2) return dot_each_row<block_q8_0, Q8ActRow, q8act_row, q8_0_row, QK8_0>(w, row_stride, nrows, xq, ldxq, n, ntok, out, ldo);
  gemm_q8_0_vnni(w, row_stride, nrows, xq, ldxq, n, ntok, out, ldo);
}

// The row-by-row dots are the faster kernels only up to 4 activation rows; beyond, the exact panels
// are (fast/exact time, one core, 1024 x 1024, AVX2: Q8_0 0.96 at 4 tokens, 1.20 at 6). The VNNI
// tile is faster at any number.
int64_t dot_q8act_max_tokens(DotQ8ActFn dot) { return dot == dot_q8_0_avx512 ? INT64_MAX : 4; }

DotQ8ActFn avx2_dot_q8act(uint32_t type_id) {
  if (!avx2_available()) return nullptr;
  switch ((GgmlType)type_id) {
    case GgmlType::Q8_0: return avx512_available() ? dot_q8_0_avx512 : dot_each_row<block_q8_0, Q8ActRow, q8act_row, q8_0_row, QK8_0>;
    case GgmlType::Q4_0: return dot_each_row<block_q4_0, Q8ActRow, q8act_row, q4_0_row, QK4_0>;
    default: return nullptr;
  }
}
}  // namespace moescope::quant

#else

namespace moescope::quant {
static QuantizeFn avx2_quantize_q8act() { return nullptr; }
DotQ8ActFn avx2_dot_q8act(uint32_t) { return nullptr; }
int64_t dot_q8act_max_tokens(DotQ8ActFn) { return 4; }
}  // namespace moescope::quant

#endif

namespace moescope {
void quantize_q8act(const float* x, int64_t n, void* dst) {
  static const quant::QuantizeFn impl = quant::avx2_quantize_q8act() ? quant::avx2_quantize_q8act() : quant::quantize_q8act_portable;
  impl(x, n, dst);
}
}  // namespace moescope
