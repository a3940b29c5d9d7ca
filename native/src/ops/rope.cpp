#include "ops/rope.h"

#include <cmath>
#include <vector>

namespace moescope {

void op_rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int64_t* pos, const double* freq) {
  const int64_t half = head_dim / 2;
  std::vector<float> c(half), s(half);
  for (int64_t t = 0; t < T; t++) {
    for (int64_t j = 0; j < half; j++) {
      double a = (double)pos[t] * freq[j];
      c[j] = (float)std::cos(a);
      s[j] = (float)std::sin(a);
    }
    for (int64_t h = 0; h < n_heads; h++) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t j = 0; j < half; j++) {
        float a = v[2 * j], b = v[2 * j + 1];
        v[2 * j] = a * c[j] - b * s[j];
        v[2 * j + 1] = a * s[j] + b * c[j];
      }
    }
  }
}

}  // namespace moescope
