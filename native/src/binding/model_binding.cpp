// The model in JavaScript: loadModel(path) -> Promise<NativeModel>, NativeModel.run(request, cancel,
// onEvent) -> Promise<result>, a CancelFlag, and nativeSpin (a cancellable native busy loop the kernel
// tests use). Loading and running happen on worker threads; the JS thread only converts arguments and
// results. Captured tensors are handed over as external ArrayBuffers (no copy).
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "binding/errors.h"
#include "binding/registry.h"
#include "cuda/device.h"  // issue 9
#include "hooks/hooks.h"
#include "model/generate.h"
#include "model/llama4.h"
#include "ops/quant.h"
#include "ops/threadpool.h"

namespace moescope::binding {

namespace {

using Flag = std::shared_ptr<std::atomic<bool>>;

// ---------------------------------------------------------------------------------------------------
// CancelFlag: set from JS (an AbortSignal listener), read by native loops between layers.
class CancelFlag : public Napi::ObjectWrap<CancelFlag> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "CancelFlag",
                       {InstanceMethod("cancel", &CancelFlag::Cancel), InstanceAccessor("cancelled", &CancelFlag::Cancelled, nullptr)});
  }
  CancelFlag(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelFlag>(info), flag(std::make_shared<std::atomic<bool>>(false)) {}
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    flag->store(true);
    return info.Env().Undefined();
  }
  Napi::Value Cancelled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), flag->load()); }
  Flag flag;
};
Napi::FunctionReference* g_cancel_ctor = nullptr;

Flag flag_of(const Napi::Value& v) {
  if (v.IsObject() && g_cancel_ctor && v.As<Napi::Object>().InstanceOf(g_cancel_ctor->Value()))
    return CancelFlag::Unwrap(v.As<Napi::Object>())->flag;
  return std::make_shared<std::atomic<bool>>(false);
}

// ---------------------------------------------------------------------------------------------------
// Argument helpers (the TS layer validates first; these re-check and never trust).
int64_t get_int(const Napi::Object& o, const char* key, int64_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("expected a number for ") + key);
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != d || d < -9.0e15 || d > 9.0e15) throw Napi::TypeError::New(o.Env(), std::string("bad number for ") + key);
  return (int64_t)d;
}
double get_num(const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}
template <typename T, napi_typedarray_type TA>
std::vector<T> get_typed(const Napi::Value& v, const char* what) {
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == TA) {
    auto a = v.As<Napi::TypedArrayOf<T>>();
    return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
  }
  if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    std::vector<T> out(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string("expected numbers in ") + what);
      out[i] = (T)e.As<Napi::Number>().DoubleValue();
    }
    return out;
  }
  throw Napi::TypeError::New(v.Env(), std::string("expected an array for ") + what);
}
std::vector<float> get_f32(const Napi::Value& v, const char* what) { return get_typed<float, napi_float32_array>(v, what); }
std::vector<int32_t> get_i32(const Napi::Value& v, const char* what) { return get_typed<int32_t, napi_int32_array>(v, what); }
Napi::Array get_array(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return Napi::Array::New(o.Env(), 0);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("expected an array for ") + key);
  return v.As<Napi::Array>();
}

void check_layer(const Llama4Config& c, int64_t l, const char* what) {
  MOESCOPE_CHECK(l >= 0 && l < c.n_layer, "BAD_INTERVENTION", "%s: layer %lld is outside 0..%lld", what, (long long)l, (long long)c.n_layer - 1);
}
void check_moe_layer(const Llama4Config& c, int64_t l, const char* what) {
  check_layer(c, l, what);
  MOESCOPE_CHECK(c.layers[l].is_moe, "BAD_INTERVENTION", "%s: layer %lld is a dense layer (no experts)", what, (long long)l);
}
void check_expert(const Llama4Config& c, int64_t e, const char* what) {
  MOESCOPE_CHECK(e >= 0 && e < c.n_expert, "BAD_INTERVENTION", "%s: expert %lld is outside 0..%lld", what, (long long)e, (long long)c.n_expert - 1);
}

