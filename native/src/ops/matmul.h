// y = W x for T activation rows, on the thread pool, for every weight type and both layouts of Mat
// (model/llama4_weights.h). Never materialises dequantised weights: out-major matrices use the type's
// fused dot kernel, in-major (HF fused experts, float types only) stream input rows as axpy.
#pragma once
#include <cstdint>

#include "model/llama4_weights.h"
#include "ops/threadpool.h"

namespace moescope {

enum class Precision {
  Exact,  // float32 activations, float32 accumulation: the default, and always for routers
  Fast,   // opt-in: activations rounded to int8 per 32 values (llama.cpp's way), ~1e-3 relative error,
          // in products of at most 4 activation rows (decode); larger ones are faster exact (matmul.cpp)
};

// x: [T, ldx] (first W.n_in used), y: [T, ldy] (first W.n_out written). Precision::Fast applies to
// quantized out-major weights only; float weights and in-major layouts stay exact.
void op_matmul(ThreadPool& pool, const Mat& W, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy,
               Precision precision = Precision::Exact);

}  // namespace moescope
