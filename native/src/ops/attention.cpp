#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moescope {

namespace {

// The two inner loops of attention: q·k over the keys, and the probability-weighted sum of values.
// AVX2+FMA versions for head dims that are multiples of 8 (every Llama 4 size), picked at run time.
void scores_row_scalar(const float* q, const float* k, int64_t k_stride, int64_t n, int64_t Dh, float scale, float* out) {
  for (int64_t i = 0; i < n; i++) {
    const float* kr = k + i * k_stride;
    float s = 0;
    for (int64_t d = 0; d < Dh; d++) s += q[d] * kr[d];
    out[i] = s * scale;
  }
}

void weighted_sum_scalar(const float* p, const float* v, int64_t v_stride, int64_t n, int64_t Dh, float* o) {
  for (int64_t d = 0; d < Dh; d++) o[d] = 0;
  for (int64_t i = 0; i < n; i++) {
    const float* vr = v + i * v_stride;
    const float w = p[i];
    for (int64_t d = 0; d < Dh; d++) o[d] += w * vr[d];
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void scores_row_avx2(const float* q, const float* k, int64_t k_stride, int64_t n, int64_t Dh, float scale,
                                                           float* out) {
  for (int64_t i = 0; i < n; i++) {
    const float* kr = k + i * k_stride;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t d = 0; d < Dh; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kr + d), acc);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    out[i] = _mm_cvtss_f32(s4) * scale;
  }
}

__attribute__((target("avx2,fma"))) void weighted_sum_avx2(const float* p, const float* v, int64_t v_stride, int64_t n, int64_t Dh, float* o) {
  for (int64_t d0 = 0; d0 < Dh; d0 += 32) {
    const int64_t nd = std::min<int64_t>(32, Dh - d0);  // up to four registers of accumulators
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n; i++) {
      const __m256 w = _mm256_set1_ps(p[i]);
      const float* vr = v + i * v_stride + d0;
      for (int64_t r = 0; r < nd / 8; r++) acc[r] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr + 8 * r), acc[r]);
    }
    for (int64_t r = 0; r < nd / 8; r++) _mm256_storeu_ps(o + d0 + 8 * r, acc[r]);
  }
}
#endif

using ScoresFn = void (*)(const float*, const float*, int64_t, int64_t, int64_t, float, float*);
using SumFn = void (*)(const float*, const float*, int64_t, int64_t, int64_t, float*);

bool use_avx2(int64_t Dh) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has && Dh % 8 == 0;
#else
  (void)Dh;
  return false;
#endif
}

}  // namespace

void op_attention(ThreadPool& pool, const AttentionArgs& a) {
  const int64_t group = a.H / a.Hkv;
  const float scale = 1.0f / std::sqrt((float)a.Dh);
#if defined(__x86_64__) && defined(__GNUC__)
  const ScoresFn scores_row = use_avx2(a.Dh) ? scores_row_avx2 : scores_row_scalar;
  const SumFn weighted_sum = use_avx2(a.Dh) ? weighted_sum_avx2 : weighted_sum_scalar;
#else
  const ScoresFn scores_row = scores_row_scalar;
  const SumFn weighted_sum = weighted_sum_scalar;
#endif
  pool.parallel_for(a.T * a.H, 1, [&](int64_t b, int64_t e, int) {
    std::vector<float> scores;
    for (int64_t th = b; th < e; th++) {
      const int64_t t = th / a.H, h = th % a.H, hk = h / group;
      const int64_t p = a.pos[t];
      float* o = a.out + (t * a.H + h) * a.Dh;
      float* pd = a.probs_dst ? a.probs_dst(a.probs_ctx, t, h) : nullptr;
      if (a.head_mask && a.head_mask[h]) {
        std::fill(o, o + a.Dh, 0.f);
        // The pattern of an ablated head is still reported: ablation acts on its output.
      }
      int64_t lo = a.chunk > 0 ? (p / a.chunk) * a.chunk : 0;
      lo = std::max(lo, a.cache_pos0);
      const int64_t n = p - lo + 1;
      const float* q = a.q + (t * a.H + h) * a.Dh;
      scores.resize(n);
      scores_row(q, a.k_cache + ((lo - a.cache_pos0) * a.Hkv + hk) * a.Dh, a.Hkv * a.Dh, n, a.Dh, scale, scores.data());
      float mx = -INFINITY;
      for (int64_t i = 0; i < n; i++) mx = std::max(mx, scores[i]);
      double sum = 0;
      for (int64_t i = 0; i < n; i++) {
        scores[i] = std::exp(scores[i] - mx);
        sum += scores[i];
      }
      const float inv = (float)(1.0 / sum);
      for (int64_t i = 0; i < n; i++) scores[i] *= inv;
      if (pd) {
        std::fill(pd, pd + lo, 0.f);
        std::copy(scores.begin(), scores.end(), pd + lo);
      }
      if (a.head_mask && a.head_mask[h]) continue;
      weighted_sum(scores.data(), a.v_cache + ((lo - a.cache_pos0) * a.Hkv + hk) * a.Dh, a.Hkv * a.Dh, n, a.Dh, o);
    }
  });
}

}  // namespace moescope
