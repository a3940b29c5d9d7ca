// The weight-type registry and its portable kernels. For every ggml type id GGUF defines, the
// table gives name, block size and bytes per block (so the GGUF reader can size and name any
// tensor); for the types moescope computes with (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) it
// also gives:
//   to_float   exact dequantisation, the same float operations in the same order as ggml's
//              dequantize_row_* (the reference every other path is checked against);
//   dot        fused dot of one weight row with ntok float32 activation rows: each block is
//              decoded once into a block-sized scratch and used for all ntok rows; float32
//              accumulation in 8 lanes (like the SIMD kernels), never a whole dequantised row;
//   dot_rows   the same for several consecutive rows (the AVX2 one tiles 4 rows for prefill);
//   dot_q8act  the opt-in, inexact fast mode with int8 activations for Q8_0 and Q4_0 (quant_q8act.cpp);
//   gemm_q8k   the same for the K-quants, activations per 256 (quant_q8k.cpp);
//   from_float a quantiser producing valid blocks (used by `moescope synth` and tests; simpler
//              than llama.cpp's search-based quantisers, not bit-identical to them).
// The dot in the table is the AVX2/FMA one (quant_avx2.cpp) when the CPU has it, else the
// portable one here; where the CPU also has AVX-512 (and VNNI) those kernels hand their decode
// GEMVs and prefill tiles to quant_avx512.cpp's (and the fast mode's to the VNNI tiles). The choice
// is made once, when the table is first used.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "ops/quant.h"
#include "ops/quant_blocks.h"

