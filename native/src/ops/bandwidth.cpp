#include "ops/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moescope {

namespace {

double sum_scalar(const float* p, int64_t n) {
  double a[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; k++) a[k] += p[i + k];
  return a[0] + a[1] + a[2] + a[3];
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) double sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float t[8];
  _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  const int64_t n = (int64_t)(bytes / sizeof(float)) / 64 * 64;
  std::unique_ptr<float, void (*)(void*)> buf((float*)aligned_alloc(64, n * sizeof(float)), free);
  if (!buf) return 0;
  float* p = buf.get();
  pool.parallel_for(n, 4096, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; i++) p[i] = (float)(i & 7);  // fault every page in before timing
  });
#if defined(__x86_64__) && defined(__GNUC__)
  const bool avx2 = __builtin_cpu_supports("avx2");
#endif
  std::vector<double> gbs;
  volatile double sink = 0;
  for (int r = 0; r < reps; r++) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n, 4096, [&](int64_t b, int64_t e, int) {
#if defined(__x86_64__) && defined(__GNUC__)
      sink = sink + (avx2 ? sum_avx2(p + b, e - b) : sum_scalar(p + b, e - b));
#else
      sink = sink + sum_scalar(p + b, e - b);
#endif
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbs.push_back((double)n * sizeof(float) / s / 1e9);
  }
  std::sort(gbs.begin(), gbs.end());
  return gbs[gbs.size() / 2];
}

}  // namespace moescope
