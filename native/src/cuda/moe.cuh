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

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "hooks/hooks.h"

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

constexpr int kMaxExperts = 256;

// Next best expert not yet taken (strictly greater wins, so ties go to the lower index), or -1.
__host__ __device__ inline int take_best(const float* sel, int64_t E, uint32_t* taken) {
  int best = -1;
  float bv = 0.f;
  for (int e = 0; e < E; e++) {
    if (taken[e >> 5] & (1u << (e & 31))) continue;
    if (best < 0 || sel[e] > bv) { best = e; bv = sel[e]; }
  }
  if (best >= 0) taken[best >> 5] |= 1u << (best & 31);
  return best;
}

// One token's routing (the body of the routing kernel; __host__ too so that
// native/tools/cuda-decode-check.cu replays it against the CPU's rule without a GPU).
__host__ __device__ inline void route_token(const float* z, int64_t E, int64_t K, int64_t pos, const RouteIv& iv, int32_t* experts,
                                            float* gates, int32_t* slot_expert) {
  float sel[kMaxExperts];
  uint32_t taken[kMaxExperts / 32] = {0};
  for (int e = 0; e < E; e++) sel[e] = iv.bias ? z[e] + iv.bias[e] : z[e];
  for (int64_t j = 0; j < K; j++) {
    int e = take_best(sel, E, taken);
    bool zeroed = false;
    if (iv.ablate && e >= 0 && iv.ablate[e]) {
      if (iv.ablate[e] & 1) zeroed = true;
      if (iv.ablate[e] & 2) {  // the next best expert that is not ablated
        int c;
        do { c = take_best(sel, E, taken); } while (c >= 0 && iv.ablate[c]);
        if (c >= 0) e = c;
      }
    }
    for (int r = 0; r < iv.n_replay; r++) {
      const int64_t* rp = iv.replay + 4 * r;
      const int64_t row = pos - rp[0];
      if (row >= 0 && (row + 1) * rp[1] <= rp[2] && j < rp[1]) e = iv.replay_experts[rp[3] + row * rp[1] + j];
    }
    for (int f = 0; f < iv.n_force; f++)
      if ((iv.force[2 * f] < 0 || iv.force[2 * f] == pos) && j == 0) e = (int)iv.force[2 * f + 1];
    if (e < 0 || e >= E) e = 0;  // unreachable: the host validated every intervention's expert ids
    experts[j] = e;
    gates[j] = 1.0f / (1.0f + expf(-z[e]));
    slot_expert[j] = zeroed ? -1 : e;
  }
}

// One layer's expert interventions as host tables, in RouteIv's layout (uploaded by Llama4Cuda). The
// ablation flags encode the CPU's loop over ablate entries: a re-route entry re-routes; a zeroing
// entry zeroes only if it comes before any re-route entry of that expert (after one, the CPU has
// already moved to another expert and the entry no longer matches). Experts named by force routes
// and replays are validated here (BAD_INTERVENTION), as the CPU does when it meets them.
struct RouteTables {
  std::vector<float> bias;      // empty: none
  std::vector<uint8_t> ablate;  // empty: none
  std::vector<int64_t> force;   // pairs
  std::vector<int64_t> replay;  // quadruples
  std::vector<int32_t> replay_experts;
};
inline RouteTables route_tables(const Interventions& iv, int il, int64_t E) {
  RouteTables t;
  auto bad = [&](int64_t e) {
    MOESCOPE_CHECK(e >= 0 && e < E, "BAD_INTERVENTION", "layer %d: expert %lld is outside 0..%lld", il, (long long)e, (long long)E - 1);
  };
  for (auto& rb : iv.router_biases)
    if (rb.layer == il) {
      t.bias.resize(E, 0.f);
      for (int64_t e = 0; e < E && e < (int64_t)rb.bias.size(); e++) t.bias[e] += rb.bias[e];
    }
  for (auto& a : iv.ablate_experts) {
    if (a.layer != il || a.expert < 0 || a.expert >= E) continue;
    t.ablate.resize(E, 0);
    if (a.reroute) t.ablate[a.expert] |= 2;
    else if (!(t.ablate[a.expert] & 2)) t.ablate[a.expert] |= 1;
  }
  for (auto& f : iv.force_routes)
    if (f.layer == il) { bad(f.expert); t.force.push_back(f.pos); t.force.push_back(f.expert); }
  for (auto& r : iv.replays) {
    if (r.layer != il) continue;
    for (int32_t e : r.experts) bad(e);
    t.replay.insert(t.replay.end(), {r.pos0, (int64_t)r.k, (int64_t)r.experts.size(), (int64_t)t.replay_experts.size()});
    t.replay_experts.insert(t.replay_experts.end(), r.experts.begin(), r.experts.end());
  }
  return t;
}

void route(const float* logits, int64_t T, int64_t E, int64_t K, const int64_t* pos, const RouteIv& iv, int32_t* experts, float* gates,
           int32_t* slot_expert, cudaStream_t s);
// out[i] = x[slot[i] / K] * gates[slot[i]] for i < n (slot == nullptr: slot[i] = i).
void gather_scaled(const float* x, int64_t D, int64_t K, const int32_t* slot, int64_t n, const float* gates, float* out, cudaStream_t s);
// y_slot[slot[i]] = y[i] for i < n.
void scatter_rows(const float* y, int64_t D, const int32_t* slot, int64_t n, float* y_slot, cudaStream_t s);
void combine(const float* y_slot, const int32_t* slot_expert, int64_t T, int64_t K, int64_t D, float* routed, cudaStream_t s);

}  // namespace moescope::cuda
