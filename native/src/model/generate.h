// One run of the model: prefill a prompt, then generate token by token through the KV cache, with
// the run's capture plan and interventions active for every step. Independent of Node (the addon
// and any C++ tool call it).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hooks/hooks.h"
#include "model/llama4.h"
#include "model/sampler.h"

namespace moescope {

struct RunRequest {
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 0;
  SamplingParams sampling;
  int64_t logits_last = 1;   // prompt rows whose logits are returned
  bool stop_at_eog = true;
  bool fast = false;         // opt-in int8 activations (not exact)
  KvType kv_type = KvType::F32;  // BF16: half the KV memory, keys/values rounded once (not exact)
  bool capture = false;
  CapturePlan plan;
  Interventions interventions;
  std::function<const float*(int64_t pos)> embed_override;
};

struct RunResult {
  std::vector<int32_t> generated;
  std::vector<float> logits;  // [logits_rows, V]: the last prompt rows
  int64_t logits_rows = 0;
  std::vector<Captured> captured;
  std::string stop_reason;    // "eog", "length", "none"
  double prefill_seconds = 0, decode_seconds = 0;
};

struct RunCallbacks {
  std::function<void(int32_t token)> on_token;
  std::function<void(const char* phase, int64_t done, int64_t total)> on_progress;
};

RunResult run_model(const Llama4Model& m, const RunRequest& req, const std::atomic<bool>* cancel, const RunCallbacks& cb);

}  // namespace moescope
