#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moescope {

void op_attention(ThreadPool& pool, const AttentionArgs& a) {
  const int64_t group = a.H / a.Hkv;
  const float scale = 1.0f / std::sqrt((float)a.Dh);
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
      float mx = -INFINITY;
      for (int64_t i = 0; i < n; i++) {
        const float* k = a.k_cache + ((lo - a.cache_pos0 + i) * a.Hkv + hk) * a.Dh;
        float s = 0;
        for (int64_t d = 0; d < a.Dh; d++) s += q[d] * k[d];
        s *= scale;
        scores[i] = s;
        mx = std::max(mx, s);
      }
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
      std::fill(o, o + a.Dh, 0.f);
      for (int64_t i = 0; i < n; i++) {
        const float* v = a.v_cache + ((lo - a.cache_pos0 + i) * a.Hkv + hk) * a.Dh;
        const float w = scores[i];
        for (int64_t d = 0; d < a.Dh; d++) o[d] += w * v[d];
      }
    }
  });
}

}  // namespace moescope
