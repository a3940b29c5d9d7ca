// Hugging Face tokenizer.json (+ tokenizer_config.json) -> TokenizerSpec. Reads model.vocab,
// model.merges ("a b" strings or [a, b] pairs), added_tokens, the pre-tokenizer regex (must be
// the o200k pattern of spec §4.1, else encoding would silently differ) and the post-processor
// (TemplateProcessing that starts with <|begin_of_text|> => add_bos). Every malformed field raises
// moescope::Error naming the file and the JSON path; ids are bounded so a hostile file cannot make
// us allocate gigabytes.
#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace moescope {
namespace {

constexpr const char* kO200kPattern =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

constexpr double kMaxId = 1 << 24;  // 16M: far above any real vocabulary (Llama 4: 202048)

// GGUF token types, which spec_from_hf fills the way llama.cpp's converter does: special added
// tokens are control tokens, other added tokens user-defined (always matched in text).
constexpr int32_t kTypeNormal = 1, kTypeControl = 3, kTypeUserDefined = 4, kTypeUnused = 5;

struct Entry {
  int64_t id;
  std::string text;
  int32_t kind;  // token type
};

const Json& member(const Json& obj, const char* key, const std::string& src, const char* path) {
  const Json* v = obj.get(key);
  MOESCOPE_CHECK(v != nullptr, "TOKENIZER_JSON_SHAPE", "%s: missing '%s%s'", src.c_str(), path, key);
  return *v;
}

int64_t read_id(const Json& v, const std::string& src, const std::string& what) {
  MOESCOPE_CHECK(v.is_number() && v.num >= 0 && v.num < kMaxId && std::floor(v.num) == v.num, "TOKENIZER_BAD_ID",
                 "%s: %s has id %s, expected an integer in [0, %d)", src.c_str(), what.c_str(),
                 v.is_number() ? strfmt("%.17g", v.num).c_str() : "(not a number)", (int)kMaxId);
  return (int64_t)v.num;
}

void read_vocab(const Json& model, const std::string& src, std::vector<Entry>& out) {
  const Json& vocab = member(model, "vocab", src, "model.");
  MOESCOPE_CHECK(vocab.is_object(), "TOKENIZER_JSON_SHAPE", "%s: model.vocab is not an object", src.c_str());
  for (const auto& [text, id] : vocab.obj) out.push_back({read_id(id, src, "vocabulary entry '" + text + "'"), text, kTypeNormal});
}

void read_added(const Json& root, const std::string& src, std::vector<Entry>& out) {
  const Json* added = root.get("added_tokens");
  if (added == nullptr || added->is_null()) return;
  MOESCOPE_CHECK(added->is_array(), "TOKENIZER_JSON_SHAPE", "%s: added_tokens is not an array", src.c_str());
  for (size_t i = 0; i < added->arr.size(); i++) {
    const Json& t = added->arr[i];
    const std::string path = strfmt("added_tokens[%zu]", i);
    MOESCOPE_CHECK(t.is_object(), "TOKENIZER_JSON_SHAPE", "%s: %s is not an object", src.c_str(), path.c_str());
    const Json& content = member(t, "content", src, (path + ".").c_str());
    MOESCOPE_CHECK(content.is_string(), "TOKENIZER_JSON_SHAPE", "%s: %s.content is not a string", src.c_str(), path.c_str());
    const Json* special = t.get("special");
    out.push_back({read_id(member(t, "id", src, (path + ".").c_str()), src, path), content.str,
                   special != nullptr && special->is_bool() && special->b ? kTypeControl : kTypeUserDefined});
  }
}

// Bounds the id space by the number of entries so that sparse hostile ids cannot exhaust memory.
void place_tokens(const std::vector<Entry>& entries, const std::string& src, TokenizerSpec& spec) {
  int64_t max_id = -1;
  for (const Entry& e : entries) max_id = std::max(max_id, e.id);
  MOESCOPE_CHECK(max_id >= 0, "TOKENIZER_BAD_VOCAB", "%s: the vocabulary is empty", src.c_str());
  MOESCOPE_CHECK(max_id < 2 * (int64_t)entries.size() + 65536, "TOKENIZER_BAD_ID",
                 "%s: token id %lld is far beyond the %zu tokens defined (ids must be dense)", src.c_str(),
                 (long long)max_id, entries.size());
  spec.tokens.assign(max_id + 1, std::string());
  spec.token_types.assign(max_id + 1, kTypeUnused);
  std::vector<bool> seen(max_id + 1, false);
  for (const Entry& e : entries) {
    MOESCOPE_CHECK(!seen[e.id] || spec.tokens[e.id] == e.text, "TOKENIZER_BAD_ID",
                   "%s: id %lld is given to both '%s' and '%s'", src.c_str(), (long long)e.id,
                   spec.tokens[e.id].c_str(), e.text.c_str());
    seen[e.id] = true;
    spec.tokens[e.id] = e.text;
    spec.token_types[e.id] = e.kind;
    if (e.kind == kTypeControl) spec.special_ids.push_back((int32_t)e.id);
  }
}

void read_merges(const Json& model, const std::string& src, TokenizerSpec& spec) {
  const Json* merges = model.get("merges");
  if (merges == nullptr || merges->is_null()) return;  // a vocabulary of bytes only
  MOESCOPE_CHECK(merges->is_array(), "TOKENIZER_JSON_SHAPE", "%s: model.merges is not an array", src.c_str());
  spec.merges.reserve(merges->arr.size());
  for (size_t i = 0; i < merges->arr.size(); i++) {
    const Json& m = merges->arr[i];
    if (m.is_string()) {
      spec.merges.push_back(m.str);
      continue;
    }
    const bool pair = m.is_array() && m.arr.size() == 2 && m.arr[0].is_string() && m.arr[1].is_string();
    MOESCOPE_CHECK(pair, "TOKENIZER_JSON_SHAPE", "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]",
                   src.c_str(), i);
    // Byte-level tokens never contain a space (it is written Ġ), so "a b" is unambiguous.
    MOESCOPE_CHECK(m.arr[0].str.find(' ') == std::string::npos && m.arr[1].str.find(' ') == std::string::npos,
                   "TOKENIZER_BAD_MERGE", "%s: model.merges[%zu] has a token with a space", src.c_str(), i);
    spec.merges.push_back(m.arr[0].str + " " + m.arr[1].str);
  }
}

// Finds the Split regex anywhere in the pre-tokenizer (usually Sequence[Split, ByteLevel]).
const Json* find_split_regex(const Json& node) {
  if (node.is_object()) {
    const Json* type = node.get("type");
    const Json* pattern = node.get("pattern");
    if (type && type->is_string() && type->str == "Split" && pattern && pattern->get("Regex")) return pattern->get("Regex");
  }
  const auto children = node.is_object() ? node.get("pretokenizers") : nullptr;
  if (children && children->is_array()) {
    for (const Json& c : children->arr)
      if (const Json* r = find_split_regex(c)) return r;
  }
  return nullptr;
}

void check_pre_tokenizer(const Json& root, const std::string& src) {
  const Json* pre = root.get("pre_tokenizer");
  const Json* regex = pre ? find_split_regex(*pre) : nullptr;
  MOESCOPE_CHECK(regex && regex->is_string(), "TOKENIZER_UNSUPPORTED",
                 "%s: no Split pre-tokenizer regex found; only the Llama 4 (o200k) pre-tokenizer is supported", src.c_str());
  MOESCOPE_CHECK(regex->str == kO200kPattern, "TOKENIZER_UNSUPPORTED",
                 "%s: the pre-tokenizer regex is not Llama 4's o200k pattern; other patterns are not supported", src.c_str());
}

// True when a TemplateProcessing (possibly inside a Sequence) puts <|begin_of_text|> before $A.
bool template_adds_bos(const Json& node) {
  if (!node.is_object()) return false;
  if (const Json* list = node.get("processors"); list && list->is_array()) {
    return std::any_of(list->arr.begin(), list->arr.end(), template_adds_bos);
  }
  const Json* single = node.get("single");
  if (!single || !single->is_array() || single->arr.empty()) return false;
  const Json* st = single->arr[0].get("SpecialToken");
  const Json* id = st ? st->get("id") : nullptr;
  return id && id->is_string() && id->str == "<|begin_of_text|>";
}

int32_t find_token(const TokenizerSpec& spec, const std::string& text) {
  for (size_t i = spec.tokens.size(); i-- > 0;)  // specials sit at the end
    if (spec.tokens[i] == text) return (int32_t)i;
  return -1;
}

void set_named_ids(TokenizerSpec& spec) {
  spec.bos_id = find_token(spec, "<|begin_of_text|>");
  spec.eos_id = find_token(spec, "<|eot|>");
  if (spec.eos_id < 0) spec.eos_id = find_token(spec, "<|end_of_text|>");
  spec.pad_id = find_token(spec, "<|finetune_right_pad|>");
  for (const char* name : {"<|end_of_text|>", "<|eom|>", "<|eot|>"}) {
    const int32_t id = find_token(spec, name);
    if (id >= 0) spec.eog_ids.push_back(id);
  }
}

// A token named in tokenizer_config.json: a string or {"content": "..."}.
const std::string* config_token(const Json& cfg, const char* key) {
  const Json* v = cfg.get(key);
  if (v && v->is_object()) v = v->get("content");
  return v && v->is_string() ? &v->str : nullptr;
}

}  // namespace

