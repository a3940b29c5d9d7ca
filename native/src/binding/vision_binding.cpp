// The vision tower in JavaScript: loadVision(path) -> Promise<NativeVision>; NativeVision.encode(pixels,
// nTiles, names, cancel) -> Promise<{embeds, nTokens, captured}> runs on a worker thread. `cancel` is
// an optional Int32Array whose element 0 JavaScript sets to 1 to stop between encoder layers (the
// array is kept referenced for the duration of the call). Results are external ArrayBuffers (no copy).
#include <functional>
#include <memory>

#include "binding/errors.h"
#include "binding/registry.h"
#include "vision/vision_model.h"

namespace moescope::binding {

namespace {

Napi::FunctionReference* g_vision_ctor = nullptr;

Napi::Float32Array f32_external(Napi::Env env, std::shared_ptr<std::vector<float>> v) {
  auto* keep = new std::shared_ptr<std::vector<float>>(std::move(v));
  const size_t n = (*keep)->size();
  if (n == 0) {
    delete keep;
    return Napi::Float32Array::New(env, 0);
  }
  auto ab = Napi::ArrayBuffer::New(env, (*keep)->data(), n * 4, [](Napi::Env, void*, std::shared_ptr<std::vector<float>>* k) { delete k; }, keep);
  return Napi::Float32Array::New(env, n, ab, 0);
}

class LoadVisionWorker : public Napi::AsyncWorker {
 public:
  LoadVisionWorker(Napi::Env env, std::string path) : Napi::AsyncWorker(env), path_(std::move(path)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { err_.run([&] { model_ = VisionModel::load(path_); }); }
  void OnOK() override;
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string path_;
  Napi::Promise::Deferred deferred_;
  ErrorSlot err_;
  std::shared_ptr<VisionModel> model_;
};

class EncodeWorker : public Napi::AsyncWorker {
 public:
  EncodeWorker(Napi::Env env, std::shared_ptr<VisionModel> m, std::vector<float> px, int64_t n, VisionCapture cap)
      : Napi::AsyncWorker(env), m_(std::move(m)), px_(std::move(px)), n_(n), cap_(std::move(cap)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void watch(Napi::Int32Array a) {
    cancel_ref_ = Napi::Persistent(a);
    js_flag_ = a.Data();
  }
  void Execute() override {
    err_.run([&] {
      // A plain int32 store from JavaScript; read through volatile so every poll sees memory.
      const volatile int32_t* flag = js_flag_;
      std::function<bool()> cancelled;
      if (flag) cancelled = [flag] { return *flag != 0; };
      res_ = m_->encode(px_.data(), n_, cap_, cancelled);
    });
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_.set) {
      deferred_.Reject(make_error(env, err_.code, err_.message).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("embeds", f32_external(env, std::make_shared<std::vector<float>>(std::move(res_.embeds))));
    r.Set("nTokens", (double)res_.n_tokens);
    Napi::Array cap = Napi::Array::New(env, res_.captured.size());
    for (size_t i = 0; i < res_.captured.size(); i++) {
      Captured& c = res_.captured[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", c.name);
      o.Set("dtype", "f32");
      Napi::Array shape = Napi::Array::New(env, c.shape.size());
      for (size_t d = 0; d < c.shape.size(); d++) shape.Set((uint32_t)d, (double)c.shape[d]);
      o.Set("shape", shape);
      o.Set("data", f32_external(env, c.f));
      cap.Set((uint32_t)i, o);
    }
    r.Set("captured", cap);
    deferred_.Resolve(r);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::shared_ptr<VisionModel> m_;
  std::vector<float> px_;
  int64_t n_;
  VisionCapture cap_;
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Int32Array> cancel_ref_;
  const volatile int32_t* js_flag_ = nullptr;
  ErrorSlot err_;
  VisionResult res_;
};

class NativeVision : public Napi::ObjectWrap<NativeVision> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeVision",
                       {InstanceMethod("info", &NativeVision::Info), InstanceMethod("hookNames", &NativeVision::HookNames),
                        InstanceMethod("encode", &NativeVision::Encode)});
  }
  NativeVision(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeVision>(info) {}
  std::shared_ptr<VisionModel> model;

 private:
  const VisionModel& m(const Napi::CallbackInfo& info) {
    if (!model) throw make_error(info.Env(), "NOT_LOADED", "this vision handle holds no model");
    return *model;
  }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    const VisionModel& vm = m(info);
    const VisionConfig& c = vm.config();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("path", vm.path());
    o.Set("format", vm.format());
    o.Set("imageSize", (double)c.image_size);
    o.Set("patchSize", (double)c.patch_size);
    o.Set("nChannels", (double)c.n_channels);
    o.Set("nEmbd", (double)c.n_embd);
    o.Set("nLayer", (double)c.n_layer);
    o.Set("nHead", (double)c.n_head);
    o.Set("headDim", (double)c.head_dim);
    o.Set("nFf", (double)c.n_ff);
    o.Set("normEps", c.norm_eps);
    o.Set("ropeTheta", c.rope_theta);
    o.Set("shuffleFactor", (double)c.shuffle_factor);
    o.Set("adapterHidden", (double)c.adapter_hidden);
    o.Set("adapterOut", (double)c.adapter_out);
    o.Set("projOut", (double)c.proj_out);
    o.Set("grid", (double)c.grid());
    o.Set("seqLen", (double)c.seq_len());
    o.Set("tokensPerTile", (double)c.tokens_per_tile());
    o.Set("mappedBytes", (double)vm.mapped_bytes());
    return o;
  }
  Napi::Value HookNames(const Napi::CallbackInfo& info) {
    auto names = m(info).hook_names();
    Napi::Array a = Napi::Array::New(info.Env(), names.size());
    for (size_t i = 0; i < names.size(); i++) a.Set((uint32_t)i, names[i]);
    return a;
  }
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const VisionConfig& c = m(info).config();
      Napi::Env env = info.Env();
      if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw Napi::TypeError::New(env, "encode: pixels must be a Float32Array");
      auto px = info[0].As<Napi::Float32Array>();
      const double nd = info[1].ToNumber().DoubleValue();
      MOESCOPE_CHECK(nd >= 1 && nd <= 4096 && nd == (int64_t)nd, "BAD_PIXELS", "encode: tile count %g must be an integer >= 1", nd);
      const int64_t n = (int64_t)nd;
      const int64_t per = c.n_channels * c.image_size * c.image_size;
      MOESCOPE_CHECK((int64_t)px.ElementLength() == n * per, "BAD_PIXELS",
                     "encode: %zu pixel values for %lld tiles of %lldx%lldx%lld (expected %lld)", px.ElementLength(), (long long)n,
                     (long long)c.n_channels, (long long)c.image_size, (long long)c.image_size, (long long)(n * per));
      VisionCapture cap;
      if (info[2].IsArray()) {
        auto a = info[2].As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); i++) cap.names.push_back(a.Get(i).ToString());
      }
      auto* w = new EncodeWorker(env, model, std::vector<float>(px.Data(), px.Data() + px.ElementLength()), n, std::move(cap));
      if (info[3].IsTypedArray() && info[3].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array && info[3].As<Napi::Int32Array>().ElementLength() >= 1)
        w->watch(info[3].As<Napi::Int32Array>());
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }
};

void LoadVisionWorker::OnOK() {
  Napi::Env env = Env();
  if (err_.set) {
    deferred_.Reject(make_error(env, err_.code, err_.message).Value());
    return;
  }
  Napi::Object o = g_vision_ctor->New({});
  NativeVision::Unwrap(o)->model = model_;
  deferred_.Resolve(o);
}

}  // namespace

void register_vision(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = NativeVision::Init(env);
  g_vision_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));
  exports.Set("NativeVision", ctor);
  exports.Set("loadVision", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto* w = new LoadVisionWorker(info.Env(), info[0].ToString());
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }));
}

}  // namespace moescope::binding
