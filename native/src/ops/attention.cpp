#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/quant_blocks.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moescope {

namespace {

// The two inner loops of attention: q·k over the keys, and the probability-weighted sum of values,
// for each cache element type (E: float or bfloat16 bits). AVX2+FMA versions for head dims that are
// multiples of 8 (every Llama 4 size), picked at run time.
inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return quant::bf16_to_fp32(*p); }

template <class E>
void scores_row_scalar(const float* q, const E* k, int64_t k_stride, int64_t n, int64_t Dh, float scale, float* out) {
  for (int64_t i = 0; i < n; i++) {
    const E* kr = k + i * k_stride;
    float s = 0;
    for (int64_t d = 0; d < Dh; d++) s += q[d] * load1(kr + d);
    out[i] = s * scale;
  }
}

template <class E>
void weighted_sum_scalar(const float* p, const E* v, int64_t v_stride, int64_t n, int64_t Dh, float* o) {
  for (int64_t d = 0; d < Dh; d++) o[d] = 0;
  for (int64_t i = 0; i < n; i++) {
    const E* vr = v + i * v_stride;
    const float w = p[i];
    for (int64_t d = 0; d < Dh; d++) o[d] += w * load1(vr + d);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) inline __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}

__attribute__((target("avx2,fma"))) inline float hsum8(__m256 acc) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  return _mm_cvtss_f32(s4);
}

// Eight keys at a time, so that eight FMA chains are in flight (one chain per key, as for a single
// key: the values do not depend on how many keys share the loop).
template <class E>
__attribute__((target("avx2,fma"))) void scores_row_avx2(const float* q, const E* k, int64_t k_stride, int64_t n, int64_t Dh, float scale,
                                                           float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 acc[8];
    for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t d = 0; d < Dh; d += 8) {
      const __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++) acc[j] = _mm256_fmadd_ps(qv, load8(k + (i + j) * k_stride + d), acc[j]);
    }
    for (int j = 0; j < 8; j++) out[i + j] = hsum8(acc[j]) * scale;
  }
  for (; i < n; i++) {
    const E* kr = k + i * k_stride;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t d = 0; d < Dh; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load8(kr + d), acc);
    out[i] = hsum8(acc) * scale;
  }
}

// 64 output dims at a time in eight registers (Dh % 8 == 0; a smaller last group), keys in order.
template <class E>
__attribute__((target("avx2,fma"))) void weighted_sum_avx2(const float* p, const E* v, int64_t v_stride, int64_t n, int64_t Dh, float* o) {
  int64_t d0 = 0;
  for (; d0 + 64 <= Dh; d0 += 64) {
    __m256 acc[8];
    for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i++) {
      const __m256 w = _mm256_set1_ps(p[i]);
      const E* vr = v + i * v_stride + d0;
#pragma GCC unroll 8
      for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(w, load8(vr + 8 * r), acc[r]);
    }
    for (int r = 0; r < 8; r++) _mm256_storeu_ps(o + d0 + 8 * r, acc[r]);
  }
  for (; d0 < Dh; d0 += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i++) acc = _mm256_fmadd_ps(_mm256_set1_ps(p[i]), load8(v + i * v_stride + d0), acc);
    _mm256_storeu_ps(o + d0, acc);
  }
}
#endif

bool use_avx2(int64_t Dh) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has && Dh % 8 == 0;
#else
  (void)Dh;
  return false;
#endif
}

template <class E>
void attention_impl(ThreadPool& pool, const AttentionArgs& a) {
  using ScoresFn = void (*)(const float*, const E*, int64_t, int64_t, int64_t, float, float*);
  using SumFn = void (*)(const float*, const E*, int64_t, int64_t, int64_t, float*);
  const int64_t group = a.H / a.Hkv;
  const float scale = 1.0f / std::sqrt((float)a.Dh);
#if defined(__x86_64__) && defined(__GNUC__)
  const ScoresFn scores_row = use_avx2(a.Dh) ? scores_row_avx2<E> : scores_row_scalar<E>;
  const SumFn weighted_sum = use_avx2(a.Dh) ? weighted_sum_avx2<E> : weighted_sum_scalar<E>;
#else
  const ScoresFn scores_row = scores_row_scalar<E>;
  const SumFn weighted_sum = weighted_sum_scalar<E>;
#endif
  const E* k_cache = (const E*)a.k_cache;
  const E* v_cache = (const E*)a.v_cache;
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
      scores_row(q, k_cache + ((lo - a.cache_pos0) * a.Hkv + hk) * a.Dh, a.Hkv * a.Dh, n, a.Dh, scale, scores.data());
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
      weighted_sum(scores.data(), v_cache + ((lo - a.cache_pos0) * a.Hkv + hk) * a.Dh, a.Hkv * a.Dh, n, a.Dh, o);
    }
  });
}

}  // namespace

void op_attention(ThreadPool& pool, const AttentionArgs& a) {
  if (a.kv_type == KvType::BF16) attention_impl<uint16_t>(pool, a);
  else attention_impl<float>(pool, a);
}

}  // namespace moescope
