#include "model/generate.h"

#include <chrono>

#include "common/error.h"
#include "cuda/device.h"

namespace moescope {

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

RunResult run_model(const Llama4Model& m, const RunRequest& req, const std::atomic<bool>* cancel, const RunCallbacks& cb) {
  const Llama4Config& c = m.config();
  MOESCOPE_CHECK(!req.prompt.empty(), "BAD_ARGUMENT", "the prompt is empty");
  MOESCOPE_CHECK(req.max_new_tokens >= 0, "BAD_ARGUMENT", "max_new_tokens must be >= 0");
  const int64_t n_prompt = (int64_t)req.prompt.size();
  const int64_t max_len = n_prompt + req.max_new_tokens;
  RunResult res;
  // Device backend (issue 9): when the binding attached one to this model, it runs the forward and
  // holds the KV cache; the host Session then only counts positions and tokens.
  std::shared_ptr<DeviceBackend> dev = model_device(&m);
  std::unique_ptr<DeviceRun> drun = dev ? dev->new_run(max_len, req.kv_type) : nullptr;
  Session s = drun ? Session{} : m.new_session(max_len, req.kv_type);
  std::unique_ptr<CaptureStore> store;
  if (req.capture) store.reset(new CaptureStore(c, req.plan, max_len));
  RunContext rc;
  rc.capture = store.get();
  rc.interventions = req.interventions.empty() ? nullptr : &req.interventions;
  rc.cancel = cancel;
  rc.fast = req.fast;
  rc.embed_override = req.embed_override;
  rc.logits_last = std::max<int64_t>(std::min(req.logits_last, n_prompt), req.max_new_tokens > 0 ? 1 : 0);
  auto forward = [&](const int32_t* t, int64_t n) { return drun ? drun->forward(s, t, n, rc) : m.forward(s, t, n, rc); };

  double t0 = now();
  if (cb.on_progress) cb.on_progress("prefill", 0, n_prompt);
  std::vector<float> logits = forward(req.prompt.data(), n_prompt);
  res.prefill_seconds = now() - t0;
  if (cb.on_progress) cb.on_progress("prefill", n_prompt, n_prompt);
  const int64_t rows = (int64_t)logits.size() / c.n_vocab;
  const int64_t keep = std::min(rows, std::max<int64_t>(0, req.logits_last));
  res.logits.assign(logits.end() - keep * c.n_vocab, logits.end());
  res.logits_rows = keep;

  res.stop_reason = req.max_new_tokens > 0 ? "length" : "none";
  Sampler sampler(req.sampling);
  std::vector<float> last(logits.end() - (rows > 0 ? c.n_vocab : 0), logits.end());
  t0 = now();
  for (int64_t i = 0; i < req.max_new_tokens; i++) {
    int32_t tok = sampler.sample(last.data(), c.n_vocab);
    res.generated.push_back(tok);
    if (cb.on_token) cb.on_token(tok);
    if (cb.on_progress) cb.on_progress("decode", i + 1, req.max_new_tokens);
    if (req.stop_at_eog && m.tokenizer().is_eog(tok)) { res.stop_reason = "eog"; break; }
    // With a capture, the last token is fed too so that every generated token has its routing and attention.
    if (i + 1 == req.max_new_tokens && !req.capture) break;
    rc.logits_last = 1;
    last = forward(&tok, 1);  // each generated token's hooks fire here, at its position
  }
  res.decode_seconds = now() - t0;
  if (store) res.captured = store->finish(s.n_past);
  return res;
}

}  // namespace moescope
