// JS classes `Tokenizer` and `Utf8Stream` on the addon.
//   Tokenizer.fromHF(path)                  tokenizer.json (+ tokenizer_config.json beside it, if any)
//   t.encode(text: string | Uint8Array, addBos = t.addBos, parseSpecial = true) -> Int32Array
//   t.decode(ids: Int32Array | number[]) -> string      (invalid UTF-8 becomes U+FFFD)
//   t.decodeBytes(ids) -> Buffer                          (exact bytes)
//   t.tokenBytes(id) -> Buffer, t.tokenId(text) -> number (-1 if absent), t.isEog(id) -> boolean
//   t.vocabSize, t.bosId, t.eosId, t.padId (-1 when absent), t.addBos, t.eogIds: number[]
//   new Utf8Stream(); s.push(bytes: Uint8Array) -> string; s.flush() -> string
//   Tokenizer._fromSpec({source, model, pre, tokens, tokenTypes, merges, specialIds, bosId, eosId,
//                        padId, addBos, eogIds})   tests and tools: a TokenizerSpec as GGUF fills it
// Every C++ failure reaches JS as an Error whose `code` is the moescope::Error code; the engine is
// never left in a half state because a Tokenizer is immutable once built.
#include "binding/tokenizer_binding.h"

#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "binding/errors.h"
#include "binding/registry.h"
#include "common/error.h"
#include "io/json.h"

namespace moescope::binding {
namespace {

constexpr size_t kMaxTokenizerFile = size_t(1) << 30;  // Llama 4's tokenizer.json is ~30 MB

[[noreturn]] void throw_js(Napi::Env env, const std::string& code, const std::string& msg) { throw make_error(env, code, msg); }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  MOESCOPE_CHECK(f.good(), "TOKENIZER_READ", "%s: cannot open the file", path.c_str());
  const std::streamoff size = f.tellg();
  MOESCOPE_CHECK(size >= 0 && (size_t)size <= kMaxTokenizerFile, "TOKENIZER_READ", "%s: unreadable or larger than 1 GiB",
                 path.c_str());
  std::string text((size_t)size, '\0');
  f.seekg(0);
  f.read(&text[0], size);
  MOESCOPE_CHECK(f.good() || f.eof(), "TOKENIZER_READ", "%s: read error", path.c_str());
  return text;
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

std::shared_ptr<const Tokenizer> load_hf(const std::string& path) {
  TokenizerSpec spec = Tokenizer::spec_from_hf(Json::parse(read_file(path), path), path);
  const size_t slash = path.find_last_of('/');
  const std::string config = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) +
                             "tokenizer_config.json";
  if (file_exists(config)) Tokenizer::apply_hf_config(spec, Json::parse(read_file(config), config));
  return std::make_shared<const Tokenizer>(std::move(spec));
}

bool as_int32(const Napi::Value& v, int32_t& out) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.5;
  if (!(d >= INT32_MIN && d <= INT32_MAX && d == (double)(int32_t)d)) return false;
  out = (int32_t)d;
  return true;
}

std::vector<int32_t> read_ids(Napi::Env env, const Napi::Value& v) {
  std::vector<int32_t> ids;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    const auto a = v.As<Napi::Int32Array>();
    ids.assign(a.Data(), a.Data() + a.ElementLength());
    return ids;
  }
  if (!v.IsArray()) throw_js(env, "TOKENIZER_BAD_ARGUMENT", "token ids must be an Int32Array or an array of numbers");
  const auto a = v.As<Napi::Array>();
  ids.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    int32_t id;
    if (!as_int32(a.Get(i), id)) throw_js(env, "TOKENIZER_BAD_ARGUMENT", strfmt("token ids[%u] is not an integer", i));
    ids.push_back(id);
  }
  return ids;
}

// A string is taken as UTF-8 (lone surrogates become U+FFFD); a Uint8Array/Buffer as raw bytes.
std::string read_text(Napi::Env env, const Napi::Value& v) {
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    const auto a = v.As<Napi::Uint8Array>();
    return std::string(reinterpret_cast<const char*>(a.Data()), a.ElementLength());
  }
  throw_js(env, "TOKENIZER_BAD_ARGUMENT", "text must be a string or a Uint8Array");
}

std::vector<int32_t> id_list(Napi::Env env, const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  return v.IsUndefined() ? std::vector<int32_t>() : read_ids(env, v);
}

int32_t id_field(Napi::Env env, const Napi::Object& o, const char* key, int32_t fallback) {
  const Napi::Value v = o.Get(key);
  int32_t id = fallback;
  if (!v.IsUndefined() && !as_int32(v, id))
    throw_js(env, "TOKENIZER_BAD_ARGUMENT", strfmt("spec.%s must be an integer", key));
  return id;
}

