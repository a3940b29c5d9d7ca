// Shared by every CUDA file: the error check (CUDA failures become moescope::Error with a CUDA_* code
// and a HINT, never an abort), an owning device buffer, and the launch/wait helpers. Waiting polls
// the stream and the run's cancel flag, so a cancelled run returns while the GPU drains its queue.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "common/error.h"

namespace moescope::cuda {

[[noreturn]] inline void fail_cuda(cudaError_t e, const char* what, const char* file, int line) {
  const char* code = e == cudaErrorMemoryAllocation ? "CUDA_OUT_OF_MEMORY"
                     : (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? "CUDA_NO_DEVICE"
                     : e == cudaErrorNoKernelImageForDevice ? "CUDA_NO_KERNEL_IMAGE"
                                                            : "CUDA_ERROR";
  const char* hint = e == cudaErrorMemoryAllocation ? "the weights or the KV cache do not fit: use a smaller quantization, a shorter run, or device \"cpu\""
                     : e == cudaErrorNoKernelImageForDevice ? "the addon was compiled for sm_80/sm_90; set CMAKE_CUDA_ARCHITECTURES for this GPU and rebuild"
                     : (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? "no usable GPU/driver: load with { device: \"cpu\" } or \"auto\""
                                                                                    : "a CUDA call failed; the device may be in a bad state, restart the kernel";
  fail(code, strfmt("%s failed: %s (%s) at %s:%d. HINT: %s", what, cudaGetErrorString(e), cudaGetErrorName(e), file, line, hint));
}

}  // namespace moescope::cuda

#define CUDA_CHECK(call)                                                                              \
  do {                                                                                                \
    cudaError_t e_ = (call);                                                                          \
    if (e_ != cudaSuccess) { (void)cudaGetLastError(); ::moescope::cuda::fail_cuda(e_, #call, __FILE__, __LINE__); } \
  } while (0)
// After a launch: reports bad launch configurations at once (execution errors surface at the next wait).
#define CUDA_LAUNCHED(name) CUDA_CHECK(cudaPeekAtLastError())

namespace moescope::cuda {

// Owns device memory; moves, never copies.
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  DevBuf() = default;
  explicit DevBuf(size_t count) { resize(count); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; o.n = 0; }
  DevBuf& operator=(DevBuf&& o) noexcept { if (this != &o) { release(); p = o.p; n = o.n; o.p = nullptr; o.n = 0; } return *this; }
  ~DevBuf() { release(); }
  void release() { if (p) cudaFree(p); p = nullptr; n = 0; }
  // Grows only (contents are not kept); buffers are reused across layers and steps. True if it moved.
  bool reserve(size_t count) {
    if (count <= n) return false;
    resize(count);
    return true;
  }
  void resize(size_t count) {
    release();
    if (count) CUDA_CHECK(cudaMalloc((void**)&p, count * sizeof(T)));
    n = count;
  }
};

// Waits for the stream while honouring the run's cancel flag (no blocking sync that ignores it).
// The first ~0.5 ms polls with yields (a decode step ends within that window, and a sleep would add
// its timer slack to every token), then it sleeps between polls.
inline void wait(cudaStream_t s, const std::atomic<bool>* cancel) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    cudaError_t e = cudaStreamQuery(s);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) CUDA_CHECK(e);
    if (cancel && cancel->load(std::memory_order_relaxed)) fail("CANCELLED", "cancelled");
    if (std::chrono::steady_clock::now() - t0 < std::chrono::microseconds(500)) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

inline unsigned cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

}  // namespace moescope::cuda
