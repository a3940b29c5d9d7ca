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

// The fast mode's int8 kernels round activations as llama.cpp does for each weight type. K-quants:
// gemm_q8k, activations per 256 (quantize_q8k), for any number of activation rows T (it dots row by
// row for 1-2 and runs an int8 register tile from 3). Q8_0 and Q4_0: dot_q8act, activations per 32
// (quantize_q8act), up to the rows its registry entry says (dot_q8act_max_tokens): beyond, the exact
// panel kernels are the faster ones.

// Which kernels compute a product of T activation rows: the exact ones, the int8 dot (activations
// rounded per 32) or the int8 GEMM (per 256). The matrices of one op_matmul_group range share one,
// so that one rounded copy of the activations serves them all.
// A K-quant decode step (T == 1) on AVX-512 stays exact in fast mode too: the integer GEMVs of
// gemv_x24 run as fast as gemm_q8k's (kernel, one core, from L2: Q4_K 17.0 against 15.4 GB/s, Q6_K
// 29 against 26.5), so rounding x to int8 there would add error and buy nothing.
enum class Family { Exact, Int8Dot, Int8Gemm };
Family kernel_family(const Mat& W, const TypeTraits& tt, int64_t T, Precision precision) {
  if (precision != Precision::Fast || W.n_in % 32 != 0 || (T == 1 && tt.gemv_x24)) return Family::Exact;
  if (tt.gemm_q8k) return Family::Int8Gemm;
  return tt.dot_q8act && T <= tt.dot_q8act_max_tokens ? Family::Int8Dot : Family::Exact;
}

// The kernels prefetch ahead of what they read (quant_blocks.h); ask for the first 2 KiB of a piece
// before it starts too, so that its first misses overlap instead of coming one row at a time.
// Decode reads many matrices of about 1 MB, two pieces or more each: scout-mid Q4_K_M decode,
// in-process A/B, 3-8 % (exact and fast; measured when the kernels also read 2 KiB ahead; 8 KiB here
// did no better, and matching the kernels' 4 KiB since was within the noise).
inline void prefetch_start(const uint8_t* w, size_t bytes) {
  for (size_t o = 0; o < 2048 && o < bytes; o += 64) __builtin_prefetch(w + o);
}

