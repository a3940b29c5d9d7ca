// y = W x for T activation rows, on the thread pool, for every weight type and both layouts of Mat
// (model/llama4_weights.h). Never materialises dequantised weights: out-major matrices use the type's
// fused dot kernel, in-major (HF fused experts, float types only) stream input rows as axpy.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "model/llama4_weights.h"
#include "ops/threadpool.h"

namespace moescope {

enum class Precision {
  Exact,  // float32 activations (or float32's precision: quant_x24.cpp), float32 accumulation: the
          // default, and always for routers
  Fast,   // opt-in: activations rounded to int8 as llama.cpp rounds them for the weight type (per 256
          // values for the K-quants, per 32 for Q8_0 and Q4_0), ~1e-3 relative error, in the products
          // where that is the faster kernel (matmul.cpp's kernel_family)
};

// x: [T, ldx] (first W.n_in used), y: [T, ldy] (first W.n_out written). Precision::Fast applies to
// quantized out-major weights only; float weights and in-major layouts stay exact.
void op_matmul(ThreadPool& pool, const Mat& W, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy,
               Precision precision = Precision::Exact);

// Several matrices applied to the same x (q, k and v; SwiGLU's gate and up): y_i = W_i x, the same
// numbers as op_matmul on each, in one pass over the thread pool.
struct MatOut {
  const Mat* W;
  float* y;
  int64_t ldy;
};
constexpr int kMaxMatOuts = 4;
void op_matmul_group(ThreadPool& pool, std::initializer_list<MatOut> outs, const float* x, int64_t ldx, int64_t T,
                     Precision precision = Precision::Exact);

}  // namespace moescope
