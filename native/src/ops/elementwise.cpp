#include "ops/elementwise.h"

#include <algorithm>
#include <cmath>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "ops/quant_blocks.h"  // avx2_available
#include "ops/threadpool.h"

namespace moescope {

namespace {

void silu_mul_span(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

#if defined(__x86_64__) || defined(__i386__)
// exp of 8 floats, Cephes' expf: 2^n times a polynomial of the remainder, within 2 ulp of the true
// value over the clamped range (beyond it, silu is 0 or g to float precision anyway).
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // x - n ln 2, in two parts
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) void silu_mul_avx2(float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_xor_ps(g, sign))));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  silu_mul_span(gate + i, up + i, n - i);
}
#else
void silu_mul_avx2(float* gate, const float* up, int64_t n) { silu_mul_span(gate, up, n); }
#endif

}  // namespace

void op_rms_norm(ThreadPool& pool, const float* x, const float* w, float* y, int64_t T, int64_t n, double eps) {
  // Pieces of at least 8192 values: a decode step's one row stays on the calling thread.
  pool.parallel_for(T, std::max<int64_t>(1, 8192 / n), [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; t++) {
      const float* xr = x + t * n;
      float* yr = y + t * n;
      // Four float64 chains instead of one (a decode step's norms waited on the add latency); each
      // product of two floats is exact in float64, so the order moves the sum by ~1e-16 only.
      double s4[4] = {0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s4[j] += (double)xr[i + j] * xr[i + j];
      for (; i < n; i++) s4[0] += (double)xr[i] * xr[i];
      const double ss = (s4[0] + s4[1]) + (s4[2] + s4[3]);
      const float scale = (float)(1.0 / std::sqrt(ss / (double)n + eps));
      if (w) for (i = 0; i < n; i++) yr[i] = xr[i] * scale * w[i];
      else for (i = 0; i < n; i++) yr[i] = xr[i] * scale;
    }
  });
}

void op_add(ThreadPool& pool, float* y, const float* x, int64_t n) {
  pool.parallel_for(n, 16384, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; i++) y[i] += x[i];
  });
}

void op_silu_mul(ThreadPool& pool, float* gate, const float* up, int64_t n) {
  // One exp per value: over a 512-token prefill this was ~5 % of the time, all on one core; in
  // decode (2048 values, one piece) the scalar exp took 11 us a call, ~3 % of a token.
  static void (*const span)(float*, const float*, int64_t) = quant::avx2_available() ? silu_mul_avx2 : silu_mul_span;
  pool.parallel_for(n, 4096, [&](int64_t b, int64_t e, int) { span(gate + b, up + b, e - b); });
}

void op_axpy(float* y, const float* x, float a, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

}  // namespace moescope
