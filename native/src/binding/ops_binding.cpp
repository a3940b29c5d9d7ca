// Test-only exports (names start with "_") of small engine pieces that unit tests check against
// float64 formulas: RoPE, SwiGLU's silu gate and the attention temperature factor.
#include "binding/errors.h"
#include "binding/registry.h"
#include "ops/bandwidth.h"
#include "ops/elementwise.h"
#include "ops/rope.h"
#include "ops/threadpool.h"

namespace moescope {
double attn_temperature_for_test(double attn_scale, double floor_scale, int64_t p);
}

namespace moescope::binding {

void register_ops(Napi::Env env, Napi::Object exports) {
  // _rope(x: Float32Array [T*H*Dh], T, H, Dh, pos: Float64Array [T], freq: Float64Array [Dh/2]) -> Float32Array
  exports.Set("_rope", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto x = info[0].As<Napi::Float32Array>();
    int64_t T = info[1].ToNumber().Int64Value(), H = info[2].ToNumber().Int64Value(), Dh = info[3].ToNumber().Int64Value();
    auto pos = info[4].As<Napi::Float64Array>();
    auto freq = info[5].As<Napi::Float64Array>();
    if ((int64_t)x.ElementLength() != T * H * Dh || (int64_t)pos.ElementLength() != T || (int64_t)freq.ElementLength() != Dh / 2)
      throw Napi::RangeError::New(info.Env(), "_rope: sizes do not match");
    auto out = Napi::Float32Array::New(info.Env(), x.ElementLength());
    std::copy(x.Data(), x.Data() + x.ElementLength(), out.Data());
    std::vector<int64_t> p(T);
    for (int64_t t = 0; t < T; t++) p[t] = (int64_t)pos.Data()[t];
    op_rope(out.Data(), T, H, Dh, p.data(), freq.Data());
    return out;
  }));
  // _readBandwidth(mib, reps) -> GB/s on the model's thread pool (runs synchronously: a benchmark tool).
  exports.Set("_readBandwidth", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    double mib = info[0].ToNumber().DoubleValue();
    int reps = info[1].ToNumber().Int32Value();
    if (!(mib >= 1 && mib <= 65536) || reps < 1 || reps > 100) throw Napi::RangeError::New(info.Env(), "_readBandwidth(mib in 1..65536, reps in 1..100)");
    return Napi::Number::New(info.Env(), measure_read_bandwidth(default_pool(), (size_t)(mib * 1048576), reps));
  }));
  // _siluMul(gate: Float32Array, up: Float32Array) -> Float32Array silu(gate) * up, as the SwiGLU layers compute it.
  exports.Set("_siluMul", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(info.Env(), "_siluMul(gate, up): two Float32Arrays");
    auto g = info[0].As<Napi::Float32Array>();
    auto u = info[1].As<Napi::Float32Array>();
    if (g.ElementLength() != u.ElementLength()) throw Napi::RangeError::New(info.Env(), "_siluMul: lengths differ");
    auto out = Napi::Float32Array::New(info.Env(), g.ElementLength());
    std::copy(g.Data(), g.Data() + g.ElementLength(), out.Data());
    op_silu_mul(default_pool(), out.Data(), u.Data(), (int64_t)g.ElementLength());
    return out;
  }));
  exports.Set("_attnTemperature", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Napi::Number::New(info.Env(), attn_temperature_for_test(info[0].ToNumber().DoubleValue(), info[1].ToNumber().DoubleValue(),
                                                                   info[2].ToNumber().Int64Value()));
  }));
}

}  // namespace moescope::binding
