// Scaled dot-product attention over a layer's KV cache with GQA and Llama 4's masks (spec §2.4 items
// 5-6): a query at absolute position p sees keys at positions in [key_lo(p), p], where key_lo is the
// start of p's 8192-aligned chunk on chunked layers and 0 on global layers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/threadpool.h"

namespace moescope {

// Element type of a KV cache. F32 is the default and exact; BF16 halves the cache (keys and values
// rounded to bfloat16 once, as they enter it), which is what long contexts need: Scout's cache at
// 1M tokens is about 47 GiB in BF16 and 94 GiB in F32 (chunked layers hold one chunk either way).
enum class KvType : uint8_t { F32, BF16 };
inline size_t kv_elem_bytes(KvType t) { return t == KvType::BF16 ? 2 : 4; }

struct AttentionArgs {
  const float* q;          // [T, H, Dh] (already rotated / normed / temperature-scaled)
  const void* k_cache;     // [slots, Hkv, Dh] of kv_type; slot s holds position cache_pos0 + s
  const void* v_cache;     // [slots, Hkv, Dh] of kv_type
  KvType kv_type = KvType::F32;
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
