#include "binding/registry.h"

namespace moescope::binding {
void register_model(Napi::Env env, Napi::Object exports) {}
}  // namespace moescope::binding
