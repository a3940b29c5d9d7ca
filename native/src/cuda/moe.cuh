// MoE routing and expert plumbing on the device (spec §2.6; the CPU's Llama4Model::moe). The routing
// kernel is its own launch that writes router-logit-derived state to plain device arrays (experts,
// gates, the expert each slot runs), so hooks can always read them: no fused kernel hides routing.
//   route: per token, top-k on raw logits + router bias (ties to the lower index, like the CPU's
//     stable sort), expert interventions in the CPU's order (ablate: zero or re-route to the next
//     best non-ablated expert; replay; force route at j == 0), gate = sigmoid(raw logit of the chosen
//     expert). slot_expert[t*K+j] = expert, or -1 when ablated to zero.
//   gather_scaled: the expert INPUT rows x[t] * gate (SwiGLU is not linear: the gate scales the input).
//   combine: routed[t] = sum over non-zeroed slots j of y[t*K+j].
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace moescope::cuda {

// One layer's expert interventions, device pointers (all may be null / zero).
struct RouteIv {
  const float* bias = nullptr;      // [E] sum of the layer's router biases
  const uint8_t* ablate = nullptr;  // [E] bit0: zero (an entry before any re-route entry), bit1: re-route; 0 = not ablated
  int n_force = 0;
  const int64_t* force = nullptr;   // [n_force][2] (pos or -1, expert)
  int n_replay = 0;
  const int64_t* replay = nullptr;  // [n_replay][4] (pos0, k, count, offset into replay_experts)
  const int32_t* replay_experts = nullptr;
};

void route(const float* logits, int64_t T, int64_t E, int64_t K, const int64_t* pos, const RouteIv& iv, int32_t* experts, float* gates,
           int32_t* slot_expert, cudaStream_t s);
// out[i] = x[slot[i] / K] * gates[slot[i]] for i < n (slot == nullptr: slot[i] = i).
void gather_scaled(const float* x, int64_t D, int64_t K, const int32_t* slot, int64_t n, const float* gates, float* out, cudaStream_t s);
// y_slot[slot[i]] = y[i] for i < n.
void scatter_rows(const float* y, int64_t D, const int32_t* slot, int64_t n, float* y_slot, cudaStream_t s);
void combine(const float* y_slot, const int32_t* slot_expert, int64_t T, int64_t K, int64_t D, float* routed, cudaStream_t s);

}  // namespace moescope::cuda