CapturePlan parse_plan(const Llama4Config& c, const Napi::Object& o) {
  CapturePlan plan;
  plan.init(c);
  Napi::Array names = get_array(o, "names");
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string n = names.Get(i).ToString();
    HookPoint p;
    int layer;
    MOESCOPE_CHECK(parse_hook_name(n, c, p, layer), "CAPTURE_BAD_PLAN", "capture plan: \"%s\" is not a hook point of this model (see model.hookNames())",
                   n.c_str());
    plan.on[(size_t)p][hook_info(p).per_layer ? layer : 0] = true;
  }
  plan.pos_begin = get_int(o, "posBegin", 0);
  plan.pos_end = get_int(o, "posEnd", INT64_MAX);
  Napi::Array heads = get_array(o, "heads");
  for (uint32_t i = 0; i < heads.Length(); i++) {
    int64_t h = heads.Get(i).ToNumber().Int64Value();
    MOESCOPE_CHECK(h >= 0 && h < c.n_head, "CAPTURE_BAD_PLAN", "capture plan: head %lld is outside 0..%lld", (long long)h, (long long)c.n_head - 1);
    plan.heads.push_back((int)h);
  }
  return plan;
}

Interventions parse_interventions(const Llama4Config& c, const Napi::Object& o) {
  Interventions iv;
  Napi::Array a = get_array(o, "ablateExperts");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object x = a.Get(i).As<Napi::Object>();
    int64_t l = get_int(x, "layer", -1), e = get_int(x, "expert", -1);
    check_moe_layer(c, l, "ablateExperts");
    check_expert(c, e, "ablateExperts");
    iv.ablate_experts.push_back({(int)l, (int)e, x.Get("reroute").ToBoolean().Value()});
  }
  a = get_array(o, "forceRoutes");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object x = a.Get(i).As<Napi::Object>();
    int64_t l = get_int(x, "layer", -1), e = get_int(x, "expert", -1);
    check_moe_layer(c, l, "forceRoutes");
    check_expert(c, e, "forceRoutes");
    iv.force_routes.push_back({(int)l, get_int(x, "pos", -1), (int)e});
  }
  a = get_array(o, "routerBiases");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object x = a.Get(i).As<Napi::Object>();
    int64_t l = get_int(x, "layer", -1);
    check_moe_layer(c, l, "routerBiases");
    auto b = get_f32(x.Get("bias"), "routerBiases.bias");
    MOESCOPE_CHECK((int64_t)b.size() == c.n_expert, "BAD_INTERVENTION", "routerBiases: bias has %zu values for %lld experts", b.size(), (long long)c.n_expert);
    iv.router_biases.push_back({(int)l, std::move(b)});
  }
  a = get_array(o, "steers");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object x = a.Get(i).As<Napi::Object>();
    int64_t l = get_int(x, "layer", -1);
    check_layer(c, l, "steers");
    auto v = get_f32(x.Get("vector"), "steers.vector");
    MOESCOPE_CHECK((int64_t)v.size() == c.n_embd, "BAD_INTERVENTION", "steers: vector has %zu values, the residual stream %lld", v.size(), (long long)c.n_embd);
    Interventions::Steer st{(int)l, std::move(v)};
    st.pos_begin = get_int(x, "posBegin", 0);
    st.pos_end = get_int(x, "posEnd", INT64_MAX);
    iv.steers.push_back(std::move(st));
  }
  a = get_array(o, "patches");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object x = a.Get(i).As<Napi::Object>();
    std::string n = x.Get("name").ToString();
    HookPoint p;
    int layer;
    MOESCOPE_CHECK(parse_hook_name(n, c, p, layer) && !hook_info(p).is_int && p != HookPoint::Pattern, "BAD_INTERVENTION",
                   "patches: \"%s\" is not a patchable hook point", n.c_str());
    Interventions::Patch pt{p, layer};
    for (int32_t q : get_i32(x.Get("positions"), "patches.positions")) pt.positions.push_back(q);
    pt.values = get_f32(x.Get("values"), "patches.values");
    int64_t row = hook_row_len(p, c, 0);
    MOESCOPE_CHECK((int64_t)pt.values.size() == row * (int64_t)pt.positions.size(), "BAD_INTERVENTION",
                   "patches: %s needs %lld values per position, got %zu for %zu positions", n.c_str(), (long long)row, pt.values.size(), pt.positions.size());
    iv.patches.push_back(std::move(pt));
  }
  a = get_array(o, "ablateHeads");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object x = a.Get(i).As<Napi::Object>();
    int64_t l = get_int(x, "layer", -1), h = get_int(x, "head", -1);
    check_layer(c, l, "ablateHeads");
    MOESCOPE_CHECK(h >= 0 && h < c.n_head, "BAD_INTERVENTION", "ablateHeads: head %lld is outside 0..%lld", (long long)h, (long long)c.n_head - 1);
    iv.ablate_heads.push_back({(int)l, (int)h});
  }
  a = get_array(o, "replays");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object x = a.Get(i).As<Napi::Object>();
    int64_t l = get_int(x, "layer", -1), k = get_int(x, "k", c.n_expert_used);
    check_moe_layer(c, l, "replays");
    auto ex = get_i32(x.Get("experts"), "replays.experts");
    for (int32_t e : ex) check_expert(c, e, "replays");
    MOESCOPE_CHECK(k >= 1 && k <= c.n_expert_used, "BAD_INTERVENTION", "replays: k = %lld", (long long)k);
    iv.replays.push_back({(int)l, get_int(x, "pos0", 0), std::move(ex), (int)k});
  }
  return iv;
}

