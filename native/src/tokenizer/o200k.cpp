// Hand-written matcher for the o200k pre-tokenizer regex (see o200k.h for the pattern). The text is
// decoded, a chunk at a time, into classified characters; each alternative is a small function that
// returns where its match ends (in characters) or kNoMatch, and the first alternative that matches
// wins. Every alternative is linear in what it scans, so splitting is linear in the text.
#include "tokenizer/o200k.h"

#include <algorithm>
#include <cstdint>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace moescope::o200k {
namespace {

using unicode::CpClass;
constexpr size_t kNoMatch = SIZE_MAX;

struct Char {
  uint32_t cp;
  size_t offset;  // byte offset of the character in the text
  CpClass cls;
};

bool is_letter(CpClass c) { return c >= CpClass::Lu && c <= CpClass::Lo; }
bool is_number(const Char& c) { return c.cls == CpClass::N; }
bool is_space(const Char& c) { return c.cls == CpClass::Space; }
bool is_cr_lf(const Char& c) { return c.cp == '\r' || c.cp == '\n'; }
// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
bool is_upperish(const Char& c) {
  return c.cls == CpClass::Lu || c.cls == CpClass::Lt || c.cls == CpClass::Lm || c.cls == CpClass::Lo ||
         c.cls == CpClass::M;
}
// [\p{Ll}\p{Lm}\p{Lo}\p{M}]
bool is_lowerish(const Char& c) {
  return c.cls == CpClass::Ll || c.cls == CpClass::Lm || c.cls == CpClass::Lo || c.cls == CpClass::M;
}
// [^\r\n\p{L}\p{N}]: the optional lead character of a word (a space, a quote, a mark, ...)
bool is_word_lead(const Char& c) { return !is_cr_lf(c) && !is_letter(c.cls) && !is_number(c); }
// [^\s\p{L}\p{N}]
bool is_symbol(const Char& c) { return !is_space(c) && !is_letter(c.cls) && !is_number(c); }

// Invalid UTF-8 becomes a U+FFFD character (class Other) spanning its raw bytes.
void decode(std::string_view text, std::vector<Char>& chars) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const utf8::Step s = utf8::next(p + i, text.size() - i);
    const CpClass cls = s.status == utf8::Status::Ok ? unicode::cp_class(s.cp) : CpClass::Other;
    chars.push_back({s.cp, i, cls});
    i += s.len;
  }
}

class Matcher {
 public:
  explicit Matcher(const std::vector<Char>& chars) : c_(chars), n_(chars.size()) {}

  // End of the token starting at s (always > s).
  size_t match(size_t s) const {
    for (auto alt : {&Matcher::word_lower, &Matcher::word_upper, &Matcher::digits, &Matcher::symbols,
                     &Matcher::newlines, &Matcher::spaces_before_space, &Matcher::spaces}) {
      const size_t e = (this->*alt)(s);
      if (e != kNoMatch) return e;
    }
    return s + 1;  // unreachable: every character matches some alternative; stay safe regardless
  }

 private:
  const std::vector<Char>& c_;
  const size_t n_;

