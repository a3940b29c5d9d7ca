// Vision tower operations, see vision_ops.h. Reductions run in float64 where the result would
// otherwise depend on summation order at the 1e-7 level (norm statistics, softmax denominators).
#include "vision/vision_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moescope {

void op_layer_norm(const float* x, const float* w, const float* b, float* y, int64_t T, int64_t n, double eps) {
  for (int64_t t = 0; t < T; t++) {
    const float* xr = x + t * n;
    float* yr = y + t * n;
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += xr[i];
    mean /= (double)n;
    double var = 0;
    for (int64_t i = 0; i < n; i++) var += ((double)xr[i] - mean) * ((double)xr[i] - mean);
    const double inv = 1.0 / std::sqrt(var / (double)n + eps);
    for (int64_t i = 0; i < n; i++) yr[i] = (float)(((double)xr[i] - mean) * inv * w[i] + b[i]);
  }
}

void op_gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const double v = x[i];
    x[i] = (float)(0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)));
  }
}

void op_add_bias(float* y, const float* b, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < n; i++) y[t * n + i] += b[i];
}

void op_unfold_patches(const float* tile, int64_t channels, int64_t side, int64_t p, float* out) {
  const int64_t G = side / p, row = channels * p * p;
  for (int64_t py = 0; py < G; py++)
    for (int64_t px = 0; px < G; px++) {
      float* o = out + (py * G + px) * row;
      for (int64_t c = 0; c < channels; c++)
        for (int64_t ky = 0; ky < p; ky++) {
          const float* src = tile + (c * side + py * p + ky) * side + px * p;
          std::copy(src, src + p, o + c * p * p + ky * p);
        }
    }
}

void vision_rope_tables(int64_t grid, int64_t head_dim, double theta, float* cos_out, float* sin_out) {
  const int64_t pairs = head_dim / 2, half = pairs / 2, S = grid * grid + 1;
  // HF: rope_freq = 1 / theta^(arange(0, freq_dim, 2)[:freq_dim/2] / freq_dim), freq_dim = head_dim / 2.
  std::vector<double> f(half);
  for (int64_t k = 0; k < half; k++) f[k] = 1.0 / std::pow(theta, (double)(2 * k) / (double)pairs);
  for (int64_t s = 0; s < S; s++)
    for (int64_t j = 0; j < pairs; j++) {
      double angle = 0;  // CLS (s = S-1): identity
      if (s < S - 1) angle = j < half ? (double)(s % grid + 1) * f[j] : (double)(s / grid + 1) * f[j - half];
      cos_out[s * pairs + j] = (float)std::cos(angle);
      sin_out[s * pairs + j] = (float)std::sin(angle);
    }
}

void op_rope_2d(float* x, int64_t S, int64_t H, int64_t Dh, const float* cos_t, const float* sin_t) {
  const int64_t pairs = Dh / 2;
  for (int64_t s = 0; s < S; s++)
    for (int64_t h = 0; h < H; h++) {
      float* v = x + (s * H + h) * Dh;
      for (int64_t j = 0; j < pairs; j++) {
        const double c = cos_t[s * pairs + j], sn = sin_t[s * pairs + j];
        const double a = v[2 * j], b = v[2 * j + 1];
        v[2 * j] = (float)(a * c - b * sn);
        v[2 * j + 1] = (float)(a * sn + b * c);
      }
    }
}

void op_vision_attention(ThreadPool& pool, const float* q, const float* k, const float* v, float* out, int64_t S, int64_t H, int64_t Dh,
                         float* probs) {
  const int64_t C = H * Dh;
  const double scale = 1.0 / std::sqrt((double)Dh);
  pool.parallel_for(H * S, 1, [&](int64_t r0, int64_t r1, int) {
    std::vector<double> p(S), acc(Dh);
    for (int64_t r = r0; r < r1; r++) {
      const int64_t h = r / S, i = r % S;
      const float* qi = q + i * C + h * Dh;
      double mx = -INFINITY;
      for (int64_t j = 0; j < S; j++) {
        const float* kj = k + j * C + h * Dh;
        double d = 0;
        for (int64_t e = 0; e < Dh; e++) d += (double)qi[e] * kj[e];
        p[j] = d * scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < S; j++) sum += (p[j] = std::exp(p[j] - mx));
      const double inv = 1.0 / sum;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < S; j++) {
        const double pj = p[j] * inv;
        const float* vj = v + j * C + h * Dh;
        for (int64_t e = 0; e < Dh; e++) acc[e] += pj * vj[e];
        if (probs) probs[(h * S + i) * S + j] = (float)pj;
      }
      float* o = out + i * C + h * Dh;
      for (int64_t e = 0; e < Dh; e++) o[e] = (float)acc[e];
    }
  });
}

void op_pixel_shuffle(const float* f, int64_t grid, int64_t C, int64_t r, float* out) {
  const int64_t g = grid / r;
  for (int64_t Y = 0; Y < g; Y++)
    for (int64_t X = 0; X < g; X++) {
      float* o = out + (Y * g + X) * r * r * C;
      for (int64_t dy = 0; dy < r; dy++)
        for (int64_t dx = 0; dx < r; dx++) {
          const float* src = f + ((r * Y + dy) * grid + r * X + dx) * C;
          std::copy(src, src + C, o + (dy * r + dx) * C);
        }
    }
}

}  // namespace moescope
