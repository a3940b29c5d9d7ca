// Llama4Cuda: the Llama 4 text forward on one CUDA device, the same function as
// Llama4Model::forward (native/src/model/llama4.cpp, spec §2) step for step: same segmenting at chunk
// boundaries, same logits layout ([rows, V] for the last rc.logits_last rows), the same hook points
// in the same order, the same interventions and the same capture API (CaptureStore).
//   Weights: uploaded once from the mmap at construction (tied tensors shared), kept in their
//     checkpoint format; kernels dequantise on the fly (matmul.cuh).
//   KV cache (CudaKv, one per run): float32 like the CPU's, chunk-aware: a chunked layer holds one
//     attn_chunk of slots and restarts at each chunk boundary; a global layer holds the whole run.
//   Hooks: a hook point costs nothing unless the plan captures it or an intervention targets it.
//     Captures are queued as async device->host copies of only the rows the plan keeps, into pinned
//     staging, and handed to the CaptureStore when the step's logits are read (one sync per step),
//     so routing capture adds no pipeline stalls. Routing (logits, experts, gates) is written by the
//     router matmul and the routing kernel straight into a per-step record that returns in one copy. Patches and steering need the rows on the host
//     and back (a synchronous round trip, only where they apply).
//   Routing: router logits -> routing kernel (moe.cuh) -> experts, gates, per-slot expert in device
//     arrays that the hooks read; expert interventions are applied by that kernel. Decode runs each
//     token's experts with matmul_id (expert ids read on the device, no host round trip); prefill
//     reads the routing back once per MoE layer and runs each chosen expert once on its tokens.
//   Decode: a step of one token whose hooks all stay on the device (no capture but the routing
//     record, no patch or steering) is captured once as a CUDA graph and replayed: one launch per
//     token instead of ~30 per layer, whose host cost set the decode speed (device-check, H100).
//   Cancellation: the run's flag is checked between layers and while waiting for the device.
// Thread safety: one forward at a time per backend (a mutex); runs on one model queue up.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/device.h"
#include "cuda/matmul.cuh"
#include "cuda/moe.cuh"
#include "model/llama4.h"

namespace moescope::cuda {

struct CudaKvLayer {
  DevBuf<uint8_t> k, v;  // [slots, Hkv, Dh] of the run's KvType
  int64_t slots = 0, pos0 = 0, n = 0;
};

// One run's device state: its KV cache and its intervention tables (built at the first forward).
struct CudaRunState {
  uint64_t id = 0;  // unique per backend: which run a captured decode graph belongs to
  KvType kv_type = KvType::F32;
  std::vector<CudaKvLayer> kv;
  bool iv_built = false;
  DevBuf<uint8_t> iv_blob;
  std::vector<RouteIv> route_iv;          // per layer
  std::vector<const uint8_t*> head_mask;  // per layer, device or nullptr
};

class Llama4Cuda : public DeviceBackend, public std::enable_shared_from_this<Llama4Cuda> {
 public:
  // Keeps no reference to the model (the registry holds the model weakly and this backend strongly):
  // runs hold the model alive themselves, and the weights live on the device.
  explicit Llama4Cuda(const std::shared_ptr<const Llama4Model>& m, int device = 0);
  ~Llama4Cuda() override;
  std::unique_ptr<DeviceRun> new_run(int64_t max_len, KvType kv_type) override;
  std::string describe() const override { return describe_; }
  uint64_t device_bytes() const override { return weight_bytes_; }
  double host_wait_seconds() const override { return wait_seconds_; }

  std::vector<float> forward(CudaRunState& st, Session& s, const int32_t* tokens, int64_t T, RunContext& rc);

 private:
  struct DLayer {
    DevBuf<float> attn_norm, ffn_norm;
    DMat wq, wk, wv, wo, router, gate_exps, up_exps, down_exps, shexp_gate, shexp_up, shexp_down, ffn_gate, ffn_up, ffn_down;
  };
  struct Deferred;  // a capture waiting for its async copy