// A typed array over native memory: JS keeps the vector alive through the finalizer, nothing is copied.
template <typename T, typename Array>
Array external_array(Napi::Env env, std::shared_ptr<std::vector<T>> v) {
  const size_t n = v->size();
  if (n == 0) return Array::New(env, 0);
  auto* keep = new std::shared_ptr<std::vector<T>>(std::move(v));
  auto ab = Napi::ArrayBuffer::New(env, (*keep)->data(), n * sizeof(T), [](Napi::Env, void*, std::shared_ptr<std::vector<T>>* k) { delete k; }, keep);
  return Array::New(env, n, ab, 0);
}

Napi::Value captured_to_js(Napi::Env env, Captured& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", c.name);
  o.Set("dtype", c.is_int ? "i32" : "f32");
  Napi::Array shape = Napi::Array::New(env, c.shape.size());
  for (size_t i = 0; i < c.shape.size(); i++) shape.Set((uint32_t)i, Napi::Number::New(env, (double)c.shape[i]));
  o.Set("shape", shape);
  if (c.is_int) o.Set("data", external_array<int32_t, Napi::Int32Array>(env, c.i));
  else o.Set("data", external_array<float, Napi::Float32Array>(env, c.f));
  Napi::Float64Array pos = Napi::Float64Array::New(env, c.positions.size());
  for (size_t i = 0; i < c.positions.size(); i++) pos[i] = (double)c.positions[i];
  o.Set("positions", pos);
  return o;
}

// ---------------------------------------------------------------------------------------------------
// Workers
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, std::string device)
      : Napi::AsyncWorker(env), path_(std::move(path)), device_(std::move(device)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    err_.run([&] {
      model_ = Llama4Model::load(path_);
      set_model_device(model_, pick_device(device_, model_));  // issue 9: nullptr = CPU
    });
  }
  void OnOK() override;
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string path_;
  std::string device_;  // "cpu" | "cuda" | "auto"
  Napi::Promise::Deferred deferred_;
  ErrorSlot err_;
  std::shared_ptr<Llama4Model> model_;
};

struct RunEvent {
  int kind;  // 0 token, 1 progress
  int32_t token;
  const char* phase;
  int64_t done, total;
};

