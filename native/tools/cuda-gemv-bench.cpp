// moescope-cuda-gemv-bench: the CUDA matmul kernels alone (issue 9), per weight type, at Scout's real
// shapes, on a GPU machine. For each type it quantizes one [rows, n_in] matrix of random normals on
// the host, copies it across the device until the set is several times the GPU's L2 (so every rep
// reads DRAM), times y = W x for T = 1 (decode) and T = 8 with CUDA events (median of 20 reps), and
// checks the result against the CPU's dequantised weights summed in double. Prints GB/s and the
// fraction of the device's measured read bandwidth: what the decode speed of a step is made of,
// without the host's launch costs (moescope-cuda-check --bench has those).
//   moescope-cuda-gemv-bench [TYPE ...]        (default: BF16 Q8_0 Q4_K Q5_K Q6_K)
// Built next to the addon when MOESCOPE_CUDA is on (build-cuda/moescope-cuda-gemv-bench).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "cuda/common.cuh"
#include "cuda/device.h"
#include "cuda/matmul.cuh"
#include "ops/quant.h"

using namespace moescope;
using namespace moescope::cuda;

namespace {

const TypeTraits* by_name(const std::string& n) {
  for (uint32_t id = 0; id < 64; id++) {
    const TypeTraits* t = type_traits(id);
    if (t && t->supported && n == t->name) return t;
  }
  return nullptr;
}

uint32_t type_id(const TypeTraits* t) {
  for (uint32_t id = 0; id < 64; id++)
    if (type_traits(id) == t) return id;
  return 0;
}

struct Shape { const char* what; int64_t n_in, n_out; };

// Median time of `reps` launches, each on the next copy of the matrix (DRAM, not L2).
double time_matmul(DMat W, size_t mat_bytes, int copies, const float* x, int64_t T, float* y, cudaStream_t s) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  const uint8_t* base = W.data;
  std::vector<double> ms;
  for (int r = 0; r < 23; r++) {
    W.data = base + (size_t)(r % copies) * mat_bytes;
    CUDA_CHECK(cudaEventRecord(a, s));
    matmul(W, x, W.n_in, T, y, W.n_out, s);
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    if (r >= 3) ms.push_back(t);  // 3 warm-up launches
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2] / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> names;
  for (int i = 1; i < argc; i++) names.push_back(argv[i]);
  if (names.empty()) names = {"BF16", "Q8_0", "Q4_K", "Q5_K", "Q6_K"};
  try {
    if (cuda_device_count() == 0) { printf("no CUDA device\n"); return 2; }
    const double bw = cuda_read_bandwidth(4ull << 30, 5);
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("%s: read bandwidth %.0f GB/s, L2 %.0f MiB\n", prop.name, bw / 1e9, prop.l2CacheSize / 1048576.0);
    // Scout's decode matrices: expert/shared gate and up [8192, 5120], down [5120, 8192], q [5120, 5120].
    const Shape shapes[] = {{"gate/up 5120->8192", 5120, 8192}, {"down 8192->5120", 8192, 5120}, {"wq 5120->5120", 5120, 5120}};
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreate(&s));
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.f, 0.02f);
    std::vector<float> pool(1 << 20);
    for (float& v : pool) v = nd(rng);
    printf("%-6s %-20s %3s %10s %9s %8s %10s  %s\n", "type", "matrix", "T", "us", "GB/s", "of bw", "rel err", "hash of y");
    int failures = 0;
    for (const std::string& name : names) {
      const TypeTraits* tt = by_name(name);
      if (!tt || !tt->from_float) { printf("%s: not a type moescope quantizes\n", name.c_str()); failures++; continue; }
      for (const Shape& sh : shapes) {
        const size_t rowb = row_bytes(*tt, sh.n_in), mat = rowb * (size_t)sh.n_out;
        // Rows of normals drawn from one pool (each row starts elsewhere in it), quantized on every core.
        std::vector<uint8_t> wq(mat);
        std::vector<std::thread> th;
        const int64_t nth = std::max(1u, std::thread::hardware_concurrency());
        for (int64_t k = 0; k < nth; k++)
          th.emplace_back([&, k] {
            std::vector<float> w(sh.n_in);
            for (int64_t r = k; r < sh.n_out; r += nth) {
              for (int64_t i = 0; i < sh.n_in; i++) w[i] = pool[(size_t)(r * 7919 + i) % pool.size()];
              tt->from_float(w.data(), wq.data() + r * rowb, sh.n_in);
            }
          });
        for (auto& t : th) t.join();
        const int copies = (int)std::max<size_t>(2, (4 * (size_t)prop.l2CacheSize) / mat + 1);
        DevBuf<uint8_t> dw(mat * copies);
        CUDA_CHECK(cudaMemcpy(dw.p, wq.data(), mat, cudaMemcpyHostToDevice));
        for (int c = 1; c < copies; c++) CUDA_CHECK(cudaMemcpy(dw.p + c * mat, dw.p, mat, cudaMemcpyDeviceToDevice));
        DMat W;
        W.data = dw.p; W.type = type_id(tt); W.n_in = sh.n_in; W.n_out = sh.n_out; W.stride = rowb; W.name = name.c_str();
        for (int64_t T : {1, 8}) {
          std::vector<float> x((size_t)T * sh.n_in);
          for (float& v : x) v = nd(rng) * 50;
          DevBuf<float> dx(x.size()), dy((size_t)T * sh.n_out);
          CUDA_CHECK(cudaMemcpy(dx.p, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
          const double sec = time_matmul(W, mat, copies, dx.p, T, dy.p, s);
          std::vector<float> y((size_t)T * sh.n_out);
          CUDA_CHECK(cudaMemcpy(y.data(), dy.p, y.size() * 4, cudaMemcpyDeviceToHost));
          // The CPU's dequantised weights, summed in double: the kernels' own rounding is all that differs.
          double num = 0, den = 0;
          std::vector<float> row(sh.n_in);
          for (int64_t r = 0; r < sh.n_out; r += 7) {
            tt->to_float(wq.data() + r * rowb, row.data(), sh.n_in);
            for (int64_t t = 0; t < T; t++) {
              double ref = 0;
              for (int64_t i = 0; i < sh.n_in; i++) ref += (double)row[i] * x[t * sh.n_in + i];
              const double d = y[t * sh.n_out + r] - ref;
              num += d * d; den += ref * ref;
            }
          }
          const double rel = std::sqrt(num / den);
          uint64_t hash = 1469598103934665603ull;  // FNV-1a of y's bytes: kernel variants that should agree bit for bit
          for (const uint8_t* p = (const uint8_t*)y.data(); p < (const uint8_t*)(y.data() + y.size()); p++) hash = (hash ^ *p) * 1099511628211ull;
          if (!(rel < 1e-5)) failures++;
          printf("%-6s %-20s %3lld %10.1f %9.0f %7.1f%% %10.2e  %016llx%s\n", name.c_str(), sh.what, (long long)T, sec * 1e6, mat / sec / 1e9,
                 100 * mat / sec / bw, rel, (unsigned long long)hash, rel < 1e-5 ? "" : "  FAIL");
        }
      }
    }
    printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
  } catch (const Error& e) {
    printf("error %s: %s\n", e.code.c_str(), e.what());
    return 1;
  }
}
