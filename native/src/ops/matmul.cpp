#include "ops/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "ops/quant.h"

namespace moescope {

namespace {

// Tokens per weight pass: the weight block is decoded once per tile; the tile's activations stay in L2.
constexpr int64_t kTokenTile = 128;

// The int8 kernels of the fast mode dot each weight row with one token at a time; the exact panel
// kernels decode a weight block once for many tokens. From about 4-12 tokens on (by type) the exact
// kernel is the faster one (fast/exact time, one core, 1024 x 1024: Q8_0 0.96 at 4 tokens, 1.20 at 6;
// Q4_K 0.67 at 4, 0.99 at 12), so the fast mode uses int8 only up to this many tokens: decode, and
// the experts that see few tokens of a prompt.
constexpr int64_t kFastMaxTokens = 4;

void matmul_out_major(ThreadPool& pool, const Mat& W, const TypeTraits& tt, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy) {
  // Rows in groups of 16 keep each thread's writes apart (no false sharing on y).
  pool.parallel_for(W.n_out, 16, [&](int64_t r0, int64_t r1, int) {
    for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
      int nt = (int)std::min(kTokenTile, T - t0);
      tt.dot_rows(W.data + (size_t)r0 * W.stride, W.stride, r1 - r0, x + t0 * ldx, ldx, W.n_in, nt, y + t0 * ldy + r0, ldy);
    }
  });
}

void matmul_in_major(ThreadPool& pool, const Mat& W, const TypeTraits& tt, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy) {
  pool.parallel_for(W.n_out, 64, [&](int64_t c0, int64_t c1, int) {
    const int64_t nc = c1 - c0;
    thread_local std::vector<float> row;  // kept per thread: no allocation per call
    row.resize(nc);
    for (int64_t t = 0; t < T; t++) std::fill(y + t * ldy + c0, y + t * ldy + c1, 0.f);
    for (int64_t i = 0; i < W.n_in; i++) {
      const float* wr;
      if (W.type == (uint32_t)GgmlType::F32) {
        wr = (const float*)(W.data + (size_t)i * W.stride) + c0;
      } else {
        tt.to_float(W.data + (size_t)i * W.stride + (size_t)c0 * tt.type_size, row.data(), nc);
        wr = row.data();
      }
      for (int64_t t = 0; t < T; t++) {
        const float a = x[t * ldx + i];
        float* yr = y + t * ldy + c0;
        for (int64_t c = 0; c < nc; c++) yr[c] += a * wr[c];
      }
    }
  });
}

void matmul_q8act(ThreadPool& pool, const Mat& W, const TypeTraits& tt, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy) {
  const size_t ldq = q8act_row_bytes(W.n_in);
  // Kept per calling thread (no allocation per decoded token). The workers must see this thread's
  // buffer through a pointer: inside the lambda the name would mean their own thread_local.
  thread_local std::vector<uint8_t> xq_buf;
  xq_buf.resize((size_t)T * ldq);
  uint8_t* xq = xq_buf.data();
  for (int64_t t = 0; t < T; t++) quantize_q8act(x + t * ldx, W.n_in, xq + t * ldq);
  pool.parallel_for(W.n_out, 16, [&](int64_t r0, int64_t r1, int) {
    for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
      int nt = (int)std::min(kTokenTile, T - t0);
      tt.dot_q8act(W.data + (size_t)r0 * W.stride, W.stride, r1 - r0, xq + t0 * ldq, ldq, W.n_in, nt, y + t0 * ldy + r0, ldy);
    }
  });
}

}  // namespace

void op_matmul(ThreadPool& pool, const Mat& W, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy, Precision precision) {
  if (T <= 0) return;
  const TypeTraits* tt = type_traits(W.type);
  MOESCOPE_CHECK(tt && tt->supported, "MODEL_UNSUPPORTED_TYPE", "tensor %s: weight type %s has no kernel", W.name, tt ? tt->name : "unknown");
  if (W.in_major) matmul_in_major(pool, W, *tt, x, ldx, T, y, ldy);
  else if (precision == Precision::Fast && T <= kFastMaxTokens && tt->dot_q8act && W.n_in % 32 == 0) matmul_q8act(pool, W, *tt, x, ldx, T, y, ldy);
  else matmul_out_major(pool, W, *tt, x, ldx, T, y, ldy);
}

}  // namespace moescope
