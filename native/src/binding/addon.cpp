// moescope.node entry point.
#include "binding/registry.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace moescope::binding;
  register_model(env, exports);
  register_tokenizer(env, exports);
  register_quant(env, exports);
  register_ops(env, exports);
  register_vision(env, exports);
  return exports;
}
NODE_API_MODULE(moescope, Init)
