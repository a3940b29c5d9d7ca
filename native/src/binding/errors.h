// C++ exceptions -> JavaScript errors. Every binding entry point catches everything: an exception that
// escaped into Node would terminate the kernel process and lose the user's notebook state.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "common/error.h"

namespace moescope::binding {

inline Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Runs fn; on a C++ exception throws the matching JS error (returns an empty value).
template <typename F>
auto guarded(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const moescope::Error& e) {
    throw make_error(env, e.code, e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "OUT_OF_MEMORY", "out of memory");
  } catch (const std::exception& e) {
    throw make_error(env, "INTERNAL", e.what());
  }
}

// For AsyncWorker::Execute: stores (code, message) to reject with later.
struct ErrorSlot {
  std::string code, message;
  bool set = false;
  template <typename F>
  void run(F&& fn) {
    try {
      fn();
    } catch (const moescope::Error& e) {
      code = e.code, message = e.what(), set = true;
    } catch (const std::bad_alloc&) {
      code = "OUT_OF_MEMORY", message = "out of memory", set = true;
    } catch (const std::exception& e) {
      code = "INTERNAL", message = e.what(), set = true;
    }
  }
};

}  // namespace moescope::binding
