// The Llama 4 text model: load (GGUF or HF folder) and forward, spec §2. A Session holds one
// sequence's KV cache; a RunContext carries what a run observes and changes (hooks), its cancel flag
// and its progress callback.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hooks/hooks.h"
#include "model/llama4_config.h"
#include "model/llama4_weights.h"
#include "model/scratch.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "tokenizer/tokenizer.h"

namespace moescope {

class GgufFile;
class SafetensorsSet;
class ThreadPool;

// KV cache of one sequence. Chunked layers keep only the current chunk (slots hold positions
// chunk_start ..); global layers keep every position.
struct KvLayer {
  std::vector<uint8_t> k, v;  // [slots, Hkv, Dh] elements of the session's kv_type
  int64_t pos0 = 0;           // absolute position of slot 0
  int64_t n = 0;              // filled slots
};

struct Session {
  KvType kv_type = KvType::F32;
  std::vector<KvLayer> layers;
  int64_t n_past = 0;              // tokens already in the cache
  std::vector<int32_t> tokens;     // every token fed so far
  Scratch scratch;                 // the forward pass's working memory, reused call after call
};

struct RunContext {
  CaptureStore* capture = nullptr;
  const Interventions* interventions = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  // Opt-in int8 activations for quantized weights (never for the router); see ops/matmul.h.
  bool fast = false;
  // Which rows get final norm + logits: the last `logits_last` tokens of this call (0 = none).
  int64_t logits_last = 1;
  // Optional rows that replace token embeddings (image features at <|patch|> positions): pos -> row.
  std::function<const float*(int64_t pos)> embed_override;
};

class Llama4Model {
 public:
  static std::shared_ptr<Llama4Model> load(const std::string& path);

  const Llama4Config& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const Llama4Weights& weights() const { return weights_; }
  std::string path() const { return path_; }

  Session new_session(int64_t max_len, KvType kv_type = KvType::F32) const;
  // Feeds T tokens at positions s.n_past ..; returns logits [rows, V] for the last rc.logits_last rows.
  // Long prompts are split at chunk boundaries so chunked layers never hold two chunks.
  std::vector<float> forward(Session& s, const int32_t* tokens, int64_t T, RunContext& rc) const;
  // Bytes of weights one decoded token reads (attention, one routed expert per MoE layer, shared
  // experts, dense FFNs, the head; the embedding row is negligible).
  uint64_t active_bytes_per_token() const;

 private:
  std::vector<float> forward_segment(Session& s, const int32_t* tokens, int64_t T, RunContext& rc) const;
  void attention(int il, Session& s, const float* x, float* out, int64_t T, const int64_t* pos, RunContext& rc) const;
  void moe(int il, Scratch& sc, const float* x, float* out, int64_t T, const int64_t* pos, RunContext& rc) const;
  void embed(const int32_t* tokens, int64_t T, const int64_t* pos, float* out, RunContext& rc) const;

  std::string path_;
  Llama4Config config_;
  Llama4Weights weights_;
  std::shared_ptr<GgufFile> gguf_;
  std::shared_ptr<SafetensorsSet> safetensors_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace moescope
