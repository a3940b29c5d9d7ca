// Errors inside the engine. Nothing in native/ may exit, abort or assert: the addon lives in the
// user's kernel process. Every failure throws moescope::Error{code, message}; the binding layer turns
// it into a JavaScript Error with the same code. Messages name the file and say what was expected.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace moescope {

struct Error : std::runtime_error {
  std::string code;  // stable, machine-readable: "GGUF_BAD_MAGIC", "CONFIG_MISSING_KEY", ...
  Error(std::string code_, const std::string& msg) : std::runtime_error(msg), code(std::move(code_)) {}
};

inline std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string strfmt(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[512];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  std::string out;
  if (n < (int)sizeof small) {
    out.assign(small, n < 0 ? 0 : n);
  } else {
    out.resize(n);
    vsnprintf(&out[0], n + 1, fmt, ap2);
  }
  va_end(ap2);
  return out;
}

[[noreturn]] inline void fail(const char* code, const std::string& msg) { throw Error(code, msg); }

}  // namespace moescope

// MOESCOPE_CHECK(cond, "CODE", "printf format", args...) throws moescope::Error when cond is false.
#define MOESCOPE_CHECK(cond, code, ...)                                   \
  do {                                                                    \
    if (!(cond)) ::moescope::fail(code, ::moescope::strfmt(__VA_ARGS__)); \
  } while (0)
