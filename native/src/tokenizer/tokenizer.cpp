// Byte-level BPE for Llama 4 (spec §4): o200k pre-tokenisation (o200k.cpp), then, inside each piece,
// repeated merging of the adjacent pair with the lowest merge rank (leftmost on ties), which is what
// Hugging Face tokenizers, tiktoken and llama.cpp all compute. Special (control) tokens are cut out
// of the text first (leftmost, then longest) when parse_special is set; user-defined tokens always
// are. Vocabulary strings use the GPT-2 byte-to-unicode mapping; token_bytes undoes it. Nothing here
// aborts: bad specs and oversized input throw moescope::Error. Encoding is const and thread-safe.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <string_view>

#include "common/error.h"
#include "tokenizer/o200k.h"
#include "tokenizer/utf8.h"

namespace moescope {
namespace {

// GGUF token types (llama.cpp llama_token_type).
constexpr int32_t kTypeNormal = 1, kTypeControl = 3, kTypeUserDefined = 4, kTypeByte = 6;

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

// (left id, right id) -> merge, by open addressing: BPE does about two lookups per merge, and
// std::unordered_map's node chasing was most of the encode time.
class MergeTable {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {}});
    mask_ = cap - 1;
  }
  void insert_if_absent(uint64_t key, Merge m) {  // a repeated pair keeps its first (lowest) rank
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {key, m};
        return;
      }
    }
  }
  const Merge* find(uint64_t key) const {
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are below INT32_MAX, so no pair is all ones
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static size_t hash(uint64_t k) {  // murmur3 finaliser: ids are small and dense
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
  }
  std::vector<Slot> slots_{Slot{kEmpty, {}}};  // capacity 1 until reserve: find terminates
  size_t mask_ = 0;
};

// Strings by id, back to back in one buffer: 200k small allocations made loading slow.
class StringPool {
 public:
  void reserve(size_t count, size_t bytes) {
    offsets_.reserve(count + 1);
    data_.reserve(bytes);
  }
  void push(std::string_view s) {
    data_.append(s.data(), s.size());
    offsets_.push_back(data_.size());
  }
  std::string_view at(int32_t id) const { return {data_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]}; }

 private:
  std::string data_;
  std::vector<size_t> offsets_{0};
};

// Vocabulary string -> lowest id, open addressing over (hash, id) with the texts in a StringPool.
class TokenIndex {
 public:
  void build(const std::vector<std::string>& tokens) {
    size_t total = 0;
    for (const std::string& t : tokens) total += t.size();
    texts_.reserve(tokens.size(), total);
    for (const std::string& t : tokens) texts_.push(t);
    size_t cap = 16;
    while (cap < 2 * tokens.size()) cap <<= 1;
    slots_.assign(cap, Slot{0, -1});
    mask_ = cap - 1;
    for (int32_t id = 0; id < (int32_t)tokens.size(); id++)
      if (!tokens[id].empty()) insert_if_absent(id);
  }
  int32_t find(std::string_view text) const {
    const size_t h = std::hash<std::string_view>()(text);
    for (size_t i = h & mask_; slots_[i].id >= 0; i = (i + 1) & mask_) {
      if (slots_[i].hash == (uint32_t)h && texts_.at(slots_[i].id) == text) return slots_[i].id;
    }
    return -1;
  }

 private:
  struct Slot {
    uint32_t hash;
    int32_t id;  // -1: empty
  };
  void insert_if_absent(int32_t id) {
    const std::string_view text = texts_.at(id);
    const size_t h = std::hash<std::string_view>()(text);
    size_t i = h & mask_;
    for (; slots_[i].id >= 0; i = (i + 1) & mask_) {
      if (slots_[i].hash == (uint32_t)h && texts_.at(slots_[i].id) == text) return;
    }
    slots_[i] = {(uint32_t)h, id};
  }
  StringPool texts_;
  std::vector<Slot> slots_{Slot{0, -1}};
  size_t mask_ = 0;
};

// When a token's text is cut out of the input as that token. llama.cpp and HF agree: control tokens
// (HF "special" added tokens) only when special tokens are parsed; user-defined tokens (HF non-special
// added tokens) always, like words the vocabulary insists on.
enum class MatchMode : uint8_t { Never, WhenParsingSpecial, Always };

// Matchable tokens by first byte, longest first, so the first hit at a position is the longest one.
class SpecialMatcher {
 public:
  void add(const std::string& text, int32_t id, MatchMode mode) {
    if (text.empty() || mode == MatchMode::Never) return;
    by_first_[(uint8_t)text[0]].push_back({text, id, mode == MatchMode::Always});
    any_always_ |= mode == MatchMode::Always;
  }
  void finish() {
    for (auto& v : by_first_)
      std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  }
  bool active(bool parse_special) const { return parse_special || any_always_; }
  // The token that starts at text[i], as {id, length}; length 0 when none does.
  std::pair<int32_t, size_t> match(std::string_view text, size_t i, bool parse_special) const {
    for (const Entry& e : by_first_[(uint8_t)text[i]]) {
      if (!parse_special && !e.always) continue;
      if (e.text.size() <= text.size() - i && std::memcmp(e.text.data(), text.data() + i, e.text.size()) == 0)
        return {e.id, e.text.size()};
    }
    return {-1, 0};
  }

 private:
  struct Entry {
    std::string text;
    int32_t id;
    bool always;
  };
  std::array<std::vector<Entry>, 256> by_first_;
  bool any_always_ = false;
};