class RunWorker : public Napi::AsyncProgressQueueWorker<RunEvent> {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Llama4Model> m, RunRequest req, Flag cancel, Napi::Function on_event)
      : Napi::AsyncProgressQueueWorker<RunEvent>(env), m_(std::move(m)), req_(std::move(req)), cancel_(std::move(cancel)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    if (!on_event.IsEmpty()) on_event_ = Napi::Persistent(on_event);
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute(const ExecutionProgress& progress) override {
    err_.run([&] {
      RunCallbacks cb;
      cb.on_token = [&](int32_t t) { RunEvent e{0, t, "", 0, 0}; progress.Send(&e, 1); };
      int64_t last_sent = -1;
      cb.on_progress = [&](const char* phase, int64_t done, int64_t total) {
        if (done == last_sent) return;
        last_sent = done;
        RunEvent e{1, 0, phase, done, total};
        progress.Send(&e, 1);
      };
      res_ = run_model(*m_, req_, cancel_.get(), cb);
    });
  }
  void OnProgress(const RunEvent* ev, size_t n) override {
    if (on_event_.IsEmpty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < n; i++) {
      Napi::Object o = Napi::Object::New(env);
      if (ev[i].kind == 0) {
        o.Set("type", "token");
        o.Set("token", ev[i].token);
      } else {
        o.Set("type", "progress");
        o.Set("phase", ev[i].phase);
        o.Set("done", (double)ev[i].done);
        o.Set("total", (double)ev[i].total);
      }
      // A throwing callback must not take the run down with it.
      try {
        on_event_.Call({o});
      } catch (const Napi::Error&) {
      }
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_.set) {
      deferred_.Reject(make_error(env, err_.code, err_.message).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    Napi::Int32Array gen = Napi::Int32Array::New(env, res_.generated.size());
    for (size_t i = 0; i < res_.generated.size(); i++) gen[i] = res_.generated[i];
    r.Set("generated", gen);
    r.Set("logits", external_array<float, Napi::Float32Array>(env, std::make_shared<std::vector<float>>(std::move(res_.logits))));
    r.Set("logitsRows", (double)res_.logits_rows);
    r.Set("stopReason", res_.stop_reason);
    r.Set("prefillSeconds", res_.prefill_seconds);
    r.Set("decodeSeconds", res_.decode_seconds);
    Napi::Array cap = Napi::Array::New(env, res_.captured.size());
    for (size_t i = 0; i < res_.captured.size(); i++) cap.Set((uint32_t)i, captured_to_js(env, res_.captured[i]));
    r.Set("captured", cap);
    deferred_.Resolve(r);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::shared_ptr<Llama4Model> m_;
  RunRequest req_;
  Flag cancel_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_event_;
  ErrorSlot err_;
  RunResult res_;
};

// ---------------------------------------------------------------------------------------------------
// NativeModel
class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {
                           InstanceMethod("info", &NativeModel::Info),
                           InstanceMethod("tokenize", &NativeModel::Tokenize),
                           InstanceMethod("detokenize", &NativeModel::Detokenize),
                           InstanceMethod("tokenBytes", &NativeModel::TokenBytes),
                           InstanceMethod("tokenId", &NativeModel::TokenId),
                           InstanceMethod("hookNames", &NativeModel::HookNames),
                           InstanceMethod("estimateCapture", &NativeModel::EstimateCapture),
                           InstanceMethod("run", &NativeModel::Run),
                       });
  }
  NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {}
  std::shared_ptr<Llama4Model> model;

 private:
  const Llama4Model& m(const Napi::CallbackInfo& info) {
    if (!model) throw make_error(info.Env(), "NOT_LOADED", "this model handle holds no model");
    return *model;
  }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    const Llama4Model& mm = m(info);
    const Llama4Config& c = mm.config();
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", mm.path());
    o.Set("format", c.format);
    o.Set("source", c.source);
    o.Set("nVocab", (double)c.n_vocab);
    o.Set("nEmbd", (double)c.n_embd);
    o.Set("nLayer", (double)c.n_layer);
    o.Set("nHead", (double)c.n_head);
    o.Set("nHeadKv", (double)c.n_head_kv);
    o.Set("headDim", (double)c.head_dim);
    o.Set("nFfExp", (double)c.n_ff_exp);
    o.Set("nFf", (double)c.n_ff);
    o.Set("nExpert", (double)c.n_expert);
    o.Set("nExpertUsed", (double)c.n_expert_used);
    o.Set("attnChunk", (double)c.attn_chunk);
    o.Set("ropeTheta", c.rope_theta);
    o.Set("ropeScaling", c.rope_scaling);
    o.Set("rmsEps", c.rms_eps);
    o.Set("contextLength", (double)c.context_length);
    o.Set("imageTokenId", c.image_token_id);
    Napi::Array layers = Napi::Array::New(env, c.layers.size());
    for (size_t i = 0; i < c.layers.size(); i++) {
      Napi::Object l = Napi::Object::New(env);
      l.Set("useRope", c.layers[i].use_rope);
      l.Set("chunkedAttn", c.layers[i].chunked_attn);
      l.Set("qkNorm", c.layers[i].qk_norm);
      l.Set("temperatureTuning", c.layers[i].temperature_tuning);
      l.Set("isMoe", c.layers[i].is_moe);
      layers.Set((uint32_t)i, l);
    }
    o.Set("layers", layers);
    const TokenizerSpec& sp = mm.tokenizer().spec();
    o.Set("bosId", sp.bos_id);
    o.Set("eosId", sp.eos_id);
    o.Set("addBos", sp.add_bos);
    Napi::Array eog = Napi::Array::New(env, sp.eog_ids.size());
    for (size_t i = 0; i < sp.eog_ids.size(); i++) eog.Set((uint32_t)i, sp.eog_ids[i]);
    o.Set("eogIds", eog);
    o.Set("mappedBytes", (double)mm.weights().mapped_bytes);
    o.Set("activeBytesPerToken", (double)mm.active_bytes_per_token());
    o.Set("describe", c.describe());
    {  // issue 9: which device runs this model
      auto dev = model_device(&mm);
      o.Set("device", dev ? "cuda" : "cpu");
      o.Set("deviceName", dev ? dev->describe() : std::string("cpu"));
    }
    o.Set("dotKernel", dot_kernel_name());
    o.Set("threads", default_pool().size());
    return o;
  }
  Napi::Value Tokenize(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      std::string text = info[0].ToString();
      bool add_bos = info[1].ToBoolean(), special = info[2].ToBoolean();
      auto ids = m(info).tokenizer().encode(text, add_bos, special);
      auto a = Napi::Int32Array::New(info.Env(), ids.size());
      for (size_t i = 0; i < ids.size(); i++) a[i] = ids[i];
      return a;
    });
  }
  Napi::Value Detokenize(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto ids = get_i32(info[0], "ids");
      std::string s = m(info).tokenizer().decode(ids);
      return Napi::Buffer<char>::Copy(info.Env(), s.data(), s.size());
    });
  }
  Napi::Value TokenBytes(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      std::string s = m(info).tokenizer().token_bytes(info[0].ToNumber().Int32Value());
      return Napi::Buffer<char>::Copy(info.Env(), s.data(), s.size());
    });
  }
  Napi::Value TokenId(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), m(info).tokenizer().token_id(info[0].ToString().Utf8Value())); });
  }
  Napi::Value HookNames(const Napi::CallbackInfo& info) {
    auto names = hook_names(m(info).config());
    Napi::Array a = Napi::Array::New(info.Env(), names.size());
    for (size_t i = 0; i < names.size(); i++) a.Set((uint32_t)i, names[i]);
    return a;
  }
  Napi::Value EstimateCapture(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      CapturePlan plan = parse_plan(m(info).config(), info[0].As<Napi::Object>());
      int64_t len = info[1].ToNumber().Int64Value();
      return Napi::Number::New(info.Env(), (double)estimate_capture_bytes(m(info).config(), plan, len));
    });
  }
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const Llama4Config& c = m(info).config();
      if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "run(request, cancel, onEvent): request must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      RunRequest req;
      req.prompt = get_i32(o.Get("prompt"), "prompt");
      for (int32_t t : req.prompt)
        MOESCOPE_CHECK(t >= 0 && t < c.n_vocab, "BAD_TOKEN", "prompt token %d is outside the vocabulary (0..%lld)", t, (long long)c.n_vocab - 1);
      req.max_new_tokens = get_int(o, "maxNewTokens", 0);
      req.sampling.temperature = (float)get_num(o, "temperature", 0);
      req.sampling.top_k = (int)get_int(o, "topK", 0);
      req.sampling.top_p = (float)get_num(o, "topP", 1);
      req.sampling.seed = (uint64_t)get_int(o, "seed", 0);
      req.logits_last = get_int(o, "logitsLast", 1);
      req.stop_at_eog = !o.Has("stopAtEog") || o.Get("stopAtEog").ToBoolean();
      if (o.Has("precision")) {
        std::string pr = o.Get("precision").ToString();
        MOESCOPE_CHECK(pr == "exact" || pr == "fast", "BAD_ARGUMENT", "precision must be \"exact\" or \"fast\", not \"%s\"", pr.c_str());
        req.fast = pr == "fast";
      }
      if (o.Has("kvCache")) {
        std::string kv = o.Get("kvCache").ToString();
        MOESCOPE_CHECK(kv == "f32" || kv == "bf16", "BAD_ARGUMENT", "kvCache must be \"f32\" or \"bf16\", not \"%s\"", kv.c_str());
        req.kv_type = kv == "bf16" ? KvType::BF16 : KvType::F32;
      }
      if (o.Get("capture").IsObject()) {
        req.capture = true;
        req.plan = parse_plan(c, o.Get("capture").As<Napi::Object>());
      }
      if (o.Get("interventions").IsObject()) req.interventions = parse_interventions(c, o.Get("interventions").As<Napi::Object>());
      if (o.Get("embedOverride").IsObject()) {
        Napi::Object eo = o.Get("embedOverride").As<Napi::Object>();
        auto positions = get_i32(eo.Get("positions"), "embedOverride.positions");
        auto rows = std::make_shared<std::vector<float>>(get_f32(eo.Get("rows"), "embedOverride.rows"));
        MOESCOPE_CHECK((int64_t)rows->size() == (int64_t)positions.size() * c.n_embd, "BAD_ARGUMENT",
                       "embedOverride: %zu values for %zu positions of %lld", rows->size(), positions.size(), (long long)c.n_embd);
        auto index = std::make_shared<std::map<int64_t, int64_t>>();
        for (size_t i = 0; i < positions.size(); i++) (*index)[positions[i]] = (int64_t)i;
        int64_t D = c.n_embd;
        req.embed_override = [rows, index, D](int64_t pos) -> const float* {
          auto it = index->find(pos);
          return it == index->end() ? nullptr : rows->data() + it->second * D;
        };
      }
      Napi::Function on_event = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
      auto* w = new RunWorker(info.Env(), model, std::move(req), flag_of(info[1]), on_event);
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }
};
Napi::FunctionReference* g_model_ctor = nullptr;