TokenizerSpec Tokenizer::spec_from_hf(const Json& root, const std::string& source) {
  MOESCOPE_CHECK(root.is_object(), "TOKENIZER_JSON_SHAPE", "%s: expected a JSON object at the top level", source.c_str());
  const Json* model = root.get("model");
  MOESCOPE_CHECK(model && model->is_object(), "TOKENIZER_JSON_SHAPE", "%s: missing the 'model' object", source.c_str());
  const Json* type = model->get("type");
  MOESCOPE_CHECK(!type || (type->is_string() && type->str == "BPE"), "TOKENIZER_UNSUPPORTED",
                 "%s: model.type is '%s'; only BPE is supported", source.c_str(),
                 type && type->is_string() ? type->str.c_str() : "?");
  check_pre_tokenizer(root, source);
  TokenizerSpec spec;
  spec.source = source;
  std::vector<Entry> entries;
  read_vocab(*model, source, entries);
  read_added(root, source, entries);
  place_tokens(entries, source, spec);
  read_merges(*model, source, spec);
  const Json* post = root.get("post_processor");
  spec.add_bos = post && template_adds_bos(*post);
  set_named_ids(spec);
  return spec;
}

void Tokenizer::apply_hf_config(TokenizerSpec& spec, const Json& cfg) {
  if (!cfg.is_object()) return;
  if (const std::string* bos = config_token(cfg, "bos_token")) spec.bos_id = find_token(spec, *bos);
  if (const std::string* pad = config_token(cfg, "pad_token")) spec.pad_id = find_token(spec, *pad);
  if (const std::string* eos = config_token(cfg, "eos_token")) {
    spec.eos_id = find_token(spec, *eos);
    if (spec.eos_id >= 0 && std::find(spec.eog_ids.begin(), spec.eog_ids.end(), spec.eos_id) == spec.eog_ids.end())
      spec.eog_ids.push_back(spec.eos_id);
  }
  if (const Json* add = cfg.get("add_bos_token"); add && add->is_bool()) spec.add_bos = add->b;
}

}  // namespace moescope
