// Byte-level BPE for Llama 4 (spec §4): o200k pre-tokenisation (o200k.cpp), then, inside each piece,
// repeated merging of the adjacent pair with the lowest merge rank (leftmost on ties), which is what
// Hugging Face tokenizers, tiktoken and llama.cpp all compute. Special tokens are cut out of the text
// first (leftmost, then longest) when parse_special is set. Vocabulary strings use the GPT-2
// byte-to-unicode mapping; token_bytes undoes it. Nothing here aborts: bad specs throw moescope::Error.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

#include "common/error.h"
#include "tokenizer/o200k.h"
#include "tokenizer/utf8.h"

namespace moescope {
namespace {

// GGUF token types (llama.cpp llama_token_type).
constexpr int32_t kTypeNormal = 1, kTypeControl = 3, kTypeUserDefined = 4;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are
// shifted to U+0100..U+0143 so that every vocabulary string is printable.
struct ByteMap {
  std::array<uint32_t, 256> cp_of_byte;
  std::array<int16_t, 324> byte_of_cp;  // -1 where a code point stands for no byte
  ByteMap() {
    byte_of_cp.fill(-1);
    uint32_t shifted = 256;
    for (int b = 0; b < 256; b++) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp_of_byte[b] = printable ? b : shifted++;
      byte_of_cp[cp_of_byte[b]] = (int16_t)b;
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += (char)cp;
  } else if (cp < 0x800) {
    out += (char)(0xC0 | (cp >> 6));
    out += (char)(0x80 | (cp & 0x3F));
  } else {  // the byte map only produces code points below U+0800
    out += (char)(0xE0 | (cp >> 12));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  }
}

// GPT-2-encoded vocabulary string -> raw bytes; false if some character stands for no byte.
bool gpt2_to_bytes(const std::string& text, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  out.clear();
  for (size_t i = 0; i < text.size();) {
    const utf8::Step s = utf8::next(p + i, text.size() - i);
    if (s.status != utf8::Status::Ok || s.cp >= 324 || byte_map().byte_of_cp[s.cp] < 0) return false;
    out += (char)byte_map().byte_of_cp[s.cp];
    i += s.len;
  }
  return true;
}

std::string byte_token_text(uint8_t b) {
  std::string s;
  append_utf8(s, byte_map().cp_of_byte[b]);
  return s;
}

uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

struct Merge {
  int32_t rank;
  int32_t result;
};

// Special tokens by first byte, longest first, so the first hit at a position is the longest one.
class SpecialMatcher {
 public:
  void add(const std::string& text, int32_t id) {
    if (!text.empty()) by_first_[(uint8_t)text[0]].push_back({text, id});
  }
  void finish() {
    for (auto& v : by_first_)
      std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  }
  // The special token that starts at text[i], as {id, length}; length 0 when none does.
  std::pair<int32_t, size_t> match(std::string_view text, size_t i) const {
    for (const Entry& e : by_first_[(uint8_t)text[i]]) {
      if (e.text.size() <= text.size() - i && std::memcmp(e.text.data(), text.data() + i, e.text.size()) == 0)
        return {e.id, e.text.size()};
    }
    return {-1, 0};
  }

 private:
  struct Entry {
    std::string text;
    int32_t id;
  };
  std::array<std::vector<Entry>, 256> by_first_;
};

// Per-encode working memory, reused across the pieces of one call.
struct Scratch {
  std::vector<o200k::Piece> pieces;
  struct Symbol {
    int32_t id, prev, next;
  };
  std::vector<Symbol> symbols;
  struct Candidate {
    int32_t rank, left, left_id, right_id;
    bool operator<(const Candidate& o) const {  // inverted: std heaps pop the largest
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::vector<Candidate> heap;
};

}  // namespace

struct Tokenizer::Impl {
  std::vector<std::string> bytes;                     // id -> raw bytes
  std::unordered_map<std::string, int32_t> id_of;     // vocabulary string -> lowest id
  std::array<int32_t, 256> byte_token{};              // byte -> its single-byte token
  std::unordered_map<uint64_t, Merge> merges;         // (left id, right id) -> rank, merged id
  SpecialMatcher specials;
  std::vector<bool> eog;

  void build_vocab(const TokenizerSpec& spec);
  void build_byte_tokens(const TokenizerSpec& spec);
  void build_merges(const TokenizerSpec& spec);
  int32_t merge_part(const TokenizerSpec& spec, size_t rank, const std::string& part) const;

  void push_candidate(Scratch& s, int32_t left) const {
    if (left < 0) return;
    const int32_t right = s.symbols[left].next;
    if (right < 0) return;
    const auto it = merges.find(pair_key(s.symbols[left].id, s.symbols[right].id));
    if (it == merges.end()) return;
    s.heap.push_back({it->second.rank, left, s.symbols[left].id, s.symbols[right].id});
    std::push_heap(s.heap.begin(), s.heap.end());
  }