  template <class Pred>
  size_t run(size_t s, Pred pred) const {
    while (s < n_ && pred(c_[s])) s++;
    return s;
  }

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)?  Case folding also maps U+017F LONG S to s, as the engines do.
  size_t contraction(size_t e) const {
    if (e >= n_ || c_[e].cp != '\'' || e + 1 >= n_) return e;
    auto fold = [](uint32_t cp) { return cp == 0x17F ? uint32_t('s') : (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp); };
    const uint32_t a = fold(c_[e + 1].cp);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return e + 2;
    if (e + 2 >= n_) return e;
    const uint32_t b = fold(c_[e + 2].cp);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return e + 3;
    return e;
  }

  // [U]*[W]+ from s: the greedy U* gives back characters (those in both classes) until W+ can start.
  size_t upper_then_lower(size_t s) const {
    const size_t u_end = run(s, is_upperish);
    for (size_t j = u_end + 1; j-- > s;) {
      if (j < n_ && is_lowerish(c_[j])) return run(j, is_lowerish);
    }
    return kNoMatch;
  }

  // [U]+[W]*
  size_t upper_run_then_lower(size_t s) const {
    const size_t u_end = run(s, is_upperish);
    return u_end == s ? kNoMatch : run(u_end, is_lowerish);
  }

  // [^\r\n\p{L}\p{N}]? body (contraction)?  — first with the lead character, then without it.
  template <class Body>
  size_t word(size_t s, Body body) const {
    if (is_word_lead(c_[s]) && s + 1 < n_) {
      const size_t e = (this->*body)(s + 1);
      if (e != kNoMatch) return contraction(e);
    }
    const size_t e = (this->*body)(s);
    return e == kNoMatch ? kNoMatch : contraction(e);
  }

  size_t word_lower(size_t s) const { return word(s, &Matcher::upper_then_lower); }
  size_t word_upper(size_t s) const { return word(s, &Matcher::upper_run_then_lower); }

  // \p{N}{1,3}
  size_t digits(size_t s) const {
    size_t e = s;
    while (e < n_ && e - s < 3 && is_number(c_[e])) e++;
    return e == s ? kNoMatch : e;
  }

  //  ?[^\s\p{L}\p{N}]+[\r\n/]*   (without the space the body cannot start at a space, so no retry)
  size_t symbols(size_t s) const {
    const size_t b = c_[s].cp == ' ' ? s + 1 : s;
    const size_t e = run(b, is_symbol);
    if (e == b) return kNoMatch;
    return run(e, [](const Char& c) { return is_cr_lf(c) || c.cp == '/'; });
  }

  // \s*[\r\n]+ : whitespace up to and including the run's last \r or \n.
  size_t newlines(size_t s) const {
    const size_t e = run(s, is_space);
    for (size_t j = e; j-- > s;) {
      if (is_cr_lf(c_[j])) return j + 1;
    }
    return kNoMatch;
  }

  // \s+(?!\S) : all of the run at the end of the text, else all but its last character.
  size_t spaces_before_space(size_t s) const {
    const size_t e = run(s, is_space);
    if (e == s) return kNoMatch;
    if (e == n_) return e;
    return e - s >= 2 ? e - 1 : kNoMatch;
  }

  // \s+
  size_t spaces(size_t s) const {
    const size_t e = run(s, is_space);
    return e == s ? kNoMatch : e;
  }
};

// A piece boundary that no context can move: just after a '\n' followed by an ASCII character that
// is neither whitespace nor '/'. Every alternative that can contain that '\n' ends there (a symbol
// run takes [\r\n/]* and stops; \s*[\r\n]+ ends at the run's last newline, and it is tried before
// \s+(?!\S), the one alternative that looks ahead), and matching at a position never looks back.
bool stable_boundary(std::string_view text, size_t p) {
  const unsigned char c = (unsigned char)text[p];
  return text[p - 1] == '\n' && c < 0x80 && c != '/' && c != ' ' && !(c >= '\t' && c <= '\r');
}

// The end of the chunk starting at begin: the first stable boundary at least min_bytes on, or the end.
size_t chunk_end(std::string_view text, size_t begin, size_t min_bytes) {
  for (size_t p = begin + std::max<size_t>(min_bytes, 1); p < text.size(); p++) {
    if (stable_boundary(text, p)) return p;
  }
  return text.size();
}

void split_chunk(std::string_view text, size_t base, std::vector<Char>& chars, std::vector<Piece>& out) {
  chars.clear();
  chars.reserve(text.size());
  decode(text, chars);
  const Matcher m(chars);
  for (size_t s = 0; s < chars.size();) {
    const size_t e = m.match(s);
    const size_t end_byte = e < chars.size() ? chars[e].offset : text.size();
    out.push_back({base + chars[s].offset, base + end_byte});
    s = e;
  }
}

}  // namespace

void split(std::string_view text, std::vector<Piece>& out, size_t chunk_bytes) {
  std::vector<Char> chars;  // one decoded chunk at a time keeps memory bounded on huge texts
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = chunk_end(text, begin, chunk_bytes);
    split_chunk(text.substr(begin, end - begin), begin, chars, out);
    begin = end;
  }
}

}  // namespace moescope::o200k
