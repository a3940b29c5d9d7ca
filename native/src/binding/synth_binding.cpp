// `moescope synth`'s random numbers (engine/src/synth.ts), in native code for speed: the same
// xoshiro128** stream and the same table lookup as synth.ts's Rng, so a file is the same bytes
// whichever side draws them. JS export:
//   _synthNormals(state: Uint32Array(6), table: Float64Array(65536), mean, std, n) -> Float32Array(n)
//     x[i] = mean + std * table[next 16 random bits], in double, rounded to float32 (as a JS
//     Float32Array store rounds); state = xoshiro s0..s3, the spare 16 bits, whether one is spare;
//     advanced in place.
#include <cstdint>

#include "binding/registry.h"

namespace moescope::binding {
namespace {

inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

Napi::Value SynthNormals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto bad = [&](const char* what) {
    Napi::Error e = Napi::TypeError::New(env, what);
    e.Set("code", Napi::String::New(env, "SYNTH_BAD_ARGUMENT"));
    throw e;
  };
  if (info.Length() < 5 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[0].As<Napi::Uint32Array>().ElementLength() != 6)
    bad("_synthNormals: state must be a Uint32Array of 6");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[1].As<Napi::Float64Array>().ElementLength() != 65536)
    bad("_synthNormals: table must be a Float64Array of 65536");
  if (!info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber()) bad("_synthNormals: mean, std and n must be numbers");
  const int64_t n = info[4].As<Napi::Number>().Int64Value();
  if (n < 0 || n > (int64_t(1) << 31)) bad("_synthNormals: n out of range");
  uint32_t* st = info[0].As<Napi::Uint32Array>().Data();
  const double* table = info[1].As<Napi::Float64Array>().Data();
  const double mean = info[2].As<Napi::Number>().DoubleValue(), sd = info[3].As<Napi::Number>().DoubleValue();
  Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)n);
  float* x = out.Data();
  uint32_t s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3], spare = st[4], have = st[5];
  for (int64_t i = 0; i < n; i++) {
    uint32_t k;
    if (have) {
      k = spare;
      have = 0;
    } else {
      const uint32_t r = rotl(s1 * 5, 7) * 9;  // xoshiro128**
      const uint32_t t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
      spare = r & 0xffff;
      have = 1;
      k = r >> 16;
    }
    x[i] = (float)(mean + sd * table[k]);
  }
  st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3; st[4] = spare; st[5] = have;
  return out;
}

}  // namespace

void register_synth(Napi::Env env, Napi::Object exports) {
  exports.Set("_synthNormals", Napi::Function::New(env, SynthNormals, "_synthNormals"));
}

}  // namespace moescope::binding
