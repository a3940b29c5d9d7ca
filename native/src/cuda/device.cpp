// The device registry (always compiled): which backend runs which model, and the CPU-build stubs
// that turn a CUDA request into a clear error. The CUDA definitions live in llama4_cuda.cu.
#include "cuda/device.h"

#include <map>
#include <mutex>

#include "common/error.h"
#include "model/llama4.h"

namespace moescope {

#ifdef MOESCOPE_HAVE_CUDA
int cuda_device_count_impl();
std::shared_ptr<DeviceBackend> make_cuda_backend_impl(const std::shared_ptr<const Llama4Model>& m);
double cuda_read_bandwidth_impl(uint64_t bytes, int reps);
bool cuda_compiled() { return true; }
int cuda_device_count() { return cuda_device_count_impl(); }
std::shared_ptr<DeviceBackend> make_cuda_backend(const std::shared_ptr<const Llama4Model>& m) { return make_cuda_backend_impl(m); }
double cuda_read_bandwidth(uint64_t bytes, int reps) { return cuda_read_bandwidth_impl(bytes, reps); }
#else
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::shared_ptr<DeviceBackend> make_cuda_backend(const std::shared_ptr<const Llama4Model>&) {
  fail("CUDA_NOT_COMPILED",
       "device \"cuda\": this moescope addon was built without the CUDA backend. HINT: rebuild on a machine with nvcc "
       "(MOESCOPE_CUDA=1 npm run build:native), or load with { device: \"cpu\" } or \"auto\"");
}
double cuda_read_bandwidth(uint64_t, int) {
  fail("CUDA_NOT_COMPILED", "the bandwidth probe needs the CUDA backend. HINT: MOESCOPE_CUDA=1 npm run build:native on a GPU machine");
}
#endif

std::shared_ptr<DeviceBackend> pick_device(const std::string& device, const std::shared_ptr<const Llama4Model>& m) {
  if (device == "cpu") return nullptr;
  if (device == "cuda") return make_cuda_backend(m);
  if (device == "auto") {
    if (!cuda_compiled() || cuda_device_count() == 0) return nullptr;
    return make_cuda_backend(m);  // a GPU that is present but fails (out of memory) is an error, not a silent CPU run
  }
  fail("BAD_ARGUMENT", strfmt("device must be \"cpu\", \"cuda\" or \"auto\", got \"%s\"", device.c_str()));
}

namespace {
struct Entry {
  std::weak_ptr<const Llama4Model> model;
  std::shared_ptr<DeviceBackend> backend;
};
std::mutex g_mu;
std::map<const Llama4Model*, Entry> g_devices;
void purge_locked() {
  for (auto it = g_devices.begin(); it != g_devices.end();) it = it->second.model.expired() ? g_devices.erase(it) : std::next(it);
}
}  // namespace

void set_model_device(const std::shared_ptr<const Llama4Model>& m, std::shared_ptr<DeviceBackend> b) {
  std::lock_guard<std::mutex> lk(g_mu);
  purge_locked();
  if (b) g_devices[m.get()] = Entry{m, std::move(b)};
  else g_devices.erase(m.get());
}

std::shared_ptr<DeviceBackend> model_device(const Llama4Model* m) {
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_devices.find(m);
  if (it == g_devices.end()) return nullptr;
  auto alive = it->second.model.lock();
  if (!alive || alive.get() != m) { g_devices.erase(it); return nullptr; }
  return it->second.backend;
}

}  // namespace moescope