namespace moescope {
namespace quant {
namespace {

// ---- span decoders: elements [i0, i0 + cnt) of a row -> float; i0, cnt multiples of the block ----

void decode_f32(const void* row, int64_t i0, int64_t cnt, float* dst) {
  std::memcpy(dst, (const float*)row + i0, (size_t)cnt * sizeof(float));
}

void decode_f16(const void* row, int64_t i0, int64_t cnt, float* dst) {
  const f16_bits* src = (const f16_bits*)row + i0;
  for (int64_t i = 0; i < cnt; ++i) dst[i] = fp16_to_fp32(src[i]);
}

void decode_bf16(const void* row, int64_t i0, int64_t cnt, float* dst) {
  const uint16_t* src = (const uint16_t*)row + i0;
  for (int64_t i = 0; i < cnt; ++i) dst[i] = bf16_to_fp32(src[i]);
}

void decode_q8_0(const void* row, int64_t i0, int64_t cnt, float* dst) {
  const block_q8_0* b = (const block_q8_0*)row + i0 / QK8_0;
  for (int64_t k = 0; k < cnt / QK8_0; ++k, ++b, dst += QK8_0) {
    const float d = fp16_to_fp32(b->d);
    for (int j = 0; j < QK8_0; ++j) dst[j] = b->qs[j] * d;
  }
}

void decode_q4_0(const void* row, int64_t i0, int64_t cnt, float* dst) {
  const block_q4_0* b = (const block_q4_0*)row + i0 / QK4_0;
  for (int64_t k = 0; k < cnt / QK4_0; ++k, ++b, dst += QK4_0) {
    const float d = fp16_to_fp32(b->d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      dst[j] = ((b->qs[j] & 0x0F) - 8) * d;
      dst[j + QK4_0 / 2] = ((b->qs[j] >> 4) - 8) * d;
    }
  }
}

void decode_q4_K(const void* row, int64_t i0, int64_t cnt, float* y) {
  const block_q4_K* b = (const block_q4_K*)row + i0 / QK_K;
  for (int64_t k = 0; k < cnt / QK_K; ++k, ++b) {
    const float d = fp16_to_fp32(b->d);
    const float min = fp16_to_fp32(b->dmin);
    const uint8_t* q = b->qs;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
      uint8_t sc, m;
      get_scale_min_k4(is + 0, b->scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      get_scale_min_k4(is + 1, b->scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void decode_q5_K(const void* row, int64_t i0, int64_t cnt, float* y) {
  const block_q5_K* b = (const block_q5_K*)row + i0 / QK_K;
  for (int64_t k = 0; k < cnt / QK_K; ++k, ++b) {
    const float d = fp16_to_fp32(b->d);
    const float min = fp16_to_fp32(b->dmin);
    const uint8_t* ql = b->qs;
    const uint8_t* qh = b->qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      get_scale_min_k4(is + 0, b->scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      get_scale_min_k4(is + 1, b->scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

void decode_q6_K(const void* row, int64_t i0, int64_t cnt, float* y) {
  const block_q6_K* b = (const block_q6_K*)row + i0 / QK_K;
  for (int64_t k = 0; k < cnt / QK_K; ++k, ++b) {
    const float d = fp16_to_fp32(b->d);
    const uint8_t* ql = b->ql;
    const uint8_t* qh = b->qh;
    const int8_t* sc = b->scales;
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

using SpanDecoder = void (*)(const void* row, int64_t i0, int64_t cnt, float* dst);

template <SpanDecoder DECODE>
void to_float_span(const void* src, float* dst, int64_t n) { DECODE(src, 0, n, dst); }

// The portable fused dot: decode 256 elements at a time (whole blocks) into a stack scratch, then
// multiply-add that scratch into every activation row. Tokens go in groups of 8 so each group's
// 8-lane accumulators stay small; the weight chunk is re-decoded once per group, which only the
// portable path pays.
template <SpanDecoder DECODE>
void dot_span(const void* w, const float* x, int64_t ldx, int64_t n, int ntok, float* out, int64_t ldo) {
  constexpr int CHUNK = 256;  // a multiple of every block size
  constexpr int TG = 8;
  float buf[CHUNK];
  for (int t0 = 0; t0 < ntok; t0 += TG) {
    const int nt = ntok - t0 < TG ? ntok - t0 : TG;
    float acc[TG][8] = {};
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
      const int64_t cnt = n - i0 < CHUNK ? n - i0 : CHUNK;
      DECODE(w, i0, cnt, buf);
      for (int t = 0; t < nt; ++t) {
        const float* xt = x + (int64_t)(t0 + t) * ldx + i0;
        for (int64_t i = 0; i < cnt; ++i) acc[t][i & 7] += buf[i] * xt[i];
      }
    }
    for (int t = 0; t < nt; ++t) {
      const float* a = acc[t];
      out[(int64_t)(t0 + t) * ldo] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    }
  }
}

// The portable kernels have no multi-row tile: rows one after the other.
template <SpanDecoder DECODE>
void dot_rows_span(const void* w, size_t stride, int64_t nrows, const float* x, int64_t ldx, int64_t n, int ntok,
                   float* out, int64_t ldo) {
  for (int64_t r = 0; r < nrows; ++r) dot_span<DECODE>((const uint8_t*)w + r * stride, x, ldx, n, ntok, out + r, ldo);
}

// ---- quantisers ----

void quantize_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, (size_t)n * sizeof(float)); }

void quantize_f16(const float* src, void* dst, int64_t n) {
  f16_bits* y = (f16_bits*)dst;
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

void quantize_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* y = (uint16_t*)dst;
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

// ggml's quantize_row_q8_0_ref: symmetric, the largest magnitude maps to ±127.
void quantize_q8_0(const float* x, void* dst, int64_t n) {
  block_q8_0* y = (block_q8_0*)dst;
  for (int64_t k = 0; k < n / QK8_0; ++k, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[k].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[k].qs[j] = (int8_t)std::roundf(x[j] * id);
  }
}

// ggml's quantize_row_q4_0_ref: the signed value of largest magnitude maps to -8.
void quantize_q4_0(const float* x, void* dst, int64_t n) {
  block_q4_0* y = (block_q4_0*)dst;
  for (int64_t k = 0; k < n / QK4_0; ++k, x += QK4_0) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK4_0; ++j) {
      if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[k].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int q0 = std::min(15, (int)(int8_t)(x[j] * id + 8.5f));
      const int q1 = std::min(15, (int)(int8_t)(x[j + QK4_0 / 2] * id + 8.5f));
      y[k].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

inline int nearest_int(float v) { return (int)std::lrintf(v); }
inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// Q4_K / Q5_K share their scale machinery: each 32-element sub-block gets an affine map
// value = scale*q - min with q in [0, qmax]; scales and mins are themselves 6-bit multiples of
// the super-block's d and dmin. Quants are computed against the *stored* (rounded) scales, so the
// rounding of the scales does not add up with the rounding of the quants.
void kquant_scales(const float* x, int qmax, uint8_t scales[K_SCALE_SIZE], f16_bits* d_out, f16_bits* dmin_out,
                   uint8_t L[QK_K]) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    float lo = x[32 * j], hi = x[32 * j];
    for (int l = 1; l < 32; ++l) { lo = std::fmin(lo, x[32 * j + l]); hi = std::fmax(hi, x[32 * j + l]); }
    if (lo > 0.0f) lo = 0.0f;  // ggml's mins are never positive: the map always reaches 0
    sub_scale[j] = (hi - lo) / qmax;
    sub_min[j] = -lo;
    max_scale = std::fmax(max_scale, sub_scale[j]);
    max_min = std::fmax(max_min, sub_min[j]);
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  std::memset(scales, 0, K_SCALE_SIZE);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = (uint8_t)clampi(nearest_int(inv_scale * sub_scale[j]), 0, 63);
    const uint8_t lm = (uint8_t)clampi(nearest_int(inv_min * sub_min[j]), 0, 63);
    if (j < 4) {
      scales[j] = ls;
      scales[j + 4] = lm;
    } else {
      scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
      scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
      scales[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
  *d_out = fp32_to_fp16(max_scale / 63.0f);
  *dmin_out = fp32_to_fp16(max_min / 63.0f);
  const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, scales, &sc, &m);
    const float ds = d * sc, dm = dmin * m;
    for (int l = 0; l < 32; ++l) {
      L[32 * j + l] = ds != 0.0f ? (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / ds), 0, qmax) : 0;
    }
  }
}

void quantize_q4_K(const float* x, void* dst, int64_t n) {
  block_q4_K* y = (block_q4_K*)dst;
  uint8_t L[QK_K];
  for (int64_t k = 0; k < n / QK_K; ++k, x += QK_K) {
    kquant_scales(x, 15, y[k].scales, &y[k].d, &y[k].dmin, L);
    uint8_t* q = y[k].qs;
    for (int j = 0; j < QK_K; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
  }
}

void quantize_q5_K(const float* x, void* dst, int64_t n) {
  block_q5_K* y = (block_q5_K*)dst;
  uint8_t L[QK_K];
  for (int64_t k = 0; k < n / QK_K; ++k, x += QK_K) {
    kquant_scales(x, 31, y[k].scales, &y[k].d, &y[k].dmin, L);
    std::memset(y[k].qh, 0, sizeof y[k].qh);
    uint8_t* ql = y[k].qs;
    uint8_t m1 = 1, m2 = 2;
    for (int j = 0; j < QK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (int l = 0; l < 32; ++l) {
        int l1 = L[j + l], l2 = L[j + l + 32];
        if (l1 > 15) { l1 -= 16; y[k].qh[l] |= m1; }
        if (l2 > 15) { l2 -= 16; y[k].qh[l] |= m2; }
        ql[l] = (uint8_t)(l1 | (l2 << 4));
      }
    }
  }
}

// Q6_K: 16 sub-blocks of 16 with a signed 8-bit scale each; quants in [-32, 31] (stored +32).
void quantize_q6_K(const float* x, void* dst, int64_t n) {
  block_q6_K* y = (block_q6_K*)dst;
  uint8_t L[QK_K];
  for (int64_t k = 0; k < n / QK_K; ++k, x += QK_K) {
    float sub_scale[16], max_scale = 0.0f;
    for (int i = 0; i < 16; ++i) {
      float amax = 0.0f;
      for (int l = 0; l < 16; ++l) amax = std::fmax(amax, std::fabs(x[16 * i + l]));
      sub_scale[i] = amax / 31.0f;
      max_scale = std::fmax(max_scale, sub_scale[i]);
    }
    y[k].d = fp32_to_fp16(max_scale / 127.0f);
    const float d = fp16_to_fp32(y[k].d);
    for (int i = 0; i < 16; ++i) {
      y[k].scales[i] = (int8_t)(d > 0.0f ? clampi(nearest_int(sub_scale[i] / d), -128, 127) : 0);
      const float ds = d * y[k].scales[i];
      for (int l = 0; l < 16; ++l) {
        L[16 * i + l] = (uint8_t)(32 + (ds != 0.0f ? clampi(nearest_int(x[16 * i + l] / ds), -32, 31) : 0));
      }
    }
    uint8_t* ql = y[k].ql;
    uint8_t* qh = y[k].qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l] = (uint8_t)(q1 | (q3 << 4));
        ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
        qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                          ((L[j + l + 96] >> 4) << 6));
      }
    }
  }
}

// ---- the registry ----

constexpr int kMaxTypeId = 40;

struct Registry {
  TypeTraits traits[kMaxTypeId];
  bool defined[kMaxTypeId];
  const char* kernel_name;
};

Registry build_registry() {
  Registry r{};
  auto known = [&](GgmlType t, const char* name, int64_t bs, size_t ts) {
    r.traits[(int)t] = TypeTraits{name, bs, ts, false, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr};
    r.defined[(int)t] = true;
  };
  auto unknown_id = [&](int id, const char* name, int64_t bs, size_t ts) {
    r.traits[id] = TypeTraits{name, bs, ts, false, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr};
    r.defined[id] = true;
  };
  // Types GGUF defines that moescope does not compute with: sizes only.
  known(GgmlType::Q4_1, "Q4_1", 32, 20);
  known(GgmlType::Q5_0, "Q5_0", 32, 22);
  known(GgmlType::Q5_1, "Q5_1", 32, 24);
  known(GgmlType::Q8_1, "Q8_1", 32, 36);
  known(GgmlType::Q2_K, "Q2_K", 256, 84);
  known(GgmlType::Q3_K, "Q3_K", 256, 110);
  known(GgmlType::Q8_K, "Q8_K", 256, 292);
  known(GgmlType::I8, "I8", 1, 1);
  known(GgmlType::I16, "I16", 1, 2);
  known(GgmlType::I32, "I32", 1, 4);
  known(GgmlType::I64, "I64", 1, 8);
  known(GgmlType::F64, "F64", 1, 8);
  // ggml's i-quants, ternary and MXFP4 ids (not in GgmlType: moescope only ever names them).
  unknown_id(16, "IQ2_XXS", 256, 66);
  unknown_id(17, "IQ2_XS", 256, 74);
  unknown_id(18, "IQ3_XXS", 256, 98);
  unknown_id(19, "IQ1_S", 256, 50);
  unknown_id(20, "IQ4_NL", 32, 18);
  unknown_id(21, "IQ3_S", 256, 110);
  unknown_id(22, "IQ2_S", 256, 82);
  unknown_id(23, "IQ4_XS", 256, 136);
  unknown_id(29, "IQ1_M", 256, 56);
  unknown_id(34, "TQ1_0", 256, 54);
  unknown_id(35, "TQ2_0", 256, 66);
  unknown_id(39, "MXFP4", 32, 17);

  const bool simd = avx2_available();
  r.kernel_name = !simd ? "scalar" : avx512_available() ? "avx512+avx2+fma" : "avx2+fma";
  auto full = [&](GgmlType t, const char* name, int64_t bs, size_t ts, void (*to_float)(const void*, float*, int64_t),
                  DotFn dot_portable, DotRowsFn dot_rows_portable, void (*from_float)(const float*, void*, int64_t)) {
    DotFn dot = simd && avx2_dot((uint32_t)t) ? avx2_dot((uint32_t)t) : dot_portable;
    DotRowsFn dot_rows = simd && avx2_dot_rows((uint32_t)t) ? avx2_dot_rows((uint32_t)t) : dot_rows_portable;
    DotQ8ActFn q8 = simd && avx2_dot_q8act((uint32_t)t) ? avx2_dot_q8act((uint32_t)t) : scalar_dot_q8act((uint32_t)t);
    // No portable gemm_q8k here: it would dequantise every block once per token, slower than the
    // exact kernels, so without AVX2 the K-quants' fast mode computes exactly (its twin is for tests).
    DotQ8ActFn gemm = simd ? avx2_gemm_q8k((uint32_t)t) : nullptr;
    const int64_t q8_tokens = q8 ? dot_q8act_max_tokens(q8) : 0;
    const GemvX24Fn x24 = simd && avx512_available() ? avx512_gemv_x24((uint32_t)t) : nullptr;
    r.traits[(int)t] = TypeTraits{name, bs, ts, true, to_float, dot, from_float, dot_rows, q8, gemm, q8_tokens, x24};
    r.defined[(int)t] = true;
  };
#define MOESCOPE_FULL_TYPE(T, BS, TS, dec, quantize) \
  full(GgmlType::T, #T, BS, TS, to_float_span<dec>, dot_span<dec>, dot_rows_span<dec>, quantize)
  MOESCOPE_FULL_TYPE(F32, 1, 4, decode_f32, quantize_f32);
  MOESCOPE_FULL_TYPE(F16, 1, 2, decode_f16, quantize_f16);
  MOESCOPE_FULL_TYPE(BF16, 1, 2, decode_bf16, quantize_bf16);
  MOESCOPE_FULL_TYPE(Q8_0, QK8_0, sizeof(block_q8_0), decode_q8_0, quantize_q8_0);
  MOESCOPE_FULL_TYPE(Q4_0, QK4_0, sizeof(block_q4_0), decode_q4_0, quantize_q4_0);
  MOESCOPE_FULL_TYPE(Q4_K, QK_K, sizeof(block_q4_K), decode_q4_K, quantize_q4_K);
  MOESCOPE_FULL_TYPE(Q5_K, QK_K, sizeof(block_q5_K), decode_q5_K, quantize_q5_K);
  MOESCOPE_FULL_TYPE(Q6_K, QK_K, sizeof(block_q6_K), decode_q6_K, quantize_q6_K);
#undef MOESCOPE_FULL_TYPE
  return r;
}

const Registry& registry() {
  static const Registry r = build_registry();  // thread-safe one-time init (C++11 magic static)
  return r;
}

}  // namespace

DotFn scalar_dot(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::F32: return dot_span<decode_f32>;
    case GgmlType::F16: return dot_span<decode_f16>;
    case GgmlType::BF16: return dot_span<decode_bf16>;
    case GgmlType::Q8_0: return dot_span<decode_q8_0>;
    case GgmlType::Q4_0: return dot_span<decode_q4_0>;
    case GgmlType::Q4_K: return dot_span<decode_q4_K>;
    case GgmlType::Q5_K: return dot_span<decode_q5_K>;
    case GgmlType::Q6_K: return dot_span<decode_q6_K>;
    default: return nullptr;
  }
}

DotRowsFn scalar_dot_rows(uint32_t type_id) {
  switch ((GgmlType)type_id) {
    case GgmlType::F32: return dot_rows_span<decode_f32>;
    case GgmlType::F16: return dot_rows_span<decode_f16>;
    case GgmlType::BF16: return dot_rows_span<decode_bf16>;
    case GgmlType::Q8_0: return dot_rows_span<decode_q8_0>;
    case GgmlType::Q4_0: return dot_rows_span<decode_q4_0>;
    case GgmlType::Q4_K: return dot_rows_span<decode_q4_K>;
    case GgmlType::Q5_K: return dot_rows_span<decode_q5_K>;
    case GgmlType::Q6_K: return dot_rows_span<decode_q6_K>;
    default: return nullptr;
  }
}

}  // namespace quant

const TypeTraits* type_traits(uint32_t type_id) {
  const quant::Registry& r = quant::registry();
  if (type_id >= (uint32_t)quant::kMaxTypeId || !r.defined[type_id]) return nullptr;
  return &r.traits[type_id];
}

const char* dot_kernel_name() { return quant::registry().kernel_name; }

}  // namespace moescope