std::vector<std::string> string_list(Napi::Env env, const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return out;
  if (!v.IsArray()) throw_js(env, "TOKENIZER_BAD_ARGUMENT", strfmt("spec.%s must be an array of strings", key));
  const auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    const Napi::Value x = a.Get(i);
    if (!x.IsString()) throw_js(env, "TOKENIZER_BAD_ARGUMENT", strfmt("spec.%s[%u] is not a string", key, i));
    out.push_back(x.As<Napi::String>().Utf8Value());
  }
  return out;
}

// The fields a GGUF reader fills; absent ones keep TokenizerSpec's defaults.
TokenizerSpec spec_from_js(Napi::Env env, const Napi::Object& o) {
  TokenizerSpec spec;
  spec.source = "(tokenizer spec)";
  auto text = [&](const char* key, std::string& field) {
    if (o.Get(key).IsString()) field = o.Get(key).As<Napi::String>().Utf8Value();
  };
  text("source", spec.source);
  text("model", spec.model);
  text("pre", spec.pre);
  spec.tokens = string_list(env, o, "tokens");
  spec.merges = string_list(env, o, "merges");
  spec.token_types = id_list(env, o, "tokenTypes");
  spec.special_ids = id_list(env, o, "specialIds");
  spec.eog_ids = id_list(env, o, "eogIds");
  spec.bos_id = id_field(env, o, "bosId", -1);
  spec.eos_id = id_field(env, o, "eosId", -1);
  spec.pad_id = id_field(env, o, "padId", -1);
  if (o.Get("addBos").IsBoolean()) spec.add_bos = o.Get("addBos").As<Napi::Boolean>().Value();
  return spec;
}

bool read_bool(const Napi::Value& v, bool fallback) { return v.IsUndefined() ? fallback : v.ToBoolean().Value(); }

int32_t read_id(Napi::Env env, const Napi::Value& v) {
  int32_t id;
  if (!as_int32(v, id)) throw_js(env, "TOKENIZER_BAD_ARGUMENT", "token id must be an integer");
  return id;
}

Napi::Buffer<char> to_buffer(Napi::Env env, const std::string& s) { return Napi::Buffer<char>::Copy(env, s.data(), s.size()); }

// One constructor per env (a worker thread loading the addon gets its own).
std::mutex g_mutex;
std::unordered_map<napi_env, Napi::FunctionReference*> g_ctors;

