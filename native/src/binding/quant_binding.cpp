// Test exports of the weight-type kernels (names starting with `_` are for tests and tools, not a
// public API), plus `dotKernel`, the kernel family picked at start-up ("avx512+avx2+fma", "avx2+fma" or
// "scalar").
//   _typeTraits(id)                         -> {name, blockSize, typeSize, supported} | undefined
//   _dequantize(typeId, Buffer, n)          -> Float32Array(n)
//   _dot(typeId, Buffer wRow, Float32Array x, n, ntok)       -> Float32Array(ntok)  (the registry's dot)
//   _dotScalar(typeId, Buffer wRow, Float32Array x, n, ntok) -> Float32Array(ntok)  (the portable dot)
//   _dotRows(typeId, Buffer w, Float32Array x, n, ntok, nrows) -> Float32Array(ntok * nrows), [t * nrows + r]
//                                            (nrows consecutive rows through the registry's dot_rows)
//   _quantize(typeId, Float32Array)         -> Buffer (64K values and more: on every core, same bytes)
//   _quantizeQ8Act(Float32Array x[, n])     -> Buffer (fast-mode int8 activations of the rows of n, default one row)
//   _quantizeQ8ActScalar(Float32Array x[, n]) -> Buffer (the same, by the portable quantiser)
//   _dotQ8Act(typeId, Buffer wRow, Buffer xq, n, ntok[, nrows]) -> Float32Array(ntok * nrows)  (fast mode of
//                                            Q8_0/Q4_0, registry's; nrows consecutive weight rows, output [t * nrows + r])
//   _dotQ8ActScalar(typeId, Buffer wRow, Buffer xq, n, ntok) -> Float32Array(ntok)  (the same, portable)
//   _quantizeQ8K(Float32Array x[, n]) -> Buffer  (the prefill kernel's activations: rows of n % 256 == 0)
//   _quantizeQ8KScalar(Float32Array x[, n]) -> Buffer  (the same, by the portable quantiser)
//   _gemmQ8K(typeId, Buffer w, Buffer xqk, n, ntok[, nrows]) -> Float32Array(ntok * nrows)  (fast mode of the
//                                            K-quants, against _quantizeQ8K rows; throws for other types)
//   _gemmQ8KScalar(...)                     -> the same, portable
// x holds ntok rows of n floats back to back. Every size is checked before native code reads
// memory: a wrong length throws, it never reads past a buffer.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "binding/registry.h"
#include "common/error.h"
#include "ops/quant.h"
#include "ops/quant_blocks.h"

namespace moescope::binding {
namespace {

[[noreturn]] void throw_js(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

// The traits of a type we can compute with, or a JS error naming the type.
const TypeTraits& computable(Napi::Env env, const Napi::Value& v) {
  if (!v.IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "type id must be a number");
  const uint32_t id = v.As<Napi::Number>().Uint32Value();
  const TypeTraits* tt = type_traits(id);
  if (!tt) throw_js(env, "QUANT_UNKNOWN_TYPE", strfmt("unknown ggml type id %u", id));
  if (!tt->supported)
    throw_js(env, "QUANT_UNSUPPORTED_TYPE",
             strfmt("weight type %s (ggml type %u) is not supported by moescope", tt->name, id));
  return *tt;
}

int64_t checked_n(Napi::Env env, const Napi::Value& v, const TypeTraits& tt) {
  if (!v.IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "n must be a number");
  const int64_t n = v.As<Napi::Number>().Int64Value();
  if (n <= 0 || n % tt.block_size != 0)
    throw_js(env, "QUANT_BAD_ARGUMENT",
             strfmt("n = %lld is not a positive multiple of the %s block size %lld", (long long)n, tt.name,
                    (long long)tt.block_size));
  return n;
}

Napi::Buffer<uint8_t> checked_row(Napi::Env env, const Napi::Value& v, const TypeTraits& tt, int64_t n) {
  if (!v.IsBuffer()) throw_js(env, "QUANT_BAD_ARGUMENT", "weights must be a Buffer");
  Napi::Buffer<uint8_t> buf = v.As<Napi::Buffer<uint8_t>>();
  if (buf.Length() < row_bytes(tt, n))
    throw_js(env, "QUANT_BAD_ARGUMENT",
             strfmt("a %s row of %lld elements needs %zu bytes, got %zu", tt.name, (long long)n, row_bytes(tt, n),
                    buf.Length()));
  return buf;
}

Napi::Value TypeTraitsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "type id must be a number");
  const TypeTraits* tt = type_traits(info[0].As<Napi::Number>().Uint32Value());
  if (!tt) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", tt->name);
  o.Set("blockSize", Napi::Number::New(env, (double)tt->block_size));
  o.Set("typeSize", Napi::Number::New(env, (double)tt->type_size));
  o.Set("supported", Napi::Boolean::New(env, tt->supported));
  return o;
}

Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TypeTraits& tt = computable(env, info[0]);
  const int64_t n = checked_n(env, info[2], tt);
  Napi::Buffer<uint8_t> w = checked_row(env, info[1], tt, n);
  Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)n);
  tt.to_float(w.Data(), out.Data(), n);
  return out;
}