// Per-encode working memory, reused across the pieces of one call.
struct Scratch {
  std::vector<o200k::Piece> pieces;
  struct Symbol {
    int32_t id, prev, next;
  };
  std::vector<Symbol> symbols;
  struct Candidate {
    int32_t rank, left, left_id, right_id, result;
    bool operator<(const Candidate& o) const {  // inverted: std heaps pop the largest
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::vector<Candidate> heap;
};

}  // namespace

struct Tokenizer::Impl {
  StringPool bytes;                                   // id -> raw bytes
  TokenIndex id_of;                                   // vocabulary string -> lowest id
  std::array<int32_t, 256> byte_token{};              // byte -> its single-byte token
  MergeTable merges;
  SpecialMatcher specials;
  std::vector<bool> eog;

  void build_vocab(const TokenizerSpec& spec);
  void build_byte_tokens(const TokenizerSpec& spec);
  void build_merges(const TokenizerSpec& spec);
  int32_t merge_part(const TokenizerSpec& spec, size_t rank, std::string_view part) const;

  void push_candidate(Scratch& s, int32_t left) const {
    if (left < 0) return;
    const int32_t right = s.symbols[left].next;
    if (right < 0) return;
    const Merge* m = merges.find(pair_key(s.symbols[left].id, s.symbols[right].id));
    if (m == nullptr) return;
    s.heap.push_back({m->rank, left, s.symbols[left].id, s.symbols[right].id, m->result});
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
    l.id = c.result;
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

// special_ids, when given, are the parse_special tokens; otherwise the GGUF control tokens are.
std::vector<MatchMode> match_modes(const TokenizerSpec& spec) {
  std::vector<MatchMode> mode(spec.tokens.size(), MatchMode::Never);
  for (size_t id = 0; id < spec.token_types.size(); id++) {
    if (spec.token_types[id] == kTypeUserDefined)
      mode[id] = MatchMode::Always;
    else if (spec.token_types[id] == kTypeControl && spec.special_ids.empty())
      mode[id] = MatchMode::WhenParsingSpecial;
  }
  for (int32_t id : spec.special_ids) mode[id] = MatchMode::WhenParsingSpecial;
  return mode;
}

// Matchable and non-normal tokens decode to their text as written, not through the GPT-2 byte map.
bool is_literal(const TokenizerSpec& spec, MatchMode mode, int32_t id) {
  if (mode != MatchMode::Never) return true;
  return !spec.token_types.empty() && spec.token_types[id] != kTypeNormal && spec.token_types[id] != kTypeByte;
}

}  // namespace

void Tokenizer::Impl::build_vocab(const TokenizerSpec& spec) {
  const std::vector<MatchMode> modes = match_modes(spec);
  id_of.build(spec.tokens);
  bytes.reserve(spec.tokens.size(), 0);
  std::string raw;
  for (int32_t id = 0; id < (int32_t)spec.tokens.size(); id++) {
    const std::string& text = spec.tokens[id];
    const bool literal = is_literal(spec, modes[id], id) || !gpt2_to_bytes(text, raw);
    bytes.push(literal ? std::string_view(text) : std::string_view(raw));
    specials.add(text, id, modes[id]);
  }
  specials.finish();
}

void Tokenizer::Impl::build_byte_tokens(const TokenizerSpec& spec) {
  for (int b = 0; b < 256; b++) {
    const int32_t id = id_of.find(byte_token_text((uint8_t)b));
    MOESCOPE_CHECK(id >= 0, "TOKENIZER_BAD_VOCAB",
                   "%s: the vocabulary lacks the token for byte 0x%02X, which byte-level BPE needs",
                   spec.source.c_str(), b);
    byte_token[b] = id;
  }
}

int32_t Tokenizer::Impl::merge_part(const TokenizerSpec& spec, size_t rank, std::string_view part) const {
  const int32_t id = id_of.find(part);
  MOESCOPE_CHECK(id >= 0, "TOKENIZER_BAD_MERGE", "%s: merge %zu ('%s') uses '%s', which is not in the vocabulary",
                 spec.source.c_str(), rank, spec.merges[rank].c_str(), std::string(part).c_str());
  return id;
}

void Tokenizer::Impl::build_merges(const TokenizerSpec& spec) {
  merges.reserve(spec.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < spec.merges.size(); rank++) {
    const std::string& m = spec.merges[rank];
    const size_t sp = m.find(' ');
    MOESCOPE_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos,
                   "TOKENIZER_BAD_MERGE", "%s: merge %zu ('%s') is not two tokens separated by one space",
                   spec.source.c_str(), rank, m.c_str());
    const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    const int32_t l = merge_part(spec, rank, left), r = merge_part(spec, rank, right);
    joined.assign(left).append(right);
    const int32_t result = merge_part(spec, rank, joined);
    merges.insert_if_absent(pair_key(l, r), Merge{(int32_t)rank, result});
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
  MOESCOPE_CHECK(text.size() < (size_t)INT32_MAX, "TOKENIZER_TOO_LONG", "%s: cannot encode %zu bytes at once (2 GiB at most)",
                 spec_.source.c_str(), text.size());  // symbol indices are int32
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && spec_.bos_id >= 0) out.push_back(spec_.bos_id);  // no BOS token: nothing to add (as HF)
  Scratch scratch;
  if (!impl_->specials.active(parse_special)) {
    impl_->encode_plain(text, scratch, out);
    return out;
  }
  size_t plain = 0;  // start of the text not yet encoded
  for (size_t i = 0; i < text.size();) {
    const auto [id, len] = impl_->specials.match(text, i, parse_special);
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
  return std::string(impl_->bytes.at(id));
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    MOESCOPE_CHECK(id >= 0 && id < vocab_size(), "TOKENIZER_BAD_ID", "%s: token id %d is outside the vocabulary (%d tokens)",
                   spec_.source.c_str(), id, vocab_size());
    out += impl_->bytes.at(id);
  }
  return out;
}

int32_t Tokenizer::token_id(std::string_view token_text) const {
  return impl_->id_of.find(token_text);
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
