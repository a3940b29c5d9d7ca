// Device backends, seen from the CPU engine (plain C++, compiled in every build). A backend runs the
// same forward as Llama4Model::forward (same logits layout, same hooks, same interventions) on an
// accelerator; the binding attaches one to a loaded model and run_model asks for it. A CPU-only
// build answers every CUDA request with a moescope::Error (code CUDA_NOT_COMPILED) instead of
// failing at link or load time, so one addon can always be loaded.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/attention.h"  // KvType

namespace moescope {

class Llama4Model;
struct Session;
struct RunContext;

// One sequence on the device: its KV cache lives there. Session carries n_past and the tokens, as
// on the CPU (its host KV layers stay empty).
class DeviceRun {
 public:
  virtual ~DeviceRun() = default;
  virtual std::vector<float> forward(Session& s, const int32_t* tokens, int64_t T, RunContext& rc) = 0;
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual std::unique_ptr<DeviceRun> new_run(int64_t max_len, KvType kv_type) = 0;
  virtual std::string describe() const = 0;      // "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)"
  virtual uint64_t device_bytes() const = 0;     // weights uploaded
  // Seconds the host has spent waiting for the device, since the backend was made. Against a run's
  // wall time it says what bounds a step: the device's work (mostly waiting) or the host launching it.
  virtual double host_wait_seconds() const = 0;
};

bool cuda_compiled();       // this addon was built with MOESCOPE_CUDA
int cuda_device_count();    // usable CUDA devices (0 without a driver/GPU or in a CPU build); never throws
// Uploads the model's weights (once). Throws CUDA_NOT_COMPILED, CUDA_NO_DEVICE, CUDA_OUT_OF_MEMORY, ...
std::shared_ptr<DeviceBackend> make_cuda_backend(const std::shared_ptr<const Llama4Model>& m);

// Resolves a device name ("cpu", "cuda", "auto") for a model: nullptr means the CPU. "auto" falls
// back to the CPU when CUDA is absent (not compiled, no device); "cuda" throws then.
std::shared_ptr<DeviceBackend> pick_device(const std::string& device, const std::shared_ptr<const Llama4Model>& m);

// Which backend runs a model (set by the binding at load; nullptr or never set: the CPU). Entries
// die with their model (held weakly), so a freed model's address can never inherit a backend.
void set_model_device(const std::shared_ptr<const Llama4Model>& m, std::shared_ptr<DeviceBackend> b);
std::shared_ptr<DeviceBackend> model_device(const Llama4Model* m);

// Device read bandwidth in bytes/s (a streaming-read kernel over `bytes`); 0 in a CPU build.
double cuda_read_bandwidth(uint64_t bytes, int reps);

}  // namespace moescope
