// UTF-8 decoding shared by the pre-tokenizer and Utf8Stream. Invalid input never throws: each bad
// stretch is reported as one "maximal subpart" (Unicode §3.9, the rule WHATWG and V8 follow), which
// callers either keep as raw bytes (encode) or replace by one U+FFFD (streamed decode).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moescope::utf8 {

enum class Status : uint8_t { Ok, Invalid, Truncated };  // Truncated: valid so far, cut by the end

struct Step {
  uint32_t cp;   // the code point, or U+FFFD when not Ok
  uint32_t len;  // bytes consumed, always >= 1
  Status status;
};

constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Decodes the sequence starting at p; n >= 1 bytes are available.
inline Step next(const unsigned char* p, size_t n) {
  const unsigned b0 = p[0];
  if (b0 < 0x80) return {b0, 1, Status::Ok};
  uint32_t need, cp;
  unsigned lo = 0x80, hi = 0xBF;  // the second byte's range excludes overlongs, surrogates, > U+10FFFF
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0xFFFD, 1, Status::Invalid};
  }
  for (uint32_t i = 1; i <= need; i++) {
    if (i >= n) return {0xFFFD, i, Status::Truncated};
    const unsigned b = p[i];
    if (b < lo || b > hi) return {0xFFFD, i, Status::Invalid};
    lo = 0x80, hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1, Status::Ok};
}

}  // namespace moescope::utf8