Napi::Value DotWith(const Napi::CallbackInfo& info, bool portable) {
  Napi::Env env = info.Env();
  const TypeTraits& tt = computable(env, info[0]);
  const int64_t n = checked_n(env, info[3], tt);
  Napi::Buffer<uint8_t> w = checked_row(env, info[1], tt, n);
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_js(env, "QUANT_BAD_ARGUMENT", "x must be a Float32Array");
  Napi::Float32Array x = info[2].As<Napi::Float32Array>();
  if (!info[4].IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "ntok must be a number");
  const int64_t ntok = info[4].As<Napi::Number>().Int64Value();
  if (ntok < 1 || ntok > (1 << 20)) throw_js(env, "QUANT_BAD_ARGUMENT", "ntok must be at least 1");
  if ((int64_t)x.ElementLength() < ntok * n)
    throw_js(env, "QUANT_BAD_ARGUMENT",
             strfmt("x must hold ntok*n = %lld floats, got %zu", (long long)(ntok * n), x.ElementLength()));
  quant::DotFn dot = portable ? quant::scalar_dot((uint32_t)info[0].As<Napi::Number>().Uint32Value()) : tt.dot;
  Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)ntok);
  dot(w.Data(), x.Data(), n, n, (int)ntok, out.Data(), 1);
  return out;
}

Napi::Value DotRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TypeTraits& tt = computable(env, info[0]);
  const int64_t n = checked_n(env, info[3], tt);
  if (!info[4].IsNumber() || !info[5].IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "ntok and nrows must be numbers");
  const int64_t ntok = info[4].As<Napi::Number>().Int64Value();
  const int64_t nrows = info[5].As<Napi::Number>().Int64Value();
  if (ntok < 1 || ntok > (1 << 20) || nrows < 1 || nrows > (1 << 24))
    throw_js(env, "QUANT_BAD_ARGUMENT", "ntok and nrows must be at least 1");
  if (!info[1].IsBuffer()) throw_js(env, "QUANT_BAD_ARGUMENT", "weights must be a Buffer");
  Napi::Buffer<uint8_t> w = info[1].As<Napi::Buffer<uint8_t>>();
  const size_t stride = row_bytes(tt, n);
  if (w.Length() < stride * (size_t)nrows)
    throw_js(env, "QUANT_BAD_ARGUMENT", strfmt("%lld %s rows of %lld elements need %zu bytes, got %zu", (long long)nrows,
                                               tt.name, (long long)n, stride * (size_t)nrows, w.Length()));
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_js(env, "QUANT_BAD_ARGUMENT", "x must be a Float32Array");
  Napi::Float32Array x = info[2].As<Napi::Float32Array>();
  if ((int64_t)x.ElementLength() < ntok * n)
    throw_js(env, "QUANT_BAD_ARGUMENT",
             strfmt("x must hold ntok*n = %lld floats, got %zu", (long long)(ntok * n), x.ElementLength()));
  Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)(ntok * nrows));
  tt.dot_rows(w.Data(), stride, nrows, x.Data(), n, n, (int)ntok, out.Data(), nrows);
  return out;
}

