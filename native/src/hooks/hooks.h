// Hook points: named places in the forward pass where activations can be captured and changed.
// Names follow TransformerLens where the meaning matches (blocks.{l}.hook_resid_pre, attn.hook_pattern,
// ...) with Llama 4 additions under mlp. (router logits, chosen experts and their sigmoid gates, routed
// and shared expert outputs). The table below is the single source of the names; the forward calls
// hooks by enum, never by string.
//
// Legend: T tokens, D hidden, H heads, Hkv kv heads, Dh head dim, E experts, K experts/token, V vocab,
// S key positions (0 .. run length - 1, absolute).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/llama4_config.h"

namespace moescope {

enum class HookPoint : uint8_t {
  Embed,          // hook_embed                        [T, D]
  ResidPre,       // blocks.l.hook_resid_pre           [T, D]
  Ln1,            // blocks.l.ln1.hook_normalized      [T, D]
  Q,              // blocks.l.attn.hook_q              [T, H, Dh]   projection, before RoPE
  K,              // blocks.l.attn.hook_k              [T, Hkv, Dh]
  V,              // blocks.l.attn.hook_v              [T, Hkv, Dh]
  RotQ,           // blocks.l.attn.hook_rot_q          [T, H, Dh]   as it enters the dot product (RoPE+QK-norm, or temperature)
  RotK,           // blocks.l.attn.hook_rot_k          [T, Hkv, Dh]
  Pattern,        // blocks.l.attn.hook_pattern        [H, T, S]    softmax probabilities after the real mask
  Z,              // blocks.l.attn.hook_z              [T, H, Dh]   per-head output before o_proj
  AttnOut,        // blocks.l.hook_attn_out            [T, D]
  ResidMid,       // blocks.l.hook_resid_mid           [T, D]
  Ln2,            // blocks.l.ln2.hook_normalized      [T, D]
  RouterLogits,   // blocks.l.mlp.hook_router_logits   [T, E]       MoE layers
  ExpertIndices,  // blocks.l.mlp.hook_expert_indices  [T, K] int32 MoE layers
  ExpertWeights,  // blocks.l.mlp.hook_expert_weights  [T, K]       sigmoid(logit) of each chosen expert
  RoutedOut,      // blocks.l.mlp.hook_routed_out      [T, D]       MoE layers
  SharedOut,      // blocks.l.mlp.hook_shared_out      [T, D]       MoE layers
  MlpOut,         // blocks.l.hook_mlp_out             [T, D]
  ResidPost,      // blocks.l.hook_resid_post          [T, D]
  LnFinal,        // ln_final.hook_normalized          [T, D]
  Logits,         // unembed.hook_out                  [T, V]
  COUNT
};

struct HookInfo {
  HookPoint id;
  const char* name;    // with "{l}" for the layer index
  bool per_layer;
  bool moe_only;
  bool is_int;
};
const HookInfo& hook_info(HookPoint p);
std::string hook_name(HookPoint p, int layer);
// Every hook name that exists for this model, in the order one forward fires them.
std::vector<std::string> hook_names(const Llama4Config& c);
// Parses "blocks.3.hook_resid_post" -> (ResidPost, 3). False if not a hook name of this model.
bool parse_hook_name(const std::string& name, const Llama4Config& c, HookPoint& p, int& layer);
// Row length (floats per token) of a hook point; Pattern returns H * S.
int64_t hook_row_len(HookPoint p, const Llama4Config& c, int64_t S);

// What to capture in one run. Rows are token positions; only positions in [pos_begin, pos_end)
// are kept. `heads` limits Pattern to some heads (empty = all).
struct CapturePlan {
  std::vector<std::vector<bool>> on;  // [HookPoint][layer]
  int64_t pos_begin = 0, pos_end = INT64_MAX;
  std::vector<int> heads;
  void init(const Llama4Config& c) { on.assign((size_t)HookPoint::COUNT, std::vector<bool>(c.n_layer > 0 ? c.n_layer : 1, false)); }
  bool wants(HookPoint p, int layer) const { return !on.empty() && on[(size_t)p][hook_info(p).per_layer ? layer : 0]; }
  bool any(HookPoint p) const;
  bool in_range(int64_t pos) const { return pos >= pos_begin && pos < pos_end; }
};

// Interventions applied natively inside the forward. Every one is recorded in the trace metadata.
struct Interventions {
  struct AblateExpert { int layer; int expert; bool reroute; };       // zero routed output, or re-route to the next best
  struct ForceRoute { int layer; int64_t pos; int expert; };          // pos < 0: every position
  struct RouterBias { int layer; std::vector<float> bias; };          // added to router logits before selection
  struct Steer { int layer; std::vector<float> vec; int64_t pos_begin = 0, pos_end = INT64_MAX; };  // added to resid_post
  struct Patch { HookPoint point; int layer; std::vector<int64_t> positions; std::vector<float> values; };  // rows replaced
  struct AblateHead { int layer; int head; };
  struct Replay { int layer; int64_t pos0; std::vector<int32_t> experts; int k; };  // experts[(pos-pos0)*k + j]
  std::vector<AblateExpert> ablate_experts;
  std::vector<ForceRoute> force_routes;
  std::vector<RouterBias> router_biases;
  std::vector<Steer> steers;
  std::vector<Patch> patches;
  std::vector<AblateHead> ablate_heads;
  std::vector<Replay> replays;
  bool empty() const {
    return ablate_experts.empty() && force_routes.empty() && router_biases.empty() && steers.empty() && patches.empty() &&
           ablate_heads.empty() && replays.empty();
  }
};

// One captured tensor. Storage is shared so the binding can hand it to JavaScript without a copy.
struct Captured {
  std::string name;
  bool is_int = false;
  std::vector<int64_t> shape;
  std::shared_ptr<std::vector<float>> f;
  std::shared_ptr<std::vector<int32_t>> i;
  std::vector<int64_t> positions;  // token position of each row (first dimension; for Pattern the second)
};

// Collects captured rows during a run (prefill and every generated token) and finalises shapes.
class CaptureStore {
 public:
  CaptureStore(const Llama4Config& c, const CapturePlan& plan, int64_t max_len);
  // Copy rows of `data` ([T, row] at positions pos[0..T)) that the plan wants.
  void add(HookPoint p, int layer, const float* data, int64_t T, int64_t row, const int64_t* pos);
  void add_int(HookPoint p, int layer, const int32_t* data, int64_t T, int64_t row, const int64_t* pos);
  // Pattern rows are written in place by the attention op: destination for (position, head).
  float* pattern_row(int layer, int64_t pos, int head);
  void begin_pattern(int layer, int64_t T, const int64_t* pos);  // reserve rows for this step
  std::vector<Captured> finish(int64_t run_len);
  const CapturePlan& plan() const { return plan_; }
  int64_t max_len() const { return max_len_; }

 private:
  struct Buf {
    std::vector<float> f;
    std::vector<int32_t> i;
    std::vector<int64_t> pos;
    int64_t row = 0;
  };
  Buf& buf(HookPoint p, int layer);
  const Llama4Config& c_;
  CapturePlan plan_;
  int64_t max_len_;
  std::map<std::pair<int, int>, Buf> bufs_;
  std::vector<int> head_slot_;  // head -> index among captured heads, -1 if not captured
  std::map<std::pair<int, int64_t>, int64_t> pattern_row_index_;  // (layer, pos) -> row
};

// Bytes a plan would capture over a run of `len` tokens (used to refuse plans over budget).
uint64_t estimate_capture_bytes(const Llama4Config& c, const CapturePlan& plan, int64_t len);

}  // namespace moescope
