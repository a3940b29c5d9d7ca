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

// The two inner loops of attention, for the G query heads that share one KV head (GQA): q·k over the
// keys, and the probability-weighted sum of values, for each cache element type (E: float or
// bfloat16 bits). AVX2+FMA versions for head dims that are multiples of 8 (every Llama 4 size),
// picked at run time. Each key and value row is loaded once for all G heads; every score is still
// one FMA chain over the head dim and every output element one chain over the keys, in order, so
// the results are those of one head at a time, bit for bit.
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

// q: G heads at stride q_stride; out: [G][n]. p: [G][p_stride]; o: G heads at stride o_stride.
template <class E>
void scores_group_scalar(const float* q, int64_t q_stride, int64_t G, const E* k, int64_t k_stride, int64_t n, int64_t Dh,
                         float scale, float* out) {
  for (int64_t g = 0; g < G; g++) scores_row_scalar(q + g * q_stride, k, k_stride, n, Dh, scale, out + g * n);
}

template <class E>
void weighted_group_scalar(const float* p, int64_t p_stride, int64_t G, const E* v, int64_t v_stride, int64_t n, int64_t Dh,
                           float* o, int64_t o_stride) {
  for (int64_t g = 0; g < G; g++) weighted_sum_scalar(p + g * p_stride, v, v_stride, n, Dh, o + g * o_stride);
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

// A tile of GH heads x NK keys (GH * NK = 8 FMA chains in flight): per 8 dims, NK key loads and GH
// query loads feed 8 FMAs (one head and eight keys loaded 9 vectors for the same work).
template <class E, int GH, int NK>
__attribute__((target("avx2,fma"))) inline void scores_tile(const float* q, int64_t q_stride, const E* k, int64_t k_stride,
                                                             int64_t Dh, float scale, float* out, int64_t n) {
  __m256 acc[GH][NK];
  for (int g = 0; g < GH; g++)
    for (int j = 0; j < NK; j++) acc[g][j] = _mm256_setzero_ps();
  for (int64_t d = 0; d < Dh; d += 8) {
    __m256 kv[NK];
#pragma GCC unroll 8
    for (int j = 0; j < NK; j++) kv[j] = load8(k + j * k_stride + d);
#pragma GCC unroll 4
    for (int g = 0; g < GH; g++) {
      const __m256 qv = _mm256_loadu_ps(q + g * q_stride + d);
#pragma GCC unroll 8
      for (int j = 0; j < NK; j++) acc[g][j] = _mm256_fmadd_ps(qv, kv[j], acc[g][j]);
    }
  }
  for (int g = 0; g < GH; g++)
    for (int j = 0; j < NK; j++) out[g * n + j] = hsum8(acc[g][j]) * scale;
}

template <class E, int GH>
__attribute__((target("avx2,fma"))) void scores_heads(const float* q, int64_t q_stride, const E* k, int64_t k_stride, int64_t n,
                                                        int64_t Dh, float scale, float* out) {
  constexpr int NK = 8 / GH;
  int64_t i = 0;
  for (; i + NK <= n; i += NK) scores_tile<E, GH, NK>(q, q_stride, k + i * k_stride, k_stride, Dh, scale, out + i, n);
  for (; i < n; i++) scores_tile<E, GH, 1>(q, q_stride, k + i * k_stride, k_stride, Dh, scale, out + i, n);
}

template <class E>
__attribute__((target("avx2,fma"))) void scores_group_avx2(const float* q, int64_t q_stride, int64_t G, const E* k, int64_t k_stride,
                                                             int64_t n, int64_t Dh, float scale, float* out) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) scores_heads<E, 4>(q + g * q_stride, q_stride, k, k_stride, n, Dh, scale, out + g * n);
  for (; g + 2 <= G; g += 2) scores_heads<E, 2>(q + g * q_stride, q_stride, k, k_stride, n, Dh, scale, out + g * n);
  for (; g < G; g++) scores_heads<E, 1>(q + g * q_stride, q_stride, k, k_stride, n, Dh, scale, out + g * n);
}

// A tile of GH heads x NV value vectors (8 accumulators): per key, NV value loads and GH broadcast
// probabilities feed 8 FMAs.
template <class E, int GH, int NV>
__attribute__((target("avx2,fma"))) inline void weighted_tile(const float* p, int64_t p_stride, const E* v, int64_t v_stride,
                                                               int64_t n, float* o, int64_t o_stride) {
  __m256 acc[GH][NV];
  for (int g = 0; g < GH; g++)
    for (int r = 0; r < NV; r++) acc[g][r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i++) {
    __m256 vv[NV];
#pragma GCC unroll 8
    for (int r = 0; r < NV; r++) vv[r] = load8(v + i * v_stride + 8 * r);
#pragma GCC unroll 4
    for (int g = 0; g < GH; g++) {
      const __m256 w = _mm256_set1_ps(p[g * p_stride + i]);
#pragma GCC unroll 8
      for (int r = 0; r < NV; r++) acc[g][r] = _mm256_fmadd_ps(w, vv[r], acc[g][r]);
    }
  }
  for (int g = 0; g < GH; g++)
    for (int r = 0; r < NV; r++) _mm256_storeu_ps(o + g * o_stride + 8 * r, acc[g][r]);
}

