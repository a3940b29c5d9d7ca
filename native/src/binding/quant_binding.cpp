#include "binding/registry.h"

namespace moescope::binding {
void register_quant(Napi::Env env, Napi::Object exports) {}
}  // namespace moescope::binding
