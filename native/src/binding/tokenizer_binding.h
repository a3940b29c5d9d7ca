// JS face of the tokenizer for other binding files: wraps a C++ Tokenizer (for example one built
// from GGUF metadata) in the addon's `Tokenizer` class, so JS sees the same object as fromHF gives.
#pragma once
#include <napi.h>

#include <memory>

#include "tokenizer/tokenizer.h"

namespace moescope::binding {

// Requires register_tokenizer to have run in this env (addon.cpp does it at load).
Napi::Object wrap_tokenizer(Napi::Env env, std::shared_ptr<const Tokenizer> tokenizer);

}  // namespace moescope::binding
