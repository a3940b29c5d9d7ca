// The row-wise and per-tile operations of the Llama 4 vision tower (spec §3.2-3.3) that the text
// path does not have: LayerNorm with bias, exact erf GELU, the unfold patch embedding's input layout,
// 2-D RoPE, bidirectional attention over one tile, and the pixel-shuffle index map.
//
// Legend: S sequence (577 = 576 patches + CLS last), C width, H heads, Dh head dim, G patch grid side (24).
#pragma once
#include <cstdint>

#include "ops/threadpool.h"

namespace moescope {

// y[t] = (x[t] - mean) / sqrt(var + eps) * w + b, statistics in float64 (x and y may alias).
void op_layer_norm(const float* x, const float* w, const float* b, float* y, int64_t T, int64_t n, double eps);

// x = 0.5 x (1 + erf(x / sqrt 2)), the exact GELU of nn.GELU() (not the tanh approximation).
void op_gelu_erf(float* x, int64_t n);

// y[i] += b[i mod n] for T rows of n.
void op_add_bias(float* y, const float* b, int64_t T, int64_t n);

// One tile [channels, side, side] -> patch rows [G*G, channels*p*p]: patch P = py*G + px, entry
// c*p*p + ky*p + kx = pixel (c, py*p + ky, px*p + kx) (Llama4UnfoldConvolution's order).
void op_unfold_patches(const float* tile, int64_t channels, int64_t side, int64_t p, float* out);

// 2-D rotary tables for the S = G*G + 1 positions of a tile (spec §3.2 item 6): pair j of a head
// uses angle (px+1) f_j for j < Dh/4 and (py+1) f_{j-Dh/4} after, f_k = theta^(-4k/Dh); the CLS
// position (last) has angle 0. cos/sin in float64 -> float, [S, Dh/2] each.
void vision_rope_tables(int64_t grid, int64_t head_dim, double theta, float* cos_out, float* sin_out);
// Rotates interleaved pairs (x[2j], x[2j+1]) of every head of x [S, H, Dh] by the tables.
void op_rope_2d(float* x, int64_t S, int64_t H, int64_t Dh, const float* cos_t, const float* sin_t);

// Bidirectional scaled dot-product attention over one tile: q, k, v, out [S, H*Dh], scale 1/sqrt(Dh),
// no mask. probs (optional) receives the softmax [H, S, S].
void op_vision_attention(ThreadPool& pool, const float* q, const float* k, const float* v, float* out, int64_t S, int64_t H, int64_t Dh,
                         float* probs);

// Pixel shuffle (spec §3.3), row-major tokens: f [G*G, C] (CLS already dropped) ->
// out [(G/r)^2, r*r*C] with out[Y*(G/r)+X, (dy*r+dx)*C + c] = f[(r*Y+dy)*G + r*X+dx, c].
void op_pixel_shuffle(const float* f, int64_t grid, int64_t C, int64_t r, float* out);

}  // namespace moescope
