// Byte-level BPE tokenizer for Llama 4 (tiktoken o200k pre-tokenizer, spec §4), built from either
// GGUF metadata (tokenizer.ggml.*) or a Hugging Face tokenizer.json. Vocabulary strings use the
// GPT-2 byte-to-unicode mapping in both sources; special tokens are matched in text when asked.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/json.h"

namespace moescope {

struct TokenizerSpec {
  std::string source;                  // file the vocabulary came from (for error messages)
  std::string model = "gpt2";          // tokenizer.ggml.model; only byte-level BPE is supported
  std::string pre = "llama4";          // pre-tokenizer name
  std::vector<std::string> tokens;     // id -> token text (GPT-2 byte-encoded for normal tokens)
  std::vector<int32_t> token_types;    // GGUF token types (1 normal, 3 control, 4 user-defined, ...); may be empty
  std::vector<std::string> merges;     // "left right", rank = index
  std::vector<int32_t> special_ids;    // ids matched literally in text when parse_special is set
  int32_t bos_id = -1, eos_id = -1, pad_id = -1;
  bool add_bos = true;
  std::vector<int32_t> eog_ids;        // end-of-generation ids (stop tokens)
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerSpec spec);  // validates; throws moescope::Error naming spec.source

  // HF tokenizer.json (+ optional tokenizer_config.json / config.json for bos/eos) -> spec.
  static TokenizerSpec spec_from_hf(const Json& tokenizer_json, const std::string& source);
  // tokenizer_config.json: its bos_token / eos_token / pad_token / add_bos_token override the
  // defaults spec_from_hf derived from token names.
  static void apply_hf_config(TokenizerSpec& spec, const Json& tokenizer_config);

  // Encode UTF-8 text. parse_special: "<|header_start|>" etc. become single tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;
  // The raw bytes of one token (special tokens give their text). Throws on an out-of-range id.
  std::string token_bytes(int32_t id) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // concatenated bytes (may be invalid UTF-8 mid-sequence); throws on a bad id
  int32_t token_id(std::string_view token_text) const;        // -1 if absent (exact vocab string)

  const TokenizerSpec& spec() const { return spec_; }
  int32_t vocab_size() const { return (int32_t)spec_.tokens.size(); }
  bool is_eog(int32_t id) const;

 private:
  TokenizerSpec spec_;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Streaming detokenizer: feed token bytes, get back only complete UTF-8 characters.
class Utf8Stream {
 public:
  // Returns every complete character so far, holding back only an unfinished last one (at most 3
  // bytes); a stretch that can never become valid comes out at once as U+FFFD, so output is valid UTF-8.
  std::string push(const std::string& bytes);
  std::string flush();                         // whatever is left (invalid sequences as U+FFFD)
 private:
  std::string pending_;
};

}  // namespace moescope