  // A heap entry is still good when the pair it names is still adjacent at that position.
  bool still_valid(const Scratch& s, const Scratch::Candidate& c) const {
    const auto& l = s.symbols[c.left];
    return l.id == c.left_id && l.next >= 0 && s.symbols[l.next].id == c.right_id;
  }

  void merge_at(Scratch& s, const Scratch::Candidate& c) const {
    auto& l = s.symbols[c.left];
    const int32_t right = l.next;
    l.id = merges.at(pair_key(c.left_id, c.right_id)).result;
    l.next = s.symbols[right].next;
    if (l.next >= 0) s.symbols[l.next].prev = c.left;
    s.symbols[right].id = -1;
    push_candidate(s, l.prev);
    push_candidate(s, c.left);
  }

  void bpe(std::string_view piece, Scratch& s, std::vector<int32_t>& out) const {
    const int32_t n = (int32_t)piece.size();
    if (n == 1) {
      out.push_back(byte_token[(uint8_t)piece[0]]);
      return;
    }
    s.symbols.resize(n);
    for (int32_t i = 0; i < n; i++) s.symbols[i] = {byte_token[(uint8_t)piece[i]], i - 1, i + 1 < n ? i + 1 : -1};
    s.heap.clear();
    for (int32_t i = 0; i + 1 < n; i++) push_candidate(s, i);
    while (!s.heap.empty()) {
      std::pop_heap(s.heap.begin(), s.heap.end());
      const Scratch::Candidate c = s.heap.back();
      s.heap.pop_back();
      if (still_valid(s, c)) merge_at(s, c);
    }
    for (int32_t i = 0; i >= 0; i = s.symbols[i].next) out.push_back(s.symbols[i].id);
  }

  void encode_plain(std::string_view text, Scratch& s, std::vector<int32_t>& out) const {
    s.pieces.clear();
    o200k::split(text, s.pieces);
    for (const o200k::Piece& p : s.pieces) bpe(text.substr(p.begin, p.end - p.begin), s, out);
  }
};

namespace {

void check_id(const TokenizerSpec& spec, int32_t id, const char* what, bool optional) {
  if (optional && id == -1) return;
  MOESCOPE_CHECK(id >= 0 && (size_t)id < spec.tokens.size(), "TOKENIZER_BAD_ID",
                 "%s: %s id %d is outside the vocabulary (%zu tokens)", spec.source.c_str(), what, id,
                 spec.tokens.size());
}

void validate(const TokenizerSpec& spec) {
  const char* src = spec.source.c_str();
  MOESCOPE_CHECK(spec.model == "gpt2", "TOKENIZER_UNSUPPORTED",
                 "%s: tokenizer model '%s' is not supported (only byte-level BPE, 'gpt2')", src, spec.model.c_str());
  MOESCOPE_CHECK(spec.pre == "llama4" || spec.pre == "gpt-4o", "TOKENIZER_UNSUPPORTED",
                 "%s: pre-tokenizer '%s' is not supported (expected 'llama4', the o200k pattern)", src,
                 spec.pre.c_str());
  MOESCOPE_CHECK(!spec.tokens.empty() && spec.tokens.size() < (size_t)INT32_MAX, "TOKENIZER_BAD_VOCAB",
                 "%s: the vocabulary has %zu tokens", src, spec.tokens.size());
  MOESCOPE_CHECK(spec.token_types.empty() || spec.token_types.size() == spec.tokens.size(), "TOKENIZER_BAD_VOCAB",
                 "%s: %zu token types for %zu tokens", src, spec.token_types.size(), spec.tokens.size());
  MOESCOPE_CHECK(spec.merges.size() < (size_t)INT32_MAX, "TOKENIZER_BAD_MERGE", "%s: too many merges", src);
  check_id(spec, spec.bos_id, "BOS", true);
  check_id(spec, spec.eos_id, "EOS", true);
  check_id(spec, spec.pad_id, "padding", true);
  for (int32_t id : spec.special_ids) check_id(spec, id, "special token", false);
  for (int32_t id : spec.eog_ids) check_id(spec, id, "end-of-generation", false);
}

// Which ids are written as text rather than GPT-2-encoded bytes, and which ones are matchable.
bool is_literal(const TokenizerSpec& spec, const std::vector<bool>& special, int32_t id) {
  if (special[id]) return true;
  return !spec.token_types.empty() && spec.token_types[id] != kTypeNormal && spec.token_types[id] != 6;
}

std::vector<bool> special_set(const TokenizerSpec& spec) {
  std::vector<bool> special(spec.tokens.size(), false);
  for (int32_t id : spec.special_ids) special[id] = true;
  if (spec.special_ids.empty()) {  // GGUF: control and user-defined tokens are the special ones
    for (size_t id = 0; id < spec.token_types.size(); id++)
      special[id] = spec.token_types[id] == kTypeControl || spec.token_types[id] == kTypeUserDefined;
  }
  return special;
}

}  // namespace

void Tokenizer::Impl::build_vocab(const TokenizerSpec& spec) {
  const std::vector<bool> special = special_set(spec);
  bytes.resize(spec.tokens.size());
  id_of.reserve(spec.tokens.size());
  for (int32_t id = 0; id < (int32_t)spec.tokens.size(); id++) {
    const std::string& text = spec.tokens[id];
    if (!text.empty()) id_of.emplace(text, id);
    if (is_literal(spec, special, id) || !gpt2_to_bytes(text, bytes[id])) bytes[id] = text;
    if (special[id]) specials.add(text, id);
  }
  specials.finish();
}

void Tokenizer::Impl::build_byte_tokens(const TokenizerSpec& spec) {
  for (int b = 0; b < 256; b++) {
    const auto it = id_of.find(byte_token_text((uint8_t)b));
    MOESCOPE_CHECK(it != id_of.end(), "TOKENIZER_BAD_VOCAB",
                   "%s: the vocabulary lacks the token for byte 0x%02X, which byte-level BPE needs",
                   spec.source.c_str(), b);
    byte_token[b] = it->second;
  }
}

int32_t Tokenizer::Impl::merge_part(const TokenizerSpec& spec, size_t rank, const std::string& part) const {
  const auto it = id_of.find(part);
  MOESCOPE_CHECK(it != id_of.end(), "TOKENIZER_BAD_MERGE", "%s: merge %zu ('%s') uses '%s', which is not in the vocabulary",
                 spec.source.c_str(), rank, spec.merges[rank].c_str(), part.c_str());
  return it->second;
}

void Tokenizer::Impl::build_merges(const TokenizerSpec& spec) {
  merges.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); rank++) {
    const std::string& m = spec.merges[rank];
    const size_t sp = m.find(' ');
    MOESCOPE_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos,
                   "TOKENIZER_BAD_MERGE", "%s: merge %zu ('%s') is not two tokens separated by one space",
                   spec.source.c_str(), rank, m.c_str());
    const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
    const int32_t l = merge_part(spec, rank, left), r = merge_part(spec, rank, right);
    const int32_t result = merge_part(spec, rank, left + right);
    merges.emplace(pair_key(l, r), Merge{(int32_t)rank, result});  // a repeated pair keeps its first rank
  }
}


