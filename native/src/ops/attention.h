// Scaled dot-product attention over a layer's KV cache with GQA and Llama 4's masks (spec §2.4 items
// 5-6): a query at absolute position p sees keys at positions in [key_lo(p), p], where key_lo is the
// start of p's 8192-aligned chunk on chunked layers and 0 on global layers.
#pragma once
#include <cstdint>

#include "ops/threadpool.h"

namespace moescope {

struct AttentionArgs {
  const float* q;          // [T, H, Dh] (already rotated / normed / temperature-scaled)
  const float* k_cache;    // [slots, Hkv, Dh]; slot s holds position cache_pos0 + s
  const float* v_cache;    // [slots, Hkv, Dh]
  int64_t cache_pos0;      // absolute position of slot 0
  int64_t T, H, Hkv, Dh;
  const int64_t* pos;      // [T] absolute query positions
  int64_t chunk;           // chunk size on chunked layers, 0 on global layers
  float* out;              // [T, H, Dh]
  // Optional exact probabilities for captured rows: probs(t, h) -> destination of length
  // key_span (absolute key positions 0..key_span-1; masked keys get 0), or nullptr to skip.
  float* (*probs_dst)(void* ctx, int64_t t, int64_t h) = nullptr;
  void* probs_ctx = nullptr;
  const uint8_t* head_mask = nullptr;  // [H], 1 = ablated head: its output is zero
};

void op_attention(ThreadPool& pool, const AttentionArgs& a);

}  // namespace moescope
