#include "io/json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace moescope {

namespace {

struct Parser {
  std::string_view s;
  const std::string& source;
  size_t i = 0;
  static constexpr int kMaxDepth = 256;

  [[noreturn]] void error(const char* what) const {
    fail("JSON_INVALID", strfmt("%s: invalid JSON at byte %zu: %s", source.c_str(), i, what));
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
  }
  bool lit(const char* w) {
    size_t n = strlen(w);
    if (s.substr(i, n) == w) { i += n; return true; }
    return false;
  }
  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
    else { out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
  }
  uint32_t hex4() {
    if (i + 4 > s.size()) error("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else error("bad hex digit in \\u escape");
    }
    return v;
  }
  std::string string() {
    // precondition: s[i] == '"'
    i++;
    std::string out;
    while (true) {
      if (i >= s.size()) error("unterminated string");
      char c = s[i++];
      if (c == '"') return out;
      if ((unsigned char)c < 0x20) error("control character in string");
      if (c != '\\') { out += c; continue; }
      if (i >= s.size()) error("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            size_t save = i;
            i += 2;
            uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else i = save;
          }
          put_utf8(out, cp);
          break;
        }
        default: error("unknown escape");
      }
    }
  }
  Json value(int depth) {
    if (depth > kMaxDepth) error("nesting too deep");
    ws();
    if (i >= s.size()) error("unexpected end of input");
    Json v;
    char c = s[i];
    if (c == '{') {
      v.kind = Json::Kind::Object;
      i++;
      ws();
      if (i < s.size() && s[i] == '}') { i++; return v; }
      while (true) {
        ws();
        if (i >= s.size() || s[i] != '"') error("expected a string key");
        std::string k = string();
        ws();
        if (i >= s.size() || s[i] != ':') error("expected ':'");
        i++;
        v.obj.emplace_back(std::move(k), value(depth + 1));
        ws();
        if (i < s.size() && s[i] == ',') { i++; continue; }
        if (i < s.size() && s[i] == '}') { i++; return v; }
        error("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::Array;
      i++;
      ws();
      if (i < s.size() && s[i] == ']') { i++; return v; }
      while (true) {
        v.arr.push_back(value(depth + 1));
        ws();
        if (i < s.size() && s[i] == ',') { i++; continue; }
        if (i < s.size() && s[i] == ']') { i++; return v; }
        error("expected ',' or ']'");
      }
    }
    if (c == '"') { v.kind = Json::Kind::String; v.str = string(); return v; }
    if (lit("true")) { v.kind = Json::Kind::Bool; v.b = true; return v; }
    if (lit("false")) { v.kind = Json::Kind::Bool; v.b = false; return v; }
    if (lit("null")) return v;
    // Python's json writes NaN/Infinity; accept them so real config files load.
    if (lit("NaN")) { v.kind = Json::Kind::Number; v.num = NAN; return v; }
    if (lit("Infinity")) { v.kind = Json::Kind::Number; v.num = INFINITY; return v; }
    if (lit("-Infinity")) { v.kind = Json::Kind::Number; v.num = -INFINITY; return v; }
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      if (s[i] == '-') i++;
      while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i] == '+' || s[i] == '-')) i++;
      std::string tok(s.substr(start, i - start));
      char* end = nullptr;
      v.num = strtod(tok.c_str(), &end);
      if (end != tok.c_str() + tok.size()) { i = start; error("bad number"); }
      v.kind = Json::Kind::Number;
      return v;
    }
    error("unexpected character");
  }
};

}  // namespace

Json Json::parse(std::string_view text, const std::string& source) {
  Parser p{text, source};
  Json v = p.value(0);
  p.ws();
  if (p.i != text.size()) p.error("trailing characters after the value");
  return v;
}

const Json* Json::get(std::string_view key) const {
  if (kind != Kind::Object) return nullptr;
  for (auto& kv : obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

}  // namespace moescope