  DMat upload(const Mat& m, int64_t n_experts = 1, size_t expert_stride = 0);
  const uint8_t* upload_bytes(const uint8_t* host, size_t n, const char* name);
  DevBuf<float> upload_floats(const std::vector<float>& v);
  void build_interventions(CudaRunState& st, const Interventions* iv);

  std::vector<float> forward_segment(CudaRunState& st, Session& s, const int32_t* tokens, int64_t T, RunContext& rc);
  void kv_advance(CudaRunState& st, int64_t p0, int64_t T);  // the caches' bookkeeping for positions p0 .. p0+T-1
  void launch_step(CudaRunState& st, int64_t T, const std::vector<int64_t>& pos, RunContext& rc, int64_t r0);
  bool graphable(const RunContext& rc, int64_t T) const;
  template <class U> void grow(DevBuf<U>& b, size_t n) { if (b.reserve(n)) epoch_++; }
  void attention(int il, CudaRunState& st, int64_t T, const std::vector<int64_t>& pos, RunContext& rc);
  void moe(int il, CudaRunState& st, int64_t T, const std::vector<int64_t>& pos, RunContext& rc);
  void dense_ffn(int il, int64_t T);

  void hook(RunContext& rc, HookPoint p, int layer, float* d, int64_t T, int64_t row, const int64_t* pos);
  void capture_int(RunContext& rc, HookPoint p, int layer, const int32_t* d, int64_t T, int64_t row, const int64_t* pos);
  void flush_record(RunContext& rc, int64_t T, const int64_t* pos);  // routing record -> deferred captures
  void* stage(size_t bytes);  // pinned host bytes valid until flush()
  void h2d(void* dst, const void* src, size_t bytes);
  void d2h_now(void* dst, const void* src, size_t bytes, RunContext& rc);
  void flush(RunContext& rc);  // waits for the queued copies and hands them to the CaptureStore
  void sync(RunContext& rc);   // waits for the stream (cancel honoured), counting the time in wait_seconds_

  const Llama4Config c_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  std::string describe_;
  double wait_seconds_ = 0;
  uint64_t weight_bytes_ = 0;
  std::mutex mu_;

  std::vector<DevBuf<uint8_t>> weight_allocs_;
  struct Uploaded { const uint8_t* host; const uint8_t* dev; size_t bytes; };
  std::vector<Uploaded> uploaded_;  // for tied tensors (one upload per host range)
  std::vector<DLayer> layers_;
  DMat output_;
  DevBuf<float> output_norm_;
  DevBuf<double> rope_freq_;
  const uint8_t* token_embd_ = nullptr;
  uint32_t token_embd_type_ = 0;
  size_t token_embd_row_ = 0;

  // Decode steps as one CUDA graph: captured at a run's first step, replayed while nothing it bakes
  // in changes (graph_key_: the run, the scratch buffers' addresses, the chunk, the rows read back).
  cudaGraphExec_t graph_exec_ = nullptr;
  std::vector<int64_t> graph_key_;
  uint64_t epoch_ = 0;        // bumped whenever a scratch buffer moves
  uint64_t next_run_id_ = 1;

  // Scratch, grown on demand and reused by every layer and step.
  DevBuf<float> x_, a_, f_, q_, k_, v_, z_, rlogits_, gates_, xin_, hg_, hu_, yslot_, ysorted_, routed_, sg_, su_, h_, logits_, temp_, probs_;
  DevBuf<int32_t> tokens_d_, experts_, slot_expert_, perm_, pslots_;
  DevBuf<int64_t> pos_d_;
  DevBuf<float> rec_;          // routing record of the step: [layer][T][E logits | K experts (int32) | K gates]
  std::vector<bool> rec_on_;   // per layer: routing goes to the record

  // Pinned staging for captures (chunks never move while copies are in flight).
  struct Pinned { void* p = nullptr; size_t size = 0, used = 0; };
  std::vector<Pinned> pinned_;
  size_t pinned_used_total_ = 0;
  std::vector<std::unique_ptr<Deferred>> deferred_;
};

}  // namespace moescope::cuda
