// Llama4Cuda: see llama4_cuda.cuh for the contract. Read it next to native/src/model/llama4.cpp: the
// functions have the same names and the same order of steps and hook calls.
//
// Legend: T tokens, D hidden, H heads, Hkv kv heads, Dh head dim, E experts, K experts/token, F expert ffn, V vocab.
#include "cuda/llama4_cuda.cuh"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "cuda/attention.cuh"
#include "cuda/bandwidth.cuh"
#include "cuda/elementwise.cuh"
#include "cuda/norm.cuh"
#include "cuda/rope.cuh"
#include "ops/quant.h"

namespace moescope {

namespace cuda {

namespace {

constexpr int64_t kMaxSegment = 512;                 // as the CPU: prefill micro-batch
constexpr int64_t kDecodeIdRows = 16;                // up to this many (token, expert) slots: matmul_id, no host sync
constexpr size_t kPinnedChunk = 64ull << 20;         // staging grows by chunks of this size
constexpr size_t kPinnedFlushAt = 1ull << 30;        // flush captures once this much is staged
constexpr size_t kProbsBudget = 256ull << 20;        // device bytes of exact attention rows per launch

void check_cancel(const RunContext& rc) {
  if (rc.cancel && rc.cancel->load(std::memory_order_relaxed)) fail("CANCELLED", "cancelled");
}

double attn_temperature(const Llama4Config& c, int64_t p) {  // the CPU's expression, spec §2.4 item 4
  return 1.0 + c.attn_scale * std::log(std::floor((double)(p + 1) / c.floor_scale) + 1.0);
}

bool needs_vector_alignment(uint32_t type) { return type == 0 || type == 1 || type == 30 || type == 12 || type == 13; }

// Rows [tb, te) of a step whose positions the plan keeps (positions are consecutive).
void kept_rows(const CapturePlan& plan, const int64_t* pos, int64_t T, int64_t& tb, int64_t& te) {
  tb = 0;
  while (tb < T && !plan.in_range(pos[tb])) tb++;
  te = tb;
  while (te < T && plan.in_range(pos[te])) te++;
}

// The run object run_model holds: a KV cache on the device and a handle on the backend.
class CudaRun : public DeviceRun {
 public:
  CudaRun(std::shared_ptr<Llama4Cuda> b) : b_(std::move(b)) {}
  std::vector<float> forward(Session& s, const int32_t* tokens, int64_t T, RunContext& rc) override { return b_->forward(st, s, tokens, T, rc); }
  CudaRunState st;

