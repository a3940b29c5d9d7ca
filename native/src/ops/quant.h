// Weight types: the registry of every tensor element type moescope reads (ggml's numbering, as in
// GGUF files), with an exact dequantiser and fused dot kernels that never materialise dequantised
// weights. Activations are float32 (the K-quants' decode on AVX-512 CPUs holds each 4 of them as a
// 24-bit integer under a shared exponent, float32's precision: gemv_x24); accumulation is float32.
#pragma once
#include <cstddef>
#include <cstdint>

namespace moescope {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct TypeTraits {
  const char* name;        // "Q4_K"
  int64_t block_size;      // elements per block (1 for F32/F16/BF16)
  size_t type_size;        // bytes per block
  bool supported;          // false: known to GGUF, but moescope cannot compute with it
  // Dequantise n elements (n % block_size == 0) of one row.
  void (*to_float)(const void* src, float* dst, int64_t n);
  // Fused dot products of ONE weight row (n elements, n % block_size == 0) with `ntok` float32
  // activation rows x[t*ldx .. t*ldx+n), writing out[t*ldo]. ntok >= 1; the weight row is decoded
  // once per block and reused across the ntok rows (prefill), ntok == 1 is the decode GEMV.
  void (*dot)(const void* w_row, const float* x, int64_t ldx, int64_t n, int ntok, float* out, int64_t ldo);
  // Quantise n floats into the format (used by `moescope synth` and tests); nullptr if unsupported.
  void (*from_float)(const float* src, void* dst, int64_t n);
  // `dot` for nrows consecutive weight rows (row r at (const char*)w + r * row_stride bytes), writing
  // out[t*ldo + r]. Same numbers as calling `dot` per row (bit for bit), but for ntok > 1 it works
  // on tiles of 4 rows, so each activation vector loaded from cache feeds 4 rows: prefer it for
  // prefill (give each thread a group of rows, a multiple of 4 where possible).
  void (*dot_rows)(const void* w, size_t row_stride, int64_t nrows, const float* x, int64_t ldx, int64_t n, int ntok,
                   float* out, int64_t ldo);
  // OPT-IN FAST MODE, NOT EXACT (about 1e-3 relative error per product, llama.cpp's numerics):
  // `dot_rows` against activation rows rounded to int8, computed in integers. Each type has one:
  // dot_q8act for Q8_0 and Q4_0, against rows from quantize_q8act (one scale per 32; row t at
  // (const char*)xq + t*ldxq; n % 32 == 0); gemm_q8k for the K-quants, against rows from
  // quantize_q8k (one scale per 256), for any number of rows (quant_q8k.cpp; AVX2 only: elsewhere
  // the K-quants' fast mode is exact). nullptr otherwise.
  void (*dot_q8act)(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                    float* out, int64_t ldo);
  void (*gemm_q8k)(const void* w, size_t row_stride, int64_t nrows, const void* xq, size_t ldxq, int64_t n, int ntok,
                   float* out, int64_t ldo);
  // Up to how many activation rows dot_q8act is faster than the exact kernels (ops/matmul.cpp uses
  // them beyond): 4 for the row-by-row dots, no limit for AVX-512's Q8_0 tile (quant_q8act.cpp).
  int64_t dot_q8act_max_tokens;
  // Exact decode of the K-quants where the CPU has AVX-512 with VNNI: `dot_rows` for one activation
  // row, in integers, against x converted once by convert_x24 (quant_x24.cpp: exact to float32's
  // precision), so that the rows of every thread share one conversion. dot_rows with ntok == 1 gives
  // the same bits (it converts x itself). nullptr elsewhere and for other types.
  void (*gemv_x24)(const void* w, size_t row_stride, int64_t nrows, const void* x24, int64_t n, float* out);
};

// Fast mode activations for dot_q8act: n floats (n % 32 == 0) -> q8act_row_bytes(n) bytes: int8
// values with a float scale and a float sum per 32 (layout: quant_blocks.h, Q8ActRow). Quantise
// each activation row once, then call dot_q8act for every weight row.
inline size_t q8act_row_bytes(int64_t n) { return (size_t)n + (size_t)(n / 32) * 8; }
void quantize_q8act(const float* x, int64_t n, void* dst);
// The same for gemm_q8k: n % 256 == 0 floats -> int8 values with one float scale per 256 and the
// int16 sum of every 16 (quant_blocks.h, Q8KRow).
inline size_t q8k_row_bytes(int64_t n) { return (size_t)n + (size_t)(n / 256) * 4 + (size_t)(n / 16) * 2; }
void quantize_q8k(const float* x, int64_t n, void* dst);

// gemv_x24's activations: n floats (n % 256 == 0) -> x24_bytes(n) bytes. Only where a type has
// gemv_x24.
size_t x24_bytes(int64_t n);
void convert_x24(const float* x, int64_t n, void* dst);

// nullptr for an id GGUF does not define.
const TypeTraits* type_traits(uint32_t type_id);
inline const TypeTraits* type_traits(GgmlType t) { return type_traits((uint32_t)t); }
// Bytes of a row of n elements (n % block_size == 0).
inline size_t row_bytes(const TypeTraits& tt, int64_t n) { return (size_t)(n / tt.block_size) * tt.type_size; }

// Which kernel family the fused dots use ("avx512+avx2+fma", "avx2+fma", "scalar"); decided once at
// start-up (MOESCOPE_NO_AVX512=1 keeps AVX2 on an AVX-512 CPU).
const char* dot_kernel_name();

}  // namespace moescope