class TokenizerWrap : public Napi::ObjectWrap<TokenizerWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Tokenizer",
                       {StaticMethod("fromHF", &TokenizerWrap::from_hf),
                        StaticMethod("_fromSpec", &TokenizerWrap::from_spec),
                        InstanceMethod("encode", &TokenizerWrap::encode),
                        InstanceMethod("decode", &TokenizerWrap::decode),
                        InstanceMethod("decodeBytes", &TokenizerWrap::decode_bytes),
                        InstanceMethod("tokenBytes", &TokenizerWrap::token_bytes),
                        InstanceMethod("tokenId", &TokenizerWrap::token_id),
                        InstanceMethod("isEog", &TokenizerWrap::is_eog),
                        InstanceAccessor("vocabSize", &TokenizerWrap::vocab_size, nullptr),
                        InstanceAccessor("bosId", &TokenizerWrap::bos_id, nullptr),
                        InstanceAccessor("eosId", &TokenizerWrap::eos_id, nullptr),
                        InstanceAccessor("padId", &TokenizerWrap::pad_id, nullptr),
                        InstanceAccessor("addBos", &TokenizerWrap::add_bos, nullptr),
                        InstanceAccessor("eogIds", &TokenizerWrap::eog_ids, nullptr)});
  }

  // JS `new Tokenizer()` is refused: instances come from fromHF or wrap_tokenizer (an External).
  explicit TokenizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenizerWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw_js(info.Env(), "TOKENIZER_BAD_ARGUMENT", "use Tokenizer.fromHF(path) to make a tokenizer");
    tok_ = *info[0].As<Napi::External<std::shared_ptr<const Tokenizer>>>().Data();
  }

  static Napi::Object make(Napi::Env env, std::shared_ptr<const Tokenizer> tok) {
    Napi::FunctionReference* ctor = nullptr;
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      auto it = g_ctors.find(env);
      if (it != g_ctors.end()) ctor = it->second;
    }
    if (!ctor) throw_js(env, "INTERNAL", "the Tokenizer class is not registered");
    auto ext = Napi::External<std::shared_ptr<const Tokenizer>>::New(env, &tok);  // copied by the constructor
    return ctor->New({ext});
  }

 private:
  std::shared_ptr<const Tokenizer> tok_;

  static Napi::Value from_hf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString())
      throw_js(env, "TOKENIZER_BAD_ARGUMENT", "Tokenizer.fromHF(path): path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    return make(env, guarded(env, [&] { return load_hf(path); }));
  }

  static Napi::Value from_spec(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw_js(env, "TOKENIZER_BAD_ARGUMENT", "_fromSpec(spec): spec must be an object");
    TokenizerSpec spec = spec_from_js(env, info[0].As<Napi::Object>());
    return make(env, guarded(env, [&] { return std::make_shared<const Tokenizer>(std::move(spec)); }));
  }

  Napi::Value encode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string text = read_text(env, info[0]);
    const bool add_bos = read_bool(info[1], tok_->spec().add_bos), special = read_bool(info[2], true);
    const std::vector<int32_t> ids = guarded(env, [&] { return tok_->encode(text, add_bos, special); });
    Napi::Int32Array out = Napi::Int32Array::New(env, ids.size());
    std::copy(ids.begin(), ids.end(), out.Data());
    return out;
  }

  Napi::Value decode(const Napi::CallbackInfo& info) {
    const std::vector<int32_t> ids = read_ids(info.Env(), info[0]);
    const std::string bytes = guarded(info.Env(), [&] { return tok_->decode(ids); });
    Utf8Stream stream;  // one U+FFFD rule (maximal subparts, as Node's) for decode and streaming
    std::string text = stream.push(bytes);
    text += stream.flush();
    return Napi::String::New(info.Env(), text);
  }

  Napi::Value decode_bytes(const Napi::CallbackInfo& info) {
    const std::vector<int32_t> ids = read_ids(info.Env(), info[0]);
    return to_buffer(info.Env(), guarded(info.Env(), [&] { return tok_->decode(ids); }));
  }

  Napi::Value token_bytes(const Napi::CallbackInfo& info) {
    const int32_t id = read_id(info.Env(), info[0]);
    return to_buffer(info.Env(), guarded(info.Env(), [&] { return tok_->token_bytes(id); }));
  }

  Napi::Value token_id(const Napi::CallbackInfo& info) {
    if (!info[0].IsString()) throw_js(info.Env(), "TOKENIZER_BAD_ARGUMENT", "tokenId(text): text must be a string");
    return Napi::Number::New(info.Env(), tok_->token_id(info[0].As<Napi::String>().Utf8Value()));
  }

  Napi::Value is_eog(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), tok_->is_eog(read_id(info.Env(), info[0])));
  }

  Napi::Value vocab_size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tok_->vocab_size()); }
  Napi::Value bos_id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tok_->spec().bos_id); }
  Napi::Value eos_id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tok_->spec().eos_id); }
  Napi::Value pad_id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tok_->spec().pad_id); }
  Napi::Value add_bos(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), tok_->spec().add_bos); }

  Napi::Value eog_ids(const Napi::CallbackInfo& info) {
    Napi::Array out = Napi::Array::New(info.Env());
    uint32_t n = 0;
    for (int32_t id = 0; id < tok_->vocab_size(); id++)
      if (tok_->is_eog(id)) out.Set(n++, Napi::Number::New(info.Env(), id));
    return out;
  }
};

class Utf8StreamWrap : public Napi::ObjectWrap<Utf8StreamWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Utf8Stream",
                       {InstanceMethod("push", &Utf8StreamWrap::push), InstanceMethod("flush", &Utf8StreamWrap::flush)});
  }
  explicit Utf8StreamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Utf8StreamWrap>(info) {}

 private:
  Utf8Stream stream_;

  Napi::Value push(const Napi::CallbackInfo& info) {
    const std::string bytes = read_text(info.Env(), info[0]);
    return Napi::String::New(info.Env(), guarded(info.Env(), [&] { return stream_.push(bytes); }));
  }
  Napi::Value flush(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), stream_.flush()); }
};

}  // namespace

Napi::Object wrap_tokenizer(Napi::Env env, std::shared_ptr<const Tokenizer> tokenizer) {
  return TokenizerWrap::make(env, std::move(tokenizer));
}

void register_tokenizer(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = TokenizerWrap::define(env);
  auto* ref = new Napi::FunctionReference(Napi::Persistent(ctor));
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_ctors[env] = ref;
  }
  napi_env raw = env;
  env.AddCleanupHook([raw, ref] {
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      g_ctors.erase(raw);
    }
    delete ref;
  });
  exports.Set("Tokenizer", ctor);
  exports.Set("Utf8Stream", Utf8StreamWrap::define(env));
}

}  // namespace moescope::binding