 private:
  std::shared_ptr<Llama4Cuda> b_;
};

}  // namespace

// A capture whose rows are being copied into pinned staging.
struct Llama4Cuda::Deferred {
  enum Kind { Add, AddInt, BeginPattern, PatternRows } kind;
  HookPoint p;
  int layer;
  const void* host;
  int64_t T, row;
  std::vector<int64_t> pos;
  // PatternRows: one entry per (position, head), n_keys floats at host + i * row, written from key lo.
  std::vector<int> heads;
  std::vector<int64_t> lo, n;
};

// ---------------------------------------------------------------------------------------------------
// Construction: weights uploaded once
Llama4Cuda::Llama4Cuda(const std::shared_ptr<const Llama4Model>& m, int device) : c_(m->config()), device_(device) {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  MOESCOPE_CHECK(device_ < count, "CUDA_NO_DEVICE", "cuda:%d requested but %d device(s) are visible", device_, count);
  CUDA_CHECK(cudaSetDevice(device_));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  describe_ = strfmt("cuda:%d %s (sm_%d%d, %.1f GiB)", device_, prop.name, prop.major, prop.minor, prop.totalGlobalMem / 1073741824.0);
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

  const Llama4Weights& w = m->weights();
  token_embd_type_ = w.token_embd.type;
  const TypeTraits* et = type_traits(w.token_embd.type);
  MOESCOPE_CHECK(et && et->supported, "CUDA_UNSUPPORTED_TYPE", "token_embd: unsupported type %u", w.token_embd.type);
  token_embd_row_ = row_bytes(*et, c_.n_embd);
  MOESCOPE_CHECK(!needs_vector_alignment(w.token_embd.type) || token_embd_row_ % 16 == 0, "CUDA_UNSUPPORTED_LAYOUT",
                 "token_embd rows of %zu bytes are not 16-byte aligned. HINT: load with { device: \"cpu\" }", token_embd_row_);
  token_embd_ = upload_bytes(w.token_embd.data, token_embd_row_ * (size_t)c_.n_vocab, w.token_embd.name.c_str());
  output_ = upload(w.output);
  output_norm_ = upload_floats(w.output_norm);
  rope_freq_.resize(std::max<size_t>(c_.rope_freq.size(), 1));
  if (!c_.rope_freq.empty())
    CUDA_CHECK(cudaMemcpy(rope_freq_.p, c_.rope_freq.data(), c_.rope_freq.size() * sizeof(double), cudaMemcpyHostToDevice));
  layers_.resize(c_.n_layer);
  for (int64_t il = 0; il < c_.n_layer; il++) {
    const LayerWeights& lw = w.layers[il];
    DLayer& L = layers_[il];
    L.attn_norm = upload_floats(lw.attn_norm);
    L.ffn_norm = upload_floats(lw.ffn_norm);
    L.wq = upload(lw.wq); L.wk = upload(lw.wk); L.wv = upload(lw.wv); L.wo = upload(lw.wo);
    if (c_.layers[il].is_moe) {
      L.router = upload(lw.router);
      L.gate_exps = upload(lw.gate_exps.base, c_.n_expert, lw.gate_exps.expert_stride);
      L.up_exps = upload(lw.up_exps.base, c_.n_expert, lw.up_exps.expert_stride);
      L.down_exps = upload(lw.down_exps.base, c_.n_expert, lw.down_exps.expert_stride);
      L.shexp_gate = upload(lw.shexp_gate); L.shexp_up = upload(lw.shexp_up); L.shexp_down = upload(lw.shexp_down);
    } else {
      L.ffn_gate = upload(lw.ffn_gate); L.ffn_up = upload(lw.ffn_up); L.ffn_down = upload(lw.ffn_down);
    }
  }
  CUDA_CHECK(cudaDeviceSynchronize());
}

Llama4Cuda::~Llama4Cuda() {
  cudaSetDevice(device_);
  if (stream_) { cudaStreamSynchronize(stream_); cudaStreamDestroy(stream_); }
  if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  for (auto& p : pinned_) cudaFreeHost(p.p);
}

const uint8_t* Llama4Cuda::upload_bytes(const uint8_t* host, size_t n, const char* name) {
  for (auto& u : uploaded_)
    if (u.host == host && u.bytes >= n) return u.dev;  // tied embedding / head
  DevBuf<uint8_t> b;
  try {
    b.resize(n);
  } catch (const Error& e) {
    fail(e.code.c_str(), strfmt("uploading %s (%.1f MiB, %.2f GiB already on the device): %s", name, n / 1048576.0, weight_bytes_ / 1073741824.0, e.what()));
  }
  CUDA_CHECK(cudaMemcpy(b.p, host, n, cudaMemcpyHostToDevice));  // straight from the mmap
  weight_bytes_ += n;
  const uint8_t* d = b.p;
  uploaded_.push_back({host, d, n});
  weight_allocs_.push_back(std::move(b));
  return d;
}

DevBuf<float> Llama4Cuda::upload_floats(const std::vector<float>& v) {
  DevBuf<float> b(std::max<size_t>(v.size(), 1));
  if (!v.empty()) CUDA_CHECK(cudaMemcpy(b.p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  return b;
}

DMat Llama4Cuda::upload(const Mat& m, int64_t n_experts, size_t expert_stride) {
  DMat d;
  d.type = m.type; d.n_in = m.n_in; d.n_out = m.n_out; d.stride = m.stride; d.in_major = m.in_major; d.name = m.name;
  d.expert_stride = expert_stride;
  if (!m.data) return d;
  const TypeTraits* tt = type_traits(m.type);
  MOESCOPE_CHECK(tt && tt->supported && matmul_supports(m.type, m.in_major), "CUDA_UNSUPPORTED_TYPE",
                 "tensor %s: type %s (%s) has no CUDA kernel. HINT: load with { device: \"cpu\" }", m.name, tt ? tt->name : "?",
                 m.in_major ? "in-major" : "out-major");
  if (!m.in_major)
    MOESCOPE_CHECK(m.n_in % 8 == 0 && (!needs_vector_alignment(m.type) || (m.stride % 16 == 0 && expert_stride % 16 == 0)),
                   "CUDA_UNSUPPORTED_LAYOUT", "tensor %s: rows of %lld inputs, stride %zu: the CUDA kernels need multiples of 8 inputs and 16 bytes. HINT: load with { device: \"cpu\" }",
                   m.name, (long long)m.n_in, m.stride);
  const int64_t rows = m.in_major ? m.n_in : m.n_out;
  const size_t rowb = row_bytes(*tt, m.in_major ? m.n_out : m.n_in);
  const size_t span = (size_t)(rows - 1) * m.stride + rowb + (size_t)(n_experts - 1) * expert_stride;
  d.data = upload_bytes(m.data, span, m.name);
  return d;
}

std::unique_ptr<DeviceRun> Llama4Cuda::new_run(int64_t max_len, KvType kv_type) {
  CUDA_CHECK(cudaSetDevice(device_));
  auto r = std::make_unique<CudaRun>(shared_from_this());
  {
    std::lock_guard<std::mutex> lk(mu_);
    r->st.id = next_run_id_++;
  }
  r->st.kv_type = kv_type;
  r->st.kv.resize(c_.n_layer);
  const int64_t row = c_.n_head_kv * c_.head_dim;
  for (int64_t il = 0; il < c_.n_layer; il++) {
    // Chunked layers never hold more than one chunk; global layers hold the whole run.
    const int64_t slots = std::max<int64_t>(1, c_.layers[il].chunked_attn ? std::min(max_len, c_.attn_chunk) : max_len);
    CudaKvLayer& L = r->st.kv[il];
    L.slots = slots;
    L.k.resize((size_t)slots * row * kv_elem_bytes(kv_type));
    L.v.resize((size_t)slots * row * kv_elem_bytes(kv_type));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Interventions: the routing tables and head masks of every layer, uploaded once per run.
void Llama4Cuda::build_interventions(CudaRunState& st, const Interventions* iv) {
  st.iv_built = true;
  st.route_iv.assign(c_.n_layer, RouteIv{});
  st.head_mask.assign(c_.n_layer, nullptr);
  if (!iv) return;
  const int64_t E = c_.n_expert, H = c_.n_head;
  std::vector<uint8_t> blob;
  auto put = [&](const void* p, size_t n) {
    size_t off = (blob.size() + 15) & ~size_t(15);
    blob.resize(off + n);
    memcpy(blob.data() + off, p, n);
    return off;
  };
  struct Off { size_t bias = SIZE_MAX, ablate = SIZE_MAX, force = SIZE_MAX, replay = SIZE_MAX, rexp = SIZE_MAX, mask = SIZE_MAX; };
  std::vector<Off> offs(c_.n_layer);
  for (int il = 0; il < (int)c_.n_layer; il++) {
    const RouteTables rt = route_tables(*iv, il, E);
    if (!rt.bias.empty()) offs[il].bias = put(rt.bias.data(), E * sizeof(float));
    if (!rt.ablate.empty()) offs[il].ablate = put(rt.ablate.data(), E);
    st.route_iv[il].n_force = (int)(rt.force.size() / 2);
    if (!rt.force.empty()) offs[il].force = put(rt.force.data(), rt.force.size() * sizeof(int64_t));
    st.route_iv[il].n_replay = (int)(rt.replay.size() / 4);
    if (!rt.replay.empty()) {
      offs[il].replay = put(rt.replay.data(), rt.replay.size() * sizeof(int64_t));
      std::vector<int32_t> rx = rt.replay_experts;
      if (rx.empty()) rx.push_back(0);  // a replay of nothing still needs a valid pointer
      offs[il].rexp = put(rx.data(), rx.size() * sizeof(int32_t));
    }
    std::vector<uint8_t> mask(H, 0);
    bool any_mask = false;
    for (auto& ah : iv->ablate_heads)
      if (ah.layer == il && ah.head >= 0 && ah.head < H) { mask[ah.head] = 1; any_mask = true; }
    if (any_mask) offs[il].mask = put(mask.data(), H);
  }
  if (blob.empty()) return;
  st.iv_blob.resize(blob.size());
  CUDA_CHECK(cudaMemcpy(st.iv_blob.p, blob.data(), blob.size(), cudaMemcpyHostToDevice));
  const uint8_t* base = st.iv_blob.p;
  for (int il = 0; il < (int)c_.n_layer; il++) {
    RouteIv& r = st.route_iv[il];
    const Off& o = offs[il];
    if (o.bias != SIZE_MAX) r.bias = (const float*)(base + o.bias);
    if (o.ablate != SIZE_MAX) r.ablate = base + o.ablate;
    if (o.force != SIZE_MAX) r.force = (const int64_t*)(base + o.force);
    if (o.replay != SIZE_MAX) { r.replay = (const int64_t*)(base + o.replay); r.replay_experts = (const int32_t*)(base + o.rexp); }
    if (o.mask != SIZE_MAX) st.head_mask[il] = base + o.mask;
  }
}

// ---------------------------------------------------------------------------------------------------
// Hooks
void* Llama4Cuda::stage(size_t bytes) {
  bytes = (bytes + 255) & ~size_t(255);
  for (auto& p : pinned_)
    if (p.size - p.used >= bytes) { void* r = (char*)p.p + p.used; p.used += bytes; pinned_used_total_ += bytes; return r; }
  Pinned np;
  np.size = std::max(bytes, kPinnedChunk);
  CUDA_CHECK(cudaHostAlloc(&np.p, np.size, cudaHostAllocDefault));
  np.used = bytes;
  pinned_used_total_ += bytes;
  pinned_.push_back(np);
  return np.p;
}

// Host->device from any host memory without blocking: the bytes go through pinned staging, which
// lives until the next flush (that is, until after the copy has run).
void Llama4Cuda::h2d(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  void* st = stage(bytes);
  memcpy(st, src, bytes);
  CUDA_CHECK(cudaMemcpyAsync(dst, st, bytes, cudaMemcpyHostToDevice, stream_));
}

// Device->host now, waiting on the stream with the cancel flag honoured (a pageable destination
// would make cudaMemcpyAsync block until the whole queue drains, deaf to cancellation).
void Llama4Cuda::d2h_now(void* dst, const void* src, size_t bytes, RunContext& rc) {
  if (!bytes) return;
  void* st = stage(bytes);
  CUDA_CHECK(cudaMemcpyAsync(st, src, bytes, cudaMemcpyDeviceToHost, stream_));
  sync(rc);
  memcpy(dst, st, bytes);
}

void Llama4Cuda::sync(RunContext& rc) {
  const auto t0 = std::chrono::steady_clock::now();
  wait(stream_, rc.cancel);
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Llama4Cuda::flush(RunContext& rc) {
  sync(rc);  // every staged copy has run: staging can be reused
  CaptureStore* cs = rc.capture;
  for (auto& d : deferred_) {
    switch (d->kind) {
      case Deferred::Add: cs->add(d->p, d->layer, (const float*)d->host, d->T, d->row, d->pos.data()); break;
      case Deferred::AddInt: cs->add_int(d->p, d->layer, (const int32_t*)d->host, d->T, d->row, d->pos.data()); break;
      case Deferred::BeginPattern: cs->begin_pattern(d->layer, d->T, d->pos.data()); break;
      case Deferred::PatternRows:
        for (size_t i = 0; i < d->heads.size(); i++) {
          float* dst = cs->pattern_row(d->layer, d->pos[i], d->heads[i]);
          if (!dst) continue;
          std::fill(dst, dst + d->lo[i], 0.f);
          memcpy(dst + d->lo[i], (const float*)d->host + i * d->row, d->n[i] * sizeof(float));
        }
        break;
    }
  }
  deferred_.clear();
  for (auto& p : pinned_) p.used = 0;
  pinned_used_total_ = 0;
}

// Applies the interventions registered at (point, layer) to d [T, row], then captures it: the CPU's hook().
void Llama4Cuda::hook(RunContext& rc, HookPoint p, int layer, float* d, int64_t T, int64_t row, const int64_t* pos) {
  const Interventions* iv = rc.interventions;
  bool patch = false, steer = false;
  if (iv) {
    for (auto& pt : iv->patches) patch |= pt.point == p && pt.layer == layer;
    if (p == HookPoint::ResidPost)
      for (auto& s : iv->steers) steer |= s.layer == layer;
  }
  const bool cap = rc.capture && rc.capture->plan().wants(p, layer);
  if (!patch && !steer && !cap) return;
  if (patch || steer) {
    // Round trip: the host applies the same code as the CPU path, then the rows go back.
    std::vector<float> h((size_t)(T * row));
    d2h_now(h.data(), d, h.size() * sizeof(float), rc);
    for (auto& pt : iv->patches) {
      if (pt.point != p || pt.layer != layer) continue;
      for (size_t k = 0; k < pt.positions.size(); k++)
        for (int64_t t = 0; t < T; t++)
          if (pos[t] == pt.positions[k]) memcpy(h.data() + t * row, pt.values.data() + k * row, row * sizeof(float));
    }
    if (steer)
      for (auto& st : iv->steers)
        if (st.layer == layer)
          for (int64_t t = 0; t < T; t++)
            if (pos[t] >= st.pos_begin && pos[t] < st.pos_end)
              for (int64_t i = 0; i < row; i++) h[t * row + i] += 1.0f * st.vec[i];
    h2d(d, h.data(), h.size() * sizeof(float));
    if (cap) rc.capture->add(p, layer, h.data(), T, row, pos);
    return;
  }
  int64_t tb, te;
  kept_rows(rc.capture->plan(), pos, T, tb, te);
  if (te <= tb) return;
  void* host = stage((size_t)(te - tb) * row * sizeof(float));
  CUDA_CHECK(cudaMemcpyAsync(host, d + tb * row, (size_t)(te - tb) * row * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  auto df = std::make_unique<Deferred>();
  df->kind = Deferred::Add; df->p = p; df->layer = layer; df->host = host; df->T = te - tb; df->row = row;
  df->pos.assign(pos + tb, pos + te);
  deferred_.push_back(std::move(df));
  if (pinned_used_total_ > kPinnedFlushAt) flush(rc);
}

void Llama4Cuda::capture_int(RunContext& rc, HookPoint p, int layer, const int32_t* d, int64_t T, int64_t row, const int64_t* pos) {
  if (!rc.capture || !rc.capture->plan().wants(p, layer)) return;
  int64_t tb, te;
  kept_rows(rc.capture->plan(), pos, T, tb, te);
  if (te <= tb) return;
  void* host = stage((size_t)(te - tb) * row * sizeof(int32_t));
  CUDA_CHECK(cudaMemcpyAsync(host, d + tb * row, (size_t)(te - tb) * row * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  auto df = std::make_unique<Deferred>();
  df->kind = Deferred::AddInt; df->p = p; df->layer = layer; df->host = host; df->T = te - tb; df->row = row;
  df->pos.assign(pos + tb, pos + te);
  deferred_.push_back(std::move(df));
}

// The routing record of this step comes back in one copy; its rows are handed to the CaptureStore at
// the step's flush, layer by layer, as the three hooks would have.
void Llama4Cuda::flush_record(RunContext& rc, int64_t T, const int64_t* pos) {
  const int64_t E = c_.n_expert, K = c_.n_expert_used, L = c_.n_layer;
  int64_t tb, te;
  kept_rows(rc.capture->plan(), pos, T, tb, te);
  if (te <= tb) return;
  const size_t bytes = (size_t)L * T * (E + 2 * K) * sizeof(float);
  float* host = (float*)stage(bytes);
  CUDA_CHECK(cudaMemcpyAsync(host, rec_.p, bytes, cudaMemcpyDeviceToHost, stream_));
  for (int il = 0; il < (int)L; il++) {
    if (!rec_on_[il]) continue;
    const float* base = host + (size_t)il * T * (E + 2 * K);
    const struct { HookPoint p; const void* data; int64_t row; bool is_int; } parts[3] = {
        {HookPoint::RouterLogits, base + tb * E, E, false},
        {HookPoint::ExpertIndices, base + T * E + tb * K, K, true},
        {HookPoint::ExpertWeights, base + T * (E + K) + tb * K, K, false}};
    for (auto& part : parts) {
      if (!rc.capture->plan().wants(part.p, il)) continue;
      auto df = std::make_unique<Deferred>();
      df->kind = part.is_int ? Deferred::AddInt : Deferred::Add;
      df->p = part.p; df->layer = il; df->host = part.data; df->T = te - tb; df->row = part.row;
      df->pos.assign(pos + tb, pos + te);
      deferred_.push_back(std::move(df));
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Attention (spec §2.4)
void Llama4Cuda::attention(int il, CudaRunState& st, int64_t T, const std::vector<int64_t>& pv, RunContext& rc) {
  const LayerPlan& plan = c_.layers[il];
  const DLayer& w = layers_[il];
  const int64_t H = c_.n_head, Hkv = c_.n_head_kv, Dh = c_.head_dim, D = c_.n_embd;
  const int64_t* pos = pv.data();
  matmul(w.wq, a_.p, D, T, q_.p, H * Dh, stream_);    // q = a Wq^T   [T, H, Dh]
  matmul(w.wk, a_.p, D, T, k_.p, Hkv * Dh, stream_);  // k = a Wk^T   [T, Hkv, Dh]
  matmul(w.wv, a_.p, D, T, v_.p, Hkv * Dh, stream_);  // v = a Wv^T   [T, Hkv, Dh]
  hook(rc, HookPoint::Q, il, q_.p, T, H * Dh, pos);
  hook(rc, HookPoint::K, il, k_.p, T, Hkv * Dh, pos);
  hook(rc, HookPoint::V, il, v_.p, T, Hkv * Dh, pos);

  if (plan.use_rope) {
    rope(q_.p, T, H, Dh, pos_d_.p, rope_freq_.p, stream_);
    rope(k_.p, T, Hkv, Dh, pos_d_.p, rope_freq_.p, stream_);
    if (plan.qk_norm) {  // weightless RMS-norm of each head AFTER RoPE
      rms_norm(q_.p, nullptr, q_.p, T * H, Dh, c_.rms_eps, stream_);
      rms_norm(k_.p, nullptr, k_.p, T * Hkv, Dh, c_.rms_eps, stream_);
    }
  } else if (plan.temperature_tuning) {
    scale_rows(q_.p, T, H * Dh, temp_.p, stream_);  // the step's factors, uploaded by forward_segment
  }
  hook(rc, HookPoint::RotQ, il, q_.p, T, H * Dh, pos);
  hook(rc, HookPoint::RotK, il, k_.p, T, Hkv * Dh, pos);

  // Append to the cache (kv_advance has moved its window to this step's chunk).
  const CudaKvLayer& kv = st.kv[il];
  const bool bf16 = st.kv_type == KvType::BF16;
  kv_append(k_.p, T, Hkv * Dh, kv.k.p, pos_d_.p, kv.pos0, bf16, stream_);
  kv_append(v_.p, T, Hkv * Dh, kv.v.p, pos_d_.p, kv.pos0, bf16, stream_);

  AttnShape as{T, H, Hkv, Dh, plan.chunked_attn ? c_.attn_chunk : 0, kv.pos0, bf16};
  attention_flash(as, q_.p, kv.k.p, kv.v.p, pos_d_.p, st.head_mask[il], z_.p, stream_);

  if (rc.capture && rc.capture->plan().wants(HookPoint::Pattern, il)) {
    // Exact probabilities only for captured layers, rows and heads; the output above stays the fused one.
    const CapturePlan& cp = rc.capture->plan();
    auto bp = std::make_unique<Deferred>();
    bp->kind = Deferred::BeginPattern; bp->layer = il; bp->T = T; bp->pos = pv;
    deferred_.push_back(std::move(bp));
    std::vector<int> heads;
    if (cp.heads.empty()) for (int h = 0; h < H; h++) heads.push_back(h);
    else heads = cp.heads;
    int64_t tb, te;
    kept_rows(cp, pos, T, tb, te);
    const int64_t ld = pos[te > tb ? te - 1 : tb] - kv.pos0 + 1;  // the widest row of the step
    const int64_t per_t = (int64_t)heads.size();
    const int64_t t_group = std::max<int64_t>(1, (int64_t)(kProbsBudget / (sizeof(float) * ld * std::max<int64_t>(per_t, 1))));
    for (int64_t g0 = tb; g0 < te; g0 += t_group) {
      const int64_t g1 = std::min(te, g0 + t_group);
      auto df = std::make_unique<Deferred>();
      df->kind = Deferred::PatternRows; df->layer = il; df->row = ld;
      std::vector<int32_t> slots;
      for (int64_t t = g0; t < g1; t++)
        for (int h : heads) {
          int64_t lo = as.chunk > 0 ? (pos[t] / as.chunk) * as.chunk : 0;
          lo = std::max(lo, kv.pos0);
          slots.push_back((int32_t)(t * H + h));
          df->pos.push_back(pos[t]); df->heads.push_back(h); df->lo.push_back(lo); df->n.push_back(pos[t] - lo + 1);
        }
      const int64_t n = (int64_t)slots.size();
      grow(pslots_, n);
      grow(probs_, (size_t)n * ld);
      h2d(pslots_.p, slots.data(), n * sizeof(int32_t));
      attention_probs(as, q_.p, kv.k.p, pos_d_.p, pslots_.p, n, probs_.p, ld, stream_);
      void* host = stage((size_t)n * ld * sizeof(float));
      CUDA_CHECK(cudaMemcpyAsync(host, probs_.p, (size_t)n * ld * sizeof(float), cudaMemcpyDeviceToHost, stream_));
      df->host = host;
      deferred_.push_back(std::move(df));
    }
  }
  hook(rc, HookPoint::Z, il, z_.p, T, H * Dh, pos);
  matmul(w.wo, z_.p, H * Dh, T, f_.p, D, stream_);  // o_proj   [T, D]
}

// ---------------------------------------------------------------------------------------------------
// MoE feed-forward (spec §2.6)
void Llama4Cuda::moe(int il, CudaRunState& st, int64_t T, const std::vector<int64_t>& pv, RunContext& rc) {
  const DLayer& w = layers_[il];
  const int64_t D = c_.n_embd, E = c_.n_expert, K = c_.n_expert_used, F = c_.n_ff_exp;
  const int64_t* pos = pv.data();
  const int64_t S = T * K;  // (token, expert) slots

  // The routing recorder: when the plan captures this layer's routing and no patch rewrites it, the
  // router and the routing kernel write straight into this step's record ([layer][T][E | K | K]),
  // which comes back in one copy per step (flush_record) instead of three small copies per layer.
  float* logits = rlogits_.p;
  int32_t* experts = experts_.p;
  float* gates = gates_.p;
  const bool rec = rec_on_[il];
  if (rec) {
    float* base = rec_.p + (size_t)il * T * (E + 2 * K);
    logits = base;
    experts = (int32_t*)(base + T * E);
    gates = base + T * (E + K);
  }
  // 1. Router logits in float32.
  matmul(w.router, a_.p, D, T, logits, E, stream_);  // [T, E]
  if (!rec) hook(rc, HookPoint::RouterLogits, il, logits, T, E, pos);
  // 2-3. Top-k with interventions, sigmoid gates: a kernel of its own, results in device arrays.
  route(logits, T, E, K, pos_d_.p, st.route_iv[il], experts, gates, slot_expert_.p, stream_);
  if (!rec) {
    capture_int(rc, HookPoint::ExpertIndices, il, experts, T, K, pos);
    hook(rc, HookPoint::ExpertWeights, il, gates, T, K, pos);
  }

  // 4. Routed experts on gate-scaled inputs.
  if (S <= kDecodeIdRows) {
    gather_scaled(a_.p, D, K, nullptr, S, gates, xin_.p, stream_);
    matmul_id(w.gate_exps, slot_expert_.p, xin_.p, D, S, hg_.p, F, stream_);
    matmul_id(w.up_exps, slot_expert_.p, xin_.p, D, S, hu_.p, F, stream_);
    silu_mul(hg_.p, hu_.p, S * F, stream_);
    matmul_id(w.down_exps, slot_expert_.p, hg_.p, F, S, yslot_.p, D, stream_);
  } else {
    // Prefill: read the routing back once, run each chosen expert once on its rows.
    std::vector<int32_t> se(S);
    d2h_now(se.data(), slot_expert_.p, S * sizeof(int32_t), rc);
    std::vector<int32_t> perm;
    std::vector<int64_t> start(E + 1, 0);
    for (int64_t e = 0; e < E; e++) {
      start[e] = (int64_t)perm.size();
      for (int64_t s = 0; s < S; s++)
        if (se[s] == e) perm.push_back((int32_t)s);
    }
    start[E] = (int64_t)perm.size();
    const int64_t n = (int64_t)perm.size();
    CUDA_CHECK(cudaMemsetAsync(yslot_.p, 0, (size_t)S * D * sizeof(float), stream_));
    if (n > 0) {
      h2d(perm_.p, perm.data(), n * sizeof(int32_t));
      gather_scaled(a_.p, D, K, perm_.p, n, gates, xin_.p, stream_);
      for (int64_t e = 0; e < E; e++) {
        const int64_t r0 = start[e], m = start[e + 1] - start[e];
        if (m == 0) continue;  // weights of experts nobody chose are never touched
        DMat g = w.gate_exps, u = w.up_exps, dn = w.down_exps;
        g.data += (size_t)e * g.expert_stride; u.data += (size_t)e * u.expert_stride; dn.data += (size_t)e * dn.expert_stride;
        matmul(g, xin_.p + r0 * D, D, m, hg_.p + r0 * F, F, stream_);
        matmul(u, xin_.p + r0 * D, D, m, hu_.p + r0 * F, F, stream_);
        silu_mul(hg_.p + r0 * F, hu_.p + r0 * F, m * F, stream_);
        matmul(dn, hg_.p + r0 * F, F, m, ysorted_.p + r0 * D, D, stream_);
      }
      scatter_rows(ysorted_.p, D, perm_.p, n, yslot_.p, stream_);
    }
  }
  combine(yslot_.p, slot_expert_.p, T, K, D, routed_.p, stream_);
  hook(rc, HookPoint::RoutedOut, il, routed_.p, T, D, pos);

  // 5. Shared expert on the un-scaled input.
  matmul(w.shexp_gate, a_.p, D, T, sg_.p, F, stream_);
  matmul(w.shexp_up, a_.p, D, T, su_.p, F, stream_);
  silu_mul(sg_.p, su_.p, T * F, stream_);
  matmul(w.shexp_down, sg_.p, F, T, f_.p, D, stream_);
  hook(rc, HookPoint::SharedOut, il, f_.p, T, D, pos);

  // 6. FFN(b) = shared + routed.
  add(f_.p, routed_.p, T * D, stream_);
}

// Dense SwiGLU (Maverick's even layers, spec §2.5).
void Llama4Cuda::dense_ffn(int il, int64_t T) {
  const DLayer& w = layers_[il];
  const int64_t D = c_.n_embd, Fd = c_.n_ff;
  matmul(w.ffn_gate, a_.p, D, T, sg_.p, Fd, stream_);
  matmul(w.ffn_up, a_.p, D, T, su_.p, Fd, stream_);
  silu_mul(sg_.p, su_.p, T * Fd, stream_);
  matmul(w.ffn_down, sg_.p, Fd, T, f_.p, D, stream_);
}

// ---------------------------------------------------------------------------------------------------
// One segment: T tokens that stay inside one attention chunk.
std::vector<float> Llama4Cuda::forward_segment(CudaRunState& st, Session& s, const int32_t* tokens, int64_t T, RunContext& rc) {
  const int64_t D = c_.n_embd, H = c_.n_head, Hkv = c_.n_head_kv, Dh = c_.head_dim, E = c_.n_expert, K = c_.n_expert_used;
  const int64_t F = std::max(c_.n_ff_exp, c_.n_ff), S = T * std::max<int64_t>(K, 1);
  std::vector<int64_t> pos(T);
  for (int64_t t = 0; t < T; t++) pos[t] = s.n_past + t;
  for (int64_t t = 0; t < T; t++)
    MOESCOPE_CHECK(tokens[t] >= 0 && tokens[t] < c_.n_vocab, "BAD_TOKEN", "token id %d at position %lld is outside the vocabulary (0..%lld)",
                   tokens[t], (long long)pos[t], (long long)c_.n_vocab - 1);

  grow(x_, T * D); grow(a_, T * D); grow(f_, T * D); grow(routed_, T * D);
  grow(q_, T * H * Dh); grow(z_, T * H * Dh); grow(k_, T * Hkv * Dh); grow(v_, T * Hkv * Dh);
  grow(rlogits_, std::max<int64_t>(T * E, 1)); grow(gates_, S); grow(experts_, S); grow(slot_expert_, S); grow(perm_, S);
  grow(xin_, S * D); grow(yslot_, S * D); grow(ysorted_, S * D); grow(hg_, S * F); grow(hu_, S * F);
  grow(sg_, T * F); grow(su_, T * F); grow(tokens_d_, T); grow(pos_d_, T); grow(temp_, T);
  // Which MoE layers use the routing recorder this step (see moe()).
  rec_on_.assign(c_.n_layer, false);
  bool any_rec = false;
  if (rc.capture) {
    const CapturePlan& cp = rc.capture->plan();
    for (int il = 0; il < (int)c_.n_layer; il++) {
      if (!c_.layers[il].is_moe) continue;
      bool patched = false;
      if (rc.interventions)
        for (auto& pt : rc.interventions->patches)
          patched |= pt.layer == il && (pt.point == HookPoint::RouterLogits || pt.point == HookPoint::ExpertWeights);
      rec_on_[il] = !patched && (cp.wants(HookPoint::RouterLogits, il) || cp.wants(HookPoint::ExpertIndices, il) || cp.wants(HookPoint::ExpertWeights, il));
      any_rec |= rec_on_[il];
    }
  }
  if (any_rec) grow(rec_, (size_t)c_.n_layer * T * (E + 2 * K));
  // Final norm and head for the rows asked for (and the rows the capture plan wants).
  int64_t r0 = T - std::min(T, std::max<int64_t>(0, rc.logits_last));
  if (rc.capture && (rc.capture->plan().any(HookPoint::LnFinal) || rc.capture->plan().any(HookPoint::Logits)))
    for (int64_t t = 0; t < r0; t++)
      if (rc.capture->plan().in_range(pos[t])) { r0 = t; break; }
  const int64_t R = T - r0;
  if (R > 0) { grow(h_, R * D); grow(logits_, R * c_.n_vocab); }

  kv_advance(st, pos[0], T);
  h2d(tokens_d_.p, tokens, T * sizeof(int32_t));
  h2d(pos_d_.p, pos.data(), T * sizeof(int64_t));
  if (std::any_of(c_.layers.begin(), c_.layers.end(), [](const LayerPlan& l) { return l.temperature_tuning; })) {
    // spec §2.4 item 4: one factor per position, the same for every NoPE layer
    std::vector<float> tf(T);
    for (int64_t t = 0; t < T; t++) tf[t] = (float)attn_temperature(c_, pos[t]);
    h2d(temp_.p, tf.data(), T * sizeof(float));
  }

  if (graphable(rc, T)) {
    // Everything a replay reads at fixed addresses or bakes in as launch parameters.
    std::vector<int64_t> key = {(int64_t)st.id, (int64_t)epoch_, T, r0, (int64_t)st.kv_type};
    for (const CudaKvLayer& kv : st.kv) key.push_back(kv.pos0);
    for (bool on : rec_on_) key.push_back(on);
    if (!graph_exec_ || key != graph_key_) {
      if (graph_exec_) { CUDA_CHECK(cudaGraphExecDestroy(graph_exec_)); graph_exec_ = nullptr; }
      CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      cudaGraph_t g = nullptr;
      try {
        launch_step(st, T, pos, rc, r0);
      } catch (...) {
        if (cudaStreamEndCapture(stream_, &g) == cudaSuccess && g) cudaGraphDestroy(g);
        (void)cudaGetLastError();
        throw;
      }
      CUDA_CHECK(cudaStreamEndCapture(stream_, &g));
      const cudaError_t e = cudaGraphInstantiate(&graph_exec_, g, 0);
      cudaGraphDestroy(g);
      if (e != cudaSuccess) { graph_exec_ = nullptr; CUDA_CHECK(e); }
      graph_key_ = std::move(key);
    }
    CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream_));
  } else {
    launch_step(st, T, pos, rc, r0);
  }

  if (any_rec) flush_record(rc, T, pos.data());
  std::vector<float> logits;
  const int64_t keep = std::min(R, std::max<int64_t>(0, rc.logits_last));
  logits.resize(keep * c_.n_vocab);
  if (keep > 0) d2h_now(logits.data(), logits_.p + (R - keep) * c_.n_vocab, logits.size() * sizeof(float), rc);
  flush(rc);
  s.n_past += T;
  s.tokens.insert(s.tokens.end(), tokens, tokens + T);
  return logits;
}

// A graph may hold only device work: no hook that copies rows out (other than the routing record,
// read after the graph), no patch or steering (host round trips), no image rows spliced in.
bool Llama4Cuda::graphable(const RunContext& rc, int64_t T) const {
  if (T != 1 || rc.embed_override) return false;
  if (rc.interventions && (!rc.interventions->patches.empty() || !rc.interventions->steers.empty())) return false;
  if (rc.capture)
    for (int p = 0; p < (int)HookPoint::COUNT; p++) {
      const HookPoint h = (HookPoint)p;
      if (h == HookPoint::RouterLogits || h == HookPoint::ExpertIndices || h == HookPoint::ExpertWeights) continue;  // the record
      if (rc.capture->plan().any(h)) return false;
    }
  return true;
}

// A chunked layer starts over at each chunk boundary (segments never cross one); every layer's cache
// then holds the step's rows at slots pos - pos0.
void Llama4Cuda::kv_advance(CudaRunState& st, int64_t p0, int64_t T) {
  for (int64_t il = 0; il < c_.n_layer; il++) {
    CudaKvLayer& kv = st.kv[il];
    if (c_.layers[il].chunked_attn) {
      const int64_t chunk_start = p0 / c_.attn_chunk * c_.attn_chunk;
      if (kv.pos0 != chunk_start) { kv.pos0 = chunk_start; kv.n = 0; }
    }
    const int64_t slot0 = p0 - kv.pos0;
    MOESCOPE_CHECK(slot0 == kv.n && slot0 + T <= kv.slots, "INTERNAL", "layer %lld: device KV cache holds %lld of %lld slots but the next position is %lld",
                   (long long)il, (long long)kv.n, (long long)kv.slots, (long long)p0);
    kv.n = slot0 + T;
  }
}

// The step's device work, in the order of Llama4Model::forward: embedding, the layers, the final norm
// and head for rows r0.. . Inputs (tokens, positions, temperatures) are already on the device.
void Llama4Cuda::launch_step(CudaRunState& st, int64_t T, const std::vector<int64_t>& pos, RunContext& rc, int64_t r0) {
  const int64_t D = c_.n_embd, R = T - r0;
  embed_rows(token_embd_, token_embd_type_, token_embd_row_, tokens_d_.p, T, D, x_.p, stream_);  // h = embed_tokens[ids]
  if (rc.embed_override)
    for (int64_t t = 0; t < T; t++)
      if (const float* ov = rc.embed_override(pos[t])) h2d(x_.p + t * D, ov, D * sizeof(float));
  hook(rc, HookPoint::Embed, 0, x_.p, T, D, pos.data());

  for (int il = 0; il < (int)c_.n_layer; il++) {
    const DLayer& w = layers_[il];
    hook(rc, HookPoint::ResidPre, il, x_.p, T, D, pos.data());
    rms_norm(x_.p, w.attn_norm.p, a_.p, T, D, c_.rms_eps, stream_);  // a = RMSNorm(h)
    hook(rc, HookPoint::Ln1, il, a_.p, T, D, pos.data());
    attention(il, st, T, pos, rc);                                   // h += Attention(a)
    hook(rc, HookPoint::AttnOut, il, f_.p, T, D, pos.data());
    add(x_.p, f_.p, T * D, stream_);
    hook(rc, HookPoint::ResidMid, il, x_.p, T, D, pos.data());
    rms_norm(x_.p, w.ffn_norm.p, a_.p, T, D, c_.rms_eps, stream_);   // b = RMSNorm(h)
    hook(rc, HookPoint::Ln2, il, a_.p, T, D, pos.data());
    if (c_.layers[il].is_moe) moe(il, st, T, pos, rc);              // h += FFN(b)
    else dense_ffn(il, T);
    hook(rc, HookPoint::MlpOut, il, f_.p, T, D, pos.data());
    add(x_.p, f_.p, T * D, stream_);
    hook(rc, HookPoint::ResidPost, il, x_.p, T, D, pos.data());
    check_cancel(rc);
  }

  if (R > 0) {
    rms_norm(x_.p + r0 * D, output_norm_.p, h_.p, R, D, c_.rms_eps, stream_);
    hook(rc, HookPoint::LnFinal, 0, h_.p, R, D, pos.data() + r0);
    matmul(output_, h_.p, D, R, logits_.p, c_.n_vocab, stream_);  // logits = h lm_head^T
    hook(rc, HookPoint::Logits, 0, logits_.p, R, c_.n_vocab, pos.data() + r0);
  }
}

std::vector<float> Llama4Cuda::forward(CudaRunState& st, Session& s, const int32_t* tokens, int64_t T, RunContext& rc) {
  std::lock_guard<std::mutex> lk(mu_);
  CUDA_CHECK(cudaSetDevice(device_));
  if (!st.iv_built) build_interventions(st, rc.interventions);
  deferred_.clear();
  for (auto& p : pinned_) p.used = 0;
  pinned_used_total_ = 0;
  std::vector<float> out;
  bool any_chunked = false;
  for (auto& L : c_.layers) any_chunked |= L.chunked_attn;
  int64_t done = 0;
  const int64_t want = rc.logits_last;
  try {
    while (done < T) {
      int64_t n = std::min(T - done, kMaxSegment);
      if (any_chunked) n = std::min(n, c_.attn_chunk - (s.n_past % c_.attn_chunk));
      RunContext seg = rc;
      seg.logits_last = std::max<int64_t>(0, std::min(n, want - (T - done - n)));
      std::vector<float> l = forward_segment(st, s, tokens + done, n, seg);
      if (out.empty()) out = std::move(l);  // a decode step: no copy of its V logits
      else out.insert(out.end(), l.begin(), l.end());
      done += n;
    }
  } catch (...) {
    // Queued copies may still target the staging: let the stream drain before anything is reused.
    cudaStreamSynchronize(stream_);
    deferred_.clear();
    throw;
  }
  return out;
}

}  // namespace cuda

// ---------------------------------------------------------------------------------------------------
// Entry points declared in device.cpp
int cuda_device_count_impl() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) { (void)cudaGetLastError(); return 0; }
  return n;
}

std::shared_ptr<DeviceBackend> make_cuda_backend_impl(const std::shared_ptr<const Llama4Model>& m) {
  MOESCOPE_CHECK(cuda_device_count_impl() > 0, "CUDA_NO_DEVICE",
                 "device \"cuda\": no CUDA device is visible (driver missing or no GPU). HINT: load with { device: \"cpu\" } or \"auto\"");
  return std::make_shared<cuda::Llama4Cuda>(m, 0);
}

double cuda_read_bandwidth_impl(uint64_t bytes, int reps) {
  MOESCOPE_CHECK(cuda_device_count_impl() > 0, "CUDA_NO_DEVICE", "no CUDA device is visible. HINT: run the probe on a GPU machine");
  return cuda::read_bandwidth(bytes, reps);
}

}  // namespace moescope