// Rows of n activations -> one quantised row each, by QUANTIZE into ROW_BYTES(n) bytes; n % MULTIPLE == 0.
Napi::Value QuantizeRows(const Napi::CallbackInfo& info, int64_t multiple, size_t (*row_bytes_of)(int64_t),
                         void (*quantize)(const float*, int64_t, void*)) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_js(env, "QUANT_BAD_ARGUMENT", "values must be a Float32Array");
  Napi::Float32Array x = info[0].As<Napi::Float32Array>();
  const int64_t total = (int64_t)x.ElementLength();
  int64_t n = total;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "n must be a number");
    n = info[1].As<Napi::Number>().Int64Value();
  }
  if (n <= 0 || n % multiple != 0 || total % n != 0)
    throw_js(env, "QUANT_BAD_ARGUMENT", strfmt("%lld values are not rows of a multiple of %lld (n = %lld)", (long long)total,
                                               (long long)multiple, (long long)n));
  const size_t ld = row_bytes_of(n);
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, ld * (size_t)(total / n));
  for (int64_t t = 0; t < total / n; ++t) quantize(x.Data() + t * n, n, out.Data() + t * ld);
  return out;
}
Napi::Value QuantizeQ8Act(const Napi::CallbackInfo& info) { return QuantizeRows(info, 32, q8act_row_bytes, quantize_q8act); }
Napi::Value QuantizeQ8K(const Napi::CallbackInfo& info) { return QuantizeRows(info, 256, q8k_row_bytes, quantize_q8k); }
Napi::Value QuantizeQ8ActScalar(const Napi::CallbackInfo& info) {
  return QuantizeRows(info, 32, q8act_row_bytes, quant::quantize_q8act_portable);
}
Napi::Value QuantizeQ8KScalar(const Napi::CallbackInfo& info) {
  return QuantizeRows(info, 256, q8k_row_bytes, quant::quantize_q8k_portable);
}

enum class Q8ActKernel { Dot, Portable, GemmQ8K, PortableQ8K };

Napi::Value DotQ8ActWith(const Napi::CallbackInfo& info, Q8ActKernel which) {
  Napi::Env env = info.Env();
  const TypeTraits& tt = computable(env, info[0]);
  const int64_t n = checked_n(env, info[3], tt);
  int64_t nrows = 1;
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    if (!info[5].IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "nrows must be a number");
    nrows = info[5].As<Napi::Number>().Int64Value();
    if (nrows < 1 || nrows > (1 << 24)) throw_js(env, "QUANT_BAD_ARGUMENT", "nrows must be at least 1");
  }
  if (!info[1].IsBuffer()) throw_js(env, "QUANT_BAD_ARGUMENT", "weights must be a Buffer");
  Napi::Buffer<uint8_t> w = info[1].As<Napi::Buffer<uint8_t>>();
  const size_t stride = row_bytes(tt, n);
  if (w.Length() < stride * (size_t)nrows)
    throw_js(env, "QUANT_BAD_ARGUMENT", strfmt("%lld %s rows of %lld elements need %zu bytes, got %zu", (long long)nrows,
                                               tt.name, (long long)n, stride * (size_t)nrows, w.Length()));
  const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  const bool q8k = which == Q8ActKernel::GemmQ8K || which == Q8ActKernel::PortableQ8K;  // activations from _quantizeQ8K
  quant::DotQ8ActFn dot = which == Q8ActKernel::Portable  ? quant::scalar_dot_q8act(id)
                          : which == Q8ActKernel::PortableQ8K ? quant::scalar_gemm_q8k(id)
                          : q8k                              ? tt.gemm_q8k
                                                             : tt.dot_q8act;
  if (!dot || n % 32 != 0)
    throw_js(env, "QUANT_UNSUPPORTED_TYPE", strfmt("weight type %s has no int8-activation fast mode%s", tt.name,
                                                   q8k ? " against per-256 activations (_gemmQ8K)" : " against per-32 activations (_dotQ8Act)"));
  if (!info[2].IsBuffer())
    throw_js(env, "QUANT_BAD_ARGUMENT", q8k ? "xq must be a Buffer from _quantizeQ8K" : "xq must be a Buffer from _quantizeQ8Act");
  Napi::Buffer<uint8_t> xq = info[2].As<Napi::Buffer<uint8_t>>();
  if (!info[4].IsNumber()) throw_js(env, "QUANT_BAD_ARGUMENT", "ntok must be a number");
  const int64_t ntok = info[4].As<Napi::Number>().Int64Value();
  if (ntok < 1 || ntok > (1 << 20)) throw_js(env, "QUANT_BAD_ARGUMENT", "ntok must be at least 1");
  const size_t ld = q8k ? q8k_row_bytes(n) : q8act_row_bytes(n);
  if (xq.Length() < ld * (size_t)ntok)
    throw_js(env, "QUANT_BAD_ARGUMENT", strfmt("xq must hold %lld rows of %zu bytes", (long long)ntok, ld));
  Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)(ntok * nrows));
  dot(w.Data(), stride, nrows, xq.Data(), ld, n, (int)ntok, out.Data(), nrows);
  return out;
}

