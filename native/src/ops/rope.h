// Interleaved-pair ("complex") rotary embedding, spec §2.4 item 2: pair (x[2j], x[2j+1]) is rotated
// by angle p * freq[j]. Angles are formed and reduced in float64, so positions up to 10^7 keep full
// float32 accuracy (float32 `p * freq` is off by up to 0.06 rad at p = 10^6).
#pragma once
#include <cstdint>

namespace moescope {

// x: [T, n_heads, head_dim]; pos[t] absolute positions; freq: head_dim/2 radians per position.
void op_rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int64_t* pos, const double* freq);

}  // namespace moescope
