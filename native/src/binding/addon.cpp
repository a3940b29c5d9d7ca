// moescope.node entry point.
#include <cstdio>

#include "binding/registry.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace moescope::binding;
  // In the kernel, stdout is a pipe to the notebook: line-buffer native output so a printf shows
  // when its line ends, not when 4 KiB have piled up.
  setvbuf(stdout, nullptr, _IOLBF, 0);
  setvbuf(stderr, nullptr, _IONBF, 0);
  register_model(env, exports);
  register_tokenizer(env, exports);
  register_quant(env, exports);
  register_ops(env, exports);
  register_vision(env, exports);
  register_synth(env, exports);
  return exports;
}
NODE_API_MODULE(moescope, Init)