Napi::Value DotQ8Act(const Napi::CallbackInfo& info) { return DotQ8ActWith(info, Q8ActKernel::Dot); }
Napi::Value DotQ8ActScalar(const Napi::CallbackInfo& info) { return DotQ8ActWith(info, Q8ActKernel::Portable); }
Napi::Value GemmQ8K(const Napi::CallbackInfo& info) { return DotQ8ActWith(info, Q8ActKernel::GemmQ8K); }
Napi::Value GemmQ8KScalar(const Napi::CallbackInfo& info) { return DotQ8ActWith(info, Q8ActKernel::PortableQ8K); }

Napi::Value Dot(const Napi::CallbackInfo& info) { return DotWith(info, false); }
Napi::Value DotScalar(const Napi::CallbackInfo& info) { return DotWith(info, true); }

Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TypeTraits& tt = computable(env, info[0]);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_js(env, "QUANT_BAD_ARGUMENT", "values must be a Float32Array");
  Napi::Float32Array x = info[1].As<Napi::Float32Array>();
  const int64_t n = (int64_t)x.ElementLength();
  if (n % tt.block_size != 0)
    throw_js(env, "QUANT_BAD_ARGUMENT",
             strfmt("%lld values are not a multiple of the %s block size %lld", (long long)n, tt.name,
                    (long long)tt.block_size));
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, row_bytes(tt, n));
  // Blocks quantize independently: large inputs (synth's 1M-value chunks) are cut into whole blocks,
  // one piece per core. Same bytes as one call.
  const int64_t blocks = n / tt.block_size, min_blocks = (1 << 16) / tt.block_size;
  const int64_t pieces = std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), blocks / min_blocks));
  const float* src = x.Data();  // raw pointers taken here: the workers must not call into N-API
  uint8_t* dst = out.Data();
  std::vector<std::thread> workers;
  for (int64_t p = 1; p < pieces; p++)
    workers.emplace_back([&tt, src, dst, blocks, pieces, p] {
      const int64_t b0 = blocks * p / pieces, b1 = blocks * (p + 1) / pieces;
      tt.from_float(src + b0 * tt.block_size, dst + row_bytes(tt, b0 * tt.block_size), (b1 - b0) * tt.block_size);
    });
  tt.from_float(src, dst, blocks / pieces * tt.block_size);
  for (auto& w : workers) w.join();
  return out;
}

}  // namespace

void register_quant(Napi::Env env, Napi::Object exports) {
  exports.Set("_typeTraits", Napi::Function::New(env, TypeTraitsJs, "_typeTraits"));
  exports.Set("_dequantize", Napi::Function::New(env, Dequantize, "_dequantize"));
  exports.Set("_dot", Napi::Function::New(env, Dot, "_dot"));
  exports.Set("_dotScalar", Napi::Function::New(env, DotScalar, "_dotScalar"));
  exports.Set("_dotRows", Napi::Function::New(env, DotRows, "_dotRows"));
  exports.Set("_quantize", Napi::Function::New(env, Quantize, "_quantize"));
  exports.Set("_quantizeQ8Act", Napi::Function::New(env, QuantizeQ8Act, "_quantizeQ8Act"));
  exports.Set("_dotQ8Act", Napi::Function::New(env, DotQ8Act, "_dotQ8Act"));
  exports.Set("_dotQ8ActScalar", Napi::Function::New(env, DotQ8ActScalar, "_dotQ8ActScalar"));
  exports.Set("_gemmQ8K", Napi::Function::New(env, GemmQ8K, "_gemmQ8K"));
  exports.Set("_quantizeQ8K", Napi::Function::New(env, QuantizeQ8K, "_quantizeQ8K"));
  exports.Set("_quantizeQ8ActScalar", Napi::Function::New(env, QuantizeQ8ActScalar, "_quantizeQ8ActScalar"));
  exports.Set("_quantizeQ8KScalar", Napi::Function::New(env, QuantizeQ8KScalar, "_quantizeQ8KScalar"));
  exports.Set("_gemmQ8KScalar", Napi::Function::New(env, GemmQ8KScalar, "_gemmQ8KScalar"));
  exports.Set("dotKernel", Napi::String::New(env, dot_kernel_name()));
}

}  // namespace moescope::binding