Tokenizer::Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)), impl_(std::make_shared<Impl>()) {
  validate(spec_);
  impl_->build_vocab(spec_);
  impl_->build_byte_tokens(spec_);
  impl_->build_merges(spec_);
  impl_->eog.assign(spec_.tokens.size(), false);
  for (int32_t id : spec_.eog_ids) impl_->eog[id] = true;
  if (spec_.eos_id >= 0) impl_->eog[spec_.eos_id] = true;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && spec_.bos_id >= 0) out.push_back(spec_.bos_id);  // no BOS token: nothing to add (as HF)
  Scratch scratch;
  if (!parse_special) {
    impl_->encode_plain(text, scratch, out);
    return out;
  }
  size_t plain = 0;  // start of the text not yet encoded
  for (size_t i = 0; i < text.size();) {
    const auto [id, len] = impl_->specials.match(text, i);
    if (len == 0) {
      i++;
      continue;
    }
    impl_->encode_plain(text.substr(plain, i - plain), scratch, out);
    out.push_back(id);
    i += len;
    plain = i;
  }
  impl_->encode_plain(text.substr(plain), scratch, out);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  MOESCOPE_CHECK(id >= 0 && id < vocab_size(), "TOKENIZER_BAD_ID", "%s: token id %d is outside the vocabulary (%d tokens)",
                 spec_.source.c_str(), id, vocab_size());
  return impl_->bytes[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    MOESCOPE_CHECK(id >= 0 && id < vocab_size(), "TOKENIZER_BAD_ID", "%s: token id %d is outside the vocabulary (%d tokens)",
                   spec_.source.c_str(), id, vocab_size());
    out += impl_->bytes[id];
  }
  return out;
}

int32_t Tokenizer::token_id(std::string_view token_text) const {
  const auto it = impl_->id_of.find(std::string(token_text));
  return it == impl_->id_of.end() ? -1 : it->second;
}

bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < vocab_size() && impl_->eog[id]; }

// ---- Utf8Stream ----

namespace {
// Appends the complete characters of in[0, n) to out (invalid stretches as U+FFFD); returns how many
// bytes were used, leaving a truncated final character for later unless at_end.
size_t drain_utf8(const std::string& in, bool at_end, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t i = 0;
  while (i < in.size()) {
    const utf8::Step s = utf8::next(p + i, in.size() - i);
    if (s.status == utf8::Status::Truncated && !at_end) break;
    if (s.status == utf8::Status::Ok)
      out.append(in, i, s.len);
    else
      out += utf8::kReplacement;
    i += s.len;
  }
  return i;
}
}  // namespace

std::string Utf8Stream::push(const std::string& bytes) {
  pending_ += bytes;
  std::string out;
  pending_.erase(0, drain_utf8(pending_, false, out));
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  drain_utf8(pending_, true, out);
  pending_.clear();
  return out;
}

}  // namespace moescope