template <class E, int GH>
__attribute__((target("avx2,fma"))) void weighted_heads(const float* p, int64_t p_stride, const E* v, int64_t v_stride, int64_t n,
                                                          int64_t Dh, float* o, int64_t o_stride) {
  constexpr int NV = 8 / GH;
  int64_t d0 = 0;
  for (; d0 + 8 * NV <= Dh; d0 += 8 * NV) weighted_tile<E, GH, NV>(p, p_stride, v + d0, v_stride, n, o + d0, o_stride);
  for (; d0 < Dh; d0 += 8) weighted_tile<E, GH, 1>(p, p_stride, v + d0, v_stride, n, o + d0, o_stride);
}

template <class E>
__attribute__((target("avx2,fma"))) void weighted_group_avx2(const float* p, int64_t p_stride, int64_t G, const E* v, int64_t v_stride,
                                                               int64_t n, int64_t Dh, float* o, int64_t o_stride) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) weighted_heads<E, 4>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
  for (; g + 2 <= G; g += 2) weighted_heads<E, 2>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
  for (; g < G; g++) weighted_heads<E, 1>(p + g * p_stride, p_stride, v, v_stride, n, Dh, o + g * o_stride, o_stride);
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
  using ScoresFn = void (*)(const float*, int64_t, int64_t, const E*, int64_t, int64_t, int64_t, float, float*);
  using SumFn = void (*)(const float*, int64_t, int64_t, const E*, int64_t, int64_t, int64_t, float*, int64_t);
  const int64_t G = a.H / a.Hkv;  // query heads per KV head
  const float scale = 1.0f / std::sqrt((float)a.Dh);
#if defined(__x86_64__) && defined(__GNUC__)
  const ScoresFn scores_group = use_avx2(a.Dh) ? scores_group_avx2<E> : scores_group_scalar<E>;
  const SumFn weighted_group = use_avx2(a.Dh) ? weighted_group_avx2<E> : weighted_group_scalar<E>;
#else
  const ScoresFn scores_group = scores_group_scalar<E>;
  const SumFn weighted_group = weighted_group_scalar<E>;
#endif
  const E* k_cache = (const E*)a.k_cache;
  const E* v_cache = (const E*)a.v_cache;
  // One unit = one query token and one KV head with its G query heads (contiguous in q and out).
  pool.parallel_for(a.T * a.Hkv, 1, [&](int64_t b, int64_t e, int) {
    thread_local std::vector<float> scores;  // [G][n]; kept per thread, so no allocation per call
    for (int64_t tk = b; tk < e; tk++) {
      const int64_t t = tk / a.Hkv, hk = tk % a.Hkv, h0 = hk * G;
      const int64_t p = a.pos[t];
      int64_t lo = a.chunk > 0 ? (p / a.chunk) * a.chunk : 0;
      lo = std::max(lo, a.cache_pos0);
      const int64_t n = p - lo + 1;
      const int64_t kv0 = ((lo - a.cache_pos0) * a.Hkv + hk) * a.Dh, kv_stride = a.Hkv * a.Dh;
      scores.resize(G * n);
      scores_group(a.q + (t * a.H + h0) * a.Dh, a.Dh, G, k_cache + kv0, kv_stride, n, a.Dh, scale, scores.data());
      for (int64_t g = 0; g < G; g++) {
        float* sg = scores.data() + g * n;
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; i++) mx = std::max(mx, sg[i]);
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
          sg[i] = std::exp(sg[i] - mx);
          sum += sg[i];
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < n; i++) sg[i] *= inv;
        // The pattern of an ablated head is still reported: ablation acts on its output.
        if (float* pd = a.probs_dst ? a.probs_dst(a.probs_ctx, t, h0 + g) : nullptr) {
          std::fill(pd, pd + lo, 0.f);
          std::copy(sg, sg + n, pd + lo);
        }
      }
      float* o = a.out + (t * a.H + h0) * a.Dh;
      weighted_group(scores.data(), n, G, v_cache + kv0, kv_stride, n, a.Dh, o, a.Dh);
      if (a.head_mask)
        for (int64_t g = 0; g < G; g++)
          if (a.head_mask[h0 + g]) std::fill(o + g * a.Dh, o + (g + 1) * a.Dh, 0.f);
    }
  });
}

}  // namespace

void op_attention(ThreadPool& pool, const AttentionArgs& a) {
  if (a.kv_type == KvType::BF16) attention_impl<uint16_t>(pool, a);
  else attention_impl<float>(pool, a);
}

}  // namespace moescope
