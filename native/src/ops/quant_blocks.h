// Internal to the weight-type kernels (quant.cpp, quant_avx2.cpp, the test binding): ggml's block
// layouts, bit-exact, and the scalar helpers both kernel families share. The layouts are ggml's
// (ggml-common.h); a GGUF file's tensor bytes are arrays of these structs, so sizes are asserted.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "ops/quant.h"

namespace moescope::quant {

constexpr int QK8_0 = 32;
constexpr int QK4_0 = 32;
constexpr int QK_K = 256;  // super-block of the K-quants
constexpr int K_SCALE_SIZE = 12;

// ggml stores the half-precision scales as raw IEEE binary16 bits.
using f16_bits = uint16_t;

struct block_q8_0 {
  f16_bits d;          // scale
  int8_t qs[QK8_0];    // value = qs[i] * d
};
struct block_q4_0 {
  f16_bits d;              // scale
  uint8_t qs[QK4_0 / 2];   // low nibble: element j, high nibble: element j + 16; value = (q - 8) * d
};
struct block_q4_K {
  f16_bits d;                     // super-block scale of the 6-bit sub-block scales
  f16_bits dmin;                  // super-block scale of the 6-bit sub-block mins
  uint8_t scales[K_SCALE_SIZE];   // 8 (scale, min) pairs, 6 bits each (get_scale_min_k4)
  uint8_t qs[QK_K / 2];           // 4-bit quants; 64 elements per 32 bytes (low nibbles, then high)
};
struct block_q5_K {
  f16_bits d;
  f16_bits dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];   // fifth bit: bit j of qh[l] belongs to sub-block j, element l
  uint8_t qs[QK_K / 2];   // low 4 bits, laid out as in Q4_K
};
struct block_q6_K {
  uint8_t ql[QK_K / 2];     // low 4 bits
  uint8_t qh[QK_K / 4];     // high 2 bits
  int8_t scales[QK_K / 16]; // one signed 8-bit scale per 16 elements
  f16_bits d;               // super-block scale
};
// A fast-mode activation row of n values (n % 32 == 0) as quantize_q8act writes it for Q8_0 and
// Q4_0 weights (moescope's own layout, never in a file): the int8 values, then per 32-block the
// float scale d, then d * (the sum of the block's 32 values), which Q4_0's -8 offset needs; kernels
// load those as vectors instead of recomputing them for every weight row.
struct Q8ActRow {
  const int8_t* qs;   // n values; value i = qs[i] * d[i / 32]
  const float* d;     // n / 32 scales
  const float* s32;   // n / 32: d * sum of the block's qs
};
inline Q8ActRow q8act_row(const void* p, int64_t n) {
  const int8_t* qs = (const int8_t*)p;
  const float* d = (const float*)(qs + n);
  return {qs, d, d + n / 32};
}
// The fast mode's activation row for K-quant weights (n % 256 == 0) as quantize_q8k writes it: one
// scale per 256 values, as llama.cpp's Q8_K, and the integer sum of every 16 (the weights' offset terms).
struct Q8KRow {
  const int8_t* qs;      // n values; value i = qs[i] * d[i / 256]
  const float* d;        // n / 256
  const int16_t* bsums;  // n / 16
};
struct Q8KRowOut {
  int8_t* qs;
  float* d;
  int16_t* bsums;
};
inline Q8KRowOut q8k_row_out(void* p, int64_t n) {
  int8_t* qs = (int8_t*)p;
  float* d = (float*)(qs + n);
  return {qs, d, (int16_t*)(d + n / 256)};
}
inline Q8KRow q8k_row(const void* p, int64_t n) {
  const Q8KRowOut o = q8k_row_out(const_cast<void*>(p), n);
  return {o.qs, o.d, o.bsums};
}
// Activations to int8, as both fast-mode formats round them: scale amax/127 (a float division) over
// the span the scale covers, values rounded to nearest even (lrintf in the default mode; the AVX2
// twins' cvtps gives the same bytes). int8_scale returns the scale and its inverse (0 for an all-zero
// span); round_int8 writes n values (n % 16 == 0) and the integer sum of every 16 of them.
inline float int8_scale(float amax, float* inv) {
  const float d = amax / 127.0f;
  *inv = d != 0.0f ? 1.0f / d : 0.0f;
  return d;
}
inline void round_int8(const float* x, int n, float inv, int8_t* qs, int* sums16) {
  for (int h = 0; h < n / 16; ++h) {
    int sum = 0;
    for (int j = 16 * h; j < 16 * h + 16; ++j) {
      const int q = (int)std::lrintf(x[j] * inv);
      qs[j] = (int8_t)q;
      sum += q;
    }
    sums16[h] = sum;
  }
}
using QuantizeFn = void (*)(const float* x, int64_t n, void* dst);  // quantize_q8act, quantize_q8k

