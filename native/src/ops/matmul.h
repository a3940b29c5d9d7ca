// y = W x for T activation rows, on the thread pool, for every weight type and both layouts of Mat
// (model/llama4_weights.h). Never materialises dequantised weights: out-major matrices use the type's
// fused dot kernel, in-major (HF fused experts, float types only) stream input rows as axpy.
#pragma once
#include <cstdint>

#include "model/llama4_weights.h"
#include "ops/threadpool.h"

namespace moescope {

// x: [T, ldx] (first W.n_in used), y: [T, ldy] (first W.n_out written).
void op_matmul(ThreadPool& pool, const Mat& W, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy);

}  // namespace moescope
