// Opening a checkpoint: a GGUF file, or a Hugging Face folder (config.json + safetensors +
// tokenizer.json). Both end in the same Llama4Config, Llama4Weights and Tokenizer.
#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/llama4.h"
#include "ops/threadpool.h"

namespace moescope {

namespace {

// tokenizer.ggml.* -> TokenizerSpec. Stop tokens: the file's eos/eot/eom ids plus Llama 4's
// end-of-text, end-of-message and end-of-turn tokens found by name (llama.cpp detects them the same way).
TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& g) {
  TokenizerSpec sp;
  sp.source = g.path();
  sp.model = g.get_str("tokenizer.ggml.model");
  sp.pre = g.get_str("tokenizer.ggml.pre", "llama4");
  const GgufValue* toks = g.find("tokenizer.ggml.tokens");
  MOESCOPE_CHECK(toks && toks->is_array() && toks->elem_type == GgufType::STRING, "GGUF_MISSING_KEY",
                 "%s: tokenizer.ggml.tokens (string array) is missing", g.path().c_str());
  sp.tokens = toks->strs;
  if (const GgufValue* tt = g.find("tokenizer.ggml.token_type"); tt && tt->is_array()) {
    MOESCOPE_CHECK(tt->nums.size() == sp.tokens.size(), "GGUF_BAD_KEY", "%s: tokenizer.ggml.token_type has %zu entries for %zu tokens",
                   g.path().c_str(), tt->nums.size(), sp.tokens.size());
    for (double v : tt->nums) sp.token_types.push_back((int32_t)v);
  }
  if (const GgufValue* m = g.find("tokenizer.ggml.merges"); m && m->is_array()) {
    MOESCOPE_CHECK(m->elem_type == GgufType::STRING, "GGUF_BAD_KEY", "%s: tokenizer.ggml.merges must be strings", g.path().c_str());
    sp.merges = m->strs;
  }
  const int64_t n = (int64_t)sp.tokens.size();
  auto id_key = [&](const char* key) -> int32_t {
    int64_t v = g.get_int(key, -1);
    MOESCOPE_CHECK(v >= -1 && v < n, "GGUF_BAD_KEY", "%s: %s = %lld is outside the vocabulary", g.path().c_str(), key, (long long)v);
    return (int32_t)v;
  };
  sp.bos_id = id_key("tokenizer.ggml.bos_token_id");
  sp.eos_id = id_key("tokenizer.ggml.eos_token_id");
  sp.pad_id = id_key("tokenizer.ggml.padding_token_id");
  sp.add_bos = g.get_bool("tokenizer.ggml.add_bos_token", true);
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (int32_t id = id_key(k); id >= 0) sp.eog_ids.push_back(id);
  for (int64_t i = 0; i < n; i++) {
    const std::string& t = sp.tokens[i];
    if (t == "<|end_of_text|>" || t == "<|eot|>" || t == "<|eom|>" || t == "<|eot_id|>" || t == "<|eom_id|>")
      if (std::find(sp.eog_ids.begin(), sp.eog_ids.end(), (int32_t)i) == sp.eog_ids.end()) sp.eog_ids.push_back((int32_t)i);
  }
  return sp;
}

void apply_hf_special_ids(TokenizerSpec& sp, const Json& cfg, const std::string& src) {
  const Json* tc = cfg.get("text_config");
  const Json& t = (tc && tc->is_object()) ? *tc : cfg;
  auto id = [&](const Json* v) -> int32_t {
    if (!v || !v->is_number()) return -1;
    MOESCOPE_CHECK(v->num >= 0 && v->num < (double)sp.tokens.size(), "CONFIG_BAD_KEY", "%s: special token id %g is outside the vocabulary",
                   src.c_str(), v->num);
    return (int32_t)v->num;
  };
  if (int32_t b = id(t.get("bos_token_id")); b >= 0) sp.bos_id = b;
  if (int32_t p = id(t.get("pad_token_id")); p >= 0) sp.pad_id = p;
  if (const Json* e = t.get("eos_token_id")) {
    std::vector<const Json*> ids;
    if (e->is_array()) for (auto& x : e->arr) ids.push_back(&x);
    else ids.push_back(e);
    for (auto* x : ids)
      if (int32_t v = id(x); v >= 0) {
        if (sp.eos_id < 0) sp.eos_id = v;
        if (std::find(sp.eog_ids.begin(), sp.eog_ids.end(), v) == sp.eog_ids.end()) sp.eog_ids.push_back(v);
      }
  }
}

}  // namespace

std::shared_ptr<Llama4Model> Llama4Model::load(const std::string& path) {
  auto m = std::shared_ptr<Llama4Model>(new Llama4Model());
  m->path_ = path;
  if (is_directory(path)) {
    const std::string cfg_path = path + "/config.json";
    MOESCOPE_CHECK(file_exists(cfg_path), "MODEL_NOT_FOUND", "%s: a Hugging Face checkpoint folder needs config.json", path.c_str());
    Json cfg = Json::parse(read_text_file(cfg_path, 16u << 20), cfg_path);
    m->config_ = config_from_hf(cfg, cfg_path);
    if (const Json* it = cfg.get("image_token_index"); it && it->is_number()) m->config_.image_token_id = (int32_t)it->num;
    m->safetensors_ = SafetensorsSet::open(path);
    m->weights_ = weights_from_hf(*m->safetensors_, m->config_);
    const std::string tok_path = path + "/tokenizer.json";
    MOESCOPE_CHECK(file_exists(tok_path), "MODEL_NOT_FOUND", "%s: tokenizer.json is missing", path.c_str());
    Json tj = Json::parse(read_text_file(tok_path, 256u << 20), tok_path);
    TokenizerSpec sp = Tokenizer::spec_from_hf(tj, tok_path);
    const std::string tc_path = path + "/tokenizer_config.json";
    if (file_exists(tc_path)) Tokenizer::apply_hf_config(sp, Json::parse(read_text_file(tc_path, 16u << 20), tc_path));
    apply_hf_special_ids(sp, cfg, cfg_path);
    m->tokenizer_.reset(new Tokenizer(std::move(sp)));
  } else {
    MOESCOPE_CHECK(file_exists(path), "MODEL_NOT_FOUND", "%s: no such file or folder", path.c_str());
    m->gguf_ = GgufFile::open(path);
    m->config_ = config_from_gguf(*m->gguf_);
    m->weights_ = weights_from_gguf(*m->gguf_, m->config_);
    m->tokenizer_.reset(new Tokenizer(tokenizer_spec_from_gguf(*m->gguf_)));
  }
  const int32_t patch = m->tokenizer_->token_id("<|patch|>");
  if (m->config_.image_token_id < 0) m->config_.image_token_id = patch;
  MOESCOPE_CHECK(m->tokenizer_->vocab_size() <= m->config_.n_vocab, "MODEL_VOCAB_MISMATCH",
                 "%s: the tokenizer has %d tokens but the model only %lld embedding rows", path.c_str(), m->tokenizer_->vocab_size(),
                 (long long)m->config_.n_vocab);
  return m;
}

}  // namespace moescope