static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must match ggml");
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must match ggml");
static_assert(sizeof(block_q4_K) == 144, "block_q4_K must match ggml");
static_assert(sizeof(block_q5_K) == 176, "block_q5_K must match ggml");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K must match ggml");

inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// binary16 -> float32, exact for every input (normals, subnormals, inf, NaN), without F16C.
// The two magic constants rebias the exponent with float arithmetic (Maratea's FP16 method, the
// one ggml uses), so no branch on the exponent is needed except the subnormal select.
inline float fp16_to_fp32(f16_bits h) {
  const uint32_t w = (uint32_t)h << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t bits = two_w < (1u << 27) ? f32_to_bits(denormalized) : f32_to_bits(normalized);
  return f32_from_bits(sign | bits);
}

// float32 -> binary16, round to nearest even, overflow to inf, NaN stays NaN (same bits as F16C).
inline f16_bits fp32_to_fp16(float f) {
  float base = (__builtin_fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = f32_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = f32_to_bits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return (f16_bits)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float bf16_to_fp32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

// float32 -> bfloat16 as ggml rounds it: nearest even, NaN kept quiet.
inline uint16_t fp32_to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

// The 6-bit (scale, min) of sub-block j (0..7) of a Q4_K / Q5_K super-block (ggml's
// get_scale_min_k4): sub-blocks 0-3 keep them in the low 6 bits of bytes 0-3 / 4-7; sub-blocks 4-7
// split them between the nibbles of bytes 8-11 and the top 2 bits of bytes 0-7.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// Decode GEMVs stream their weights from memory once. The hardware prefetcher alone keeps too few
// lines in flight for one core: the exact Q8_0 GEMV read 9-10 GB/s on one core, and 7-9 GB/s per
// core with both cores streaming; asking for the lines 2 KiB ahead gave 11-12 GB/s per core in
// both cases (tests/ops/quant-bench.js, and a standalone loop for the two-core case), and with both
// cores decoding the whole model 4 KiB did better still (tests/model/ab-builds.js, scout-mid: fast
// Q4_K_M 152.4 -> 157.1 and 153.7 -> 157.3 tok/s, exact Q8_0 94.1 -> 101.5). A prefetch never
// faults, so reading ahead past the last row is harmless.
// The prefetches are written out, one per line of BYTES, not looped: GCC 12 deletes a loop of
// nothing but prefetches in some inlining contexts, and the Q4_K/Q5_K GEMVs of both modes had
// compiled to no prefetch at all (objdump showed none) while Q6_K's loop survived.
constexpr size_t PREFETCH_AHEAD = 4096;
template <size_t... LINE>
inline void prefetch_lines(const char* p, std::index_sequence<LINE...>) {
  (__builtin_prefetch(p + 64 * LINE), ...);
}
template <size_t BYTES>
inline void prefetch_ahead(const void* p) {
  prefetch_lines((const char*)p + PREFETCH_AHEAD, std::make_index_sequence<(BYTES + 63) / 64>{});
}

// Q4_K and Q5_K share their kernels; FIVE_BITS picks the block.
template <bool FIVE_BITS>
using kquant_block = std::conditional_t<FIVE_BITS, block_q5_K, block_q4_K>;
inline const uint8_t* kquant_qh(const block_q4_K&) { return nullptr; }  // no fifth bits
inline const uint8_t* kquant_qh(const block_q5_K& b) { return b.qh; }

// The portable fast-mode kernels (the twins the tests hold the AVX2 ones to): each weight row of
// type TYPE decoded 256 weights at a time by the registry's exact decoder (to_float decodes whole
// rows: a span from element i0 is the row starting i0/block blocks later), times each dequantised
// activation row (VIEW: value i = qs[i] * d[i / SPAN]), float32 sums in 8 lanes.
template <uint32_t TYPE, class View, View (*VIEW)(const void*, int64_t), int SPAN>
void dot_int8_portable(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                       float* out, int64_t ldo) {
  const TypeTraits* tt = type_traits(TYPE);
  float buf[QK_K];
  for (int64_t r = 0; r < nrows; ++r) {
    const uint8_t* wr = (const uint8_t*)w + (size_t)r * row_stride;
    for (int t = 0; t < ntok; ++t) {
      const View a = VIEW((const uint8_t*)xq + (size_t)t * ldxq, n);
      float acc[8] = {};
      for (int64_t i0 = 0; i0 < n; i0 += QK_K) {
        const int64_t cnt = n - i0 < QK_K ? n - i0 : QK_K;
        tt->to_float(wr + (size_t)(i0 / tt->block_size) * tt->type_size, buf, cnt);
        for (int64_t i = 0; i < cnt; ++i) acc[i & 7] += buf[i] * (a.qs[i0 + i] * a.d[(i0 + i) / SPAN]);
      }
      out[(int64_t)t * ldo + r] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
  }
}

// Kernels by type id, for callers that must pick a family explicitly (tests compare the AVX2 and
// the portable dot on the same data). nullptr where the type has no kernel in that family.
using DotFn = void (*)(const void* w_row, const float* x, int64_t ldx, int64_t n, int ntok, float* out,
                       int64_t ldo);
using DotRowsFn = void (*)(const void* w, size_t row_stride, int64_t nrows, const float* x, int64_t ldx, int64_t n,
                          int ntok, float* out, int64_t ldo);
DotFn scalar_dot(uint32_t type_id);
DotRowsFn scalar_dot_rows(uint32_t type_id);
DotFn avx2_dot(uint32_t type_id);  // nullptr on non-x86 builds and on CPUs without AVX2+FMA+F16C
DotRowsFn avx2_dot_rows(uint32_t type_id);
using DotQ8ActFn = void (*)(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n,
                           int ntok, float* out, int64_t ldo);
DotQ8ActFn scalar_dot_q8act(uint32_t type_id);  // quant_q8act.cpp; Q8_0 and Q4_0
DotQ8ActFn scalar_gemm_q8k(uint32_t type_id);   // quant_q8k.cpp; the K-quants
// The portable activation quantisers, which quantize_q8act / quantize_q8k use where AVX2 is missing
// (named here so that tests on an AVX2 machine can check them against the AVX2 ones).
void quantize_q8act_portable(const float* x, int64_t n, void* dst);  // quant_q8act.cpp
void quantize_q8k_portable(const float* x, int64_t n, void* dst);    // quant_q8k.cpp
DotQ8ActFn avx2_dot_q8act(uint32_t type_id);
int64_t dot_q8act_max_tokens(DotQ8ActFn dot);  // quant_q8act.cpp: TypeTraits::dot_q8act_max_tokens
DotQ8ActFn avx2_gemm_q8k(uint32_t type_id);  // quant_q8k.cpp; K-quants only
bool avx2_available();
// quant_avx512.cpp: whether the CPU has AVX-512 F/BW/VL/DQ (and AVX2), and the exact prefill panels'
// register tile in 512-bit registers: acc[16 t + r] += sum over k < cnt of pk[16 k + r] * x[t * ldx + k]
// for t < nt, the same roundings as the AVX2 tile (one FMA chain per output over the chunk).
bool avx512_available();
void panel_tiles_avx512(const float* pk, int64_t cnt, const float* x, int64_t ldx, int nt, float* acc);
// The same for two panels at once (pa into acc_a, pb into acc_b), the same roundings.
void panel_pair_tiles_avx512(const float* pa, const float* pb, int64_t cnt, const float* x, int64_t ldx, int nt, float* acc_a,
                             float* acc_b);
// The prefill panels' weights decoded straight into k-major order: pk[16 k + r] = weight i0 + k of
// row r (row r at w + r * stride; rows >= prow give zeros), k < 256, i0 % 256 == 0; the same floats
// as the AVX2 decoders. nullptr for types without one (they decode row by row and transpose).
using PanelDecodeFn = void (*)(const uint8_t* w, size_t stride, int prow, int64_t i0, float* pk);
PanelDecodeFn panel_decode_avx512(uint32_t type_id);
// And the exact decode GEMVs of one row of nb blocks (quant_avx2.cpp's, in 16 lanes).
float gemv_q8_0_avx512(const void* w, int64_t nb, const float* x);
float gemv_q4_0_avx512(const void* w, int64_t nb, const float* x);
// quant_x24.cpp, only where avx512_available(): the K-quants' exact decode GEMVs, in integers
// (TypeTraits::gemv_x24; nullptr for other types), and dot_rows_x24, the same from float x: out[r] =
// row r . x (false, and nothing done, for other types).
using GemvX24Fn = void (*)(const void* w, size_t row_stride, int64_t nrows, const void* x24, int64_t n, float* out);
GemvX24Fn avx512_gemv_x24(uint32_t type_id);
bool dot_rows_x24(uint32_t type_id, const void* w, size_t stride, int64_t nrows, const float* x, int64_t n, float* out);

}  // namespace moescope::quant