void LoadWorker::OnOK() {
  Napi::Env env = Env();
  if (err_.set) {
    deferred_.Reject(make_error(env, err_.code, err_.message).Value());
    return;
  }
  Napi::Object o = g_model_ctor->New({});
  NativeModel::Unwrap(o)->model = model_;
  deferred_.Resolve(o);
}

// ---------------------------------------------------------------------------------------------------
class SpinWorker : public Napi::AsyncWorker {
 public:
  SpinWorker(Napi::Env env, double ms, Flag f) : Napi::AsyncWorker(env), ms_(ms), f_(std::move(f)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    auto end = std::chrono::steady_clock::now() + std::chrono::microseconds((int64_t)(ms_ * 1000));
    volatile double sink = 0;
    while (std::chrono::steady_clock::now() < end) {
      if (f_->load()) { cancelled_ = true; return; }
      auto step = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
      while (std::chrono::steady_clock::now() < step) sink = sink + 1.0;  // real CPU work, not a sleep
    }
  }
  void OnOK() override {
    if (cancelled_) deferred_.Reject(make_error(Env(), "CANCELLED", "cancelled").Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  double ms_;
  Flag f_;
  bool cancelled_ = false;
  Napi::Promise::Deferred deferred_;
};

}  // namespace

void register_model(Napi::Env env, Napi::Object exports) {
  Napi::Function cancel = CancelFlag::Init(env);
  g_cancel_ctor = new Napi::FunctionReference(Napi::Persistent(cancel));
  exports.Set("CancelFlag", cancel);
  Napi::Function model = NativeModel::Init(env);
  g_model_ctor = new Napi::FunctionReference(Napi::Persistent(model));
  exports.Set("NativeModel", model);
  exports.Set("loadModel", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "loadModel(path): path must be a string");
    // --- issue 9: optional device ("cpu" default, "cuda", "auto") ---
    std::string device = info.Length() > 1 && info[1].IsString() ? info[1].ToString().Utf8Value() : std::string("cpu");
    if (device != "cpu" && device != "cuda" && device != "auto")
      throw Napi::TypeError::New(info.Env(), "loadModel(path, device): device must be \"cpu\", \"cuda\" or \"auto\"");
    auto* w = new LoadWorker(info.Env(), info[0].ToString(), device);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }));
  // --- issue 9: CUDA status and the device bandwidth probe (device-check, bench) ---
  exports.Set("cudaStatus", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("compiled", cuda_compiled());
    o.Set("devices", cuda_device_count());
    return o;
  }));
  exports.Set("cudaReadBandwidth", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const double mib = info.Length() > 0 ? info[0].ToNumber().DoubleValue() : 1024;
    double bw = 0;
    try {
      bw = cuda_read_bandwidth((uint64_t)(mib * 1048576.0), 5);
    } catch (const Error& e) {
      throw make_error(info.Env(), e.code, e.what());
    }
    return Napi::Number::New(info.Env(), bw);
  }));
  // --- end issue 9 ---
  exports.Set("nativeSpin", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    double ms = info[0].ToNumber().DoubleValue();
    if (!(ms >= 0 && ms < 3.6e6)) throw Napi::RangeError::New(info.Env(), "nativeSpin(ms): ms must be in [0, 3600000)");
    auto* w = new SpinWorker(info.Env(), ms, flag_of(info[1]));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }));
  exports.Set("setThreads", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    int n = info[0].ToNumber().Int32Value();
    if (n < 1 || n > 256) throw Napi::RangeError::New(info.Env(), "setThreads(n): n must be in 1..256");
    set_default_threads(n);
    return info.Env().Undefined();
  }));
}

}  // namespace moescope::binding
