// The addon's parts. Each binding file registers its exports here; addon.cpp calls them all.
// Only this directory includes napi.h.
#pragma once
#include <napi.h>

namespace moescope::binding {
void register_model(Napi::Env env, Napi::Object exports);      // model_binding.cpp
void register_tokenizer(Napi::Env env, Napi::Object exports);  // tokenizer_binding.cpp
void register_quant(Napi::Env env, Napi::Object exports);      // quant_binding.cpp (test exports)
void register_ops(Napi::Env env, Napi::Object exports);        // ops_binding.cpp (test exports)
void register_vision(Napi::Env env, Napi::Object exports);     // vision_binding.cpp
void register_synth(Napi::Env env, Napi::Object exports);      // synth_binding.cpp
}  // namespace moescope::binding