// Out-major matrices (every GGUF tensor): the rows of one or more matrices over the same activations
// as one range [0, sum of n_out), so that one parallel_for (one wake-up, one wait) serves them all. A
// piece of the range that straddles two matrices is cut in two; each output row is computed by the
// same kernel whatever piece it falls in, so the results do not depend on the grouping, bit for bit.
// The matrices take the same kernel family, exact, int8 dot or int8 gemm (op_matmul_group sees to it).
void matmul_out_major(ThreadPool& pool, const MatOut* outs, int n_outs, const float* x, int64_t ldx, int64_t T,
                      Precision precision) {
  const TypeTraits* tts[kMaxMatOuts];
  int64_t start[kMaxMatOuts + 1] = {0};
  for (int i = 0; i < n_outs; i++) {
    tts[i] = type_traits(outs[i].W->type);
    start[i + 1] = start[i] + outs[i].W->n_out;
  }
  const Family family = kernel_family(*outs[0].W, *tts[0], T, precision);  // the same for all (op_matmul_group)
  const bool int8 = family != Family::Exact, per256 = family == Family::Int8Gemm;
  const int64_t n_in = outs[0].W->n_in;
  const size_t ldq = per256 ? q8k_row_bytes(n_in) : q8act_row_bytes(n_in);
  uint8_t* xq = nullptr;
  if (int8) {
    // Kept per calling thread (no allocation per decoded token). The workers must see this thread's
    // buffer through a pointer: inside the lambda the name would mean their own thread_local.
    thread_local std::vector<uint8_t> xq_buf;
    xq_buf.resize((size_t)T * ldq);
    xq = xq_buf.data();
    if (per256) {  // a prompt's worth of rows: on the pool
      pool.parallel_for(T, 8, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; t++) quantize_q8k(x + t * ldx, n_in, xq + t * ldq);
      });
    } else {
      for (int64_t t = 0; t < T; t++) quantize_q8act(x + t * ldx, n_in, xq + t * ldq);
    }
  }
  // Exact decode of K-quants on AVX-512 CPUs: x converted once for every thread (gemv_x24).
  bool x24 = false;
  for (int i = 0; i < n_outs; i++) x24 = x24 || (!int8 && T == 1 && tts[i]->gemv_x24);
  if (x24) {
    thread_local std::vector<uint8_t> x24_buf;  // as xq_buf
    x24_buf.resize(x24_bytes(n_in));
    xq = x24_buf.data();
    convert_x24(x, n_in, xq);
  }
  // Rows in groups of 16 keep each thread's writes apart (no false sharing on y).
  pool.parallel_for(start[n_outs], 16, [&](int64_t g0, int64_t g1, int) {
    for (int i = 0; i < n_outs; i++) {
      const int64_t r0 = std::max(g0, start[i]) - start[i], r1 = std::min(g1, start[i + 1]) - start[i];
      if (r0 >= r1) continue;
      const Mat& W = *outs[i].W;
      const uint8_t* w = W.data + (size_t)r0 * W.stride;
      prefetch_start(w, (size_t)(r1 - r0) * W.stride);
      const int64_t ldy = outs[i].ldy;
      float* y = outs[i].y + r0;
      for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
        const int nt = (int)std::min(kTokenTile, T - t0);
        if (int8) (per256 ? tts[i]->gemm_q8k : tts[i]->dot_q8act)(w, W.stride, r1 - r0, xq + t0 * ldq, ldq, n_in, nt, y + t0 * ldy, ldy);
        else if (x24 && tts[i]->gemv_x24) tts[i]->gemv_x24(w, W.stride, r1 - r0, xq, n_in, y);
        else tts[i]->dot_rows(w, W.stride, r1 - r0, x + t0 * ldx, ldx, n_in, nt, y + t0 * ldy, ldy);
      }
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

const TypeTraits& computable(const Mat& W) {
  const TypeTraits* tt = type_traits(W.type);
  MOESCOPE_CHECK(tt && tt->supported, "MODEL_UNSUPPORTED_TYPE", "tensor %s: weight type %s has no kernel", W.name, tt ? tt->name : "unknown");
  return *tt;
}

}  // namespace

void op_matmul_group(ThreadPool& pool, std::initializer_list<MatOut> outs, const float* x, int64_t ldx, int64_t T,
                     Precision precision) {
  if (T <= 0) return;
  MOESCOPE_CHECK(outs.size() >= 1 && outs.size() <= (size_t)kMaxMatOuts, "INTERNAL", "op_matmul_group takes 1 to %d matrices", kMaxMatOuts);
  const Mat& first = *outs.begin()->W;
  const auto family = [&](const Mat& W) { return kernel_family(W, computable(W), T, precision); };
  // One range when every matrix is out-major, reads the same input width and takes the same kernel
  // family; otherwise each matrix goes on its own.
  const Family fam = family(first);
  bool together = true;
  for (const MatOut& o : outs) together = together && !o.W->in_major && o.W->n_in == first.n_in && family(*o.W) == fam;
  if (together) return matmul_out_major(pool, outs.begin(), (int)outs.size(), x, ldx, T, precision);
  for (const MatOut& o : outs) op_matmul(pool, *o.W, x, ldx, T, o.y, o.ldy, precision);
}

void op_matmul(ThreadPool& pool, const Mat& W, const float* x, int64_t ldx, int64_t T, float* y, int64_t ldy, Precision precision) {
  if (T <= 0) return;
  const TypeTraits& tt = computable(W);
  if (W.in_major) return matmul_in_major(pool, W, tt, x, ldx, T, y, ldy);
  const MatOut out{&W, y, ldy};
  matmul_out_major(pool, &out, 1, x, ldx, T, precision);
}

}  // namespace moescope
