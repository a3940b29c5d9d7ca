// moescope-cuda-check: the CUDA backend's device check without Node (issue 9). Built next to the
// addon when MOESCOPE_CUDA is on (build-cuda/moescope-cuda-check), so a GPU machine needs only this
// one binary and the fixture files: no node, no node_modules. It runs run_model on the CPU and on
// CUDA for each model and prompt with every hook captured and greedy decoding, compares tokens,
// logits and every captured tensor (ints identical, floats `tol` relative),
// then the expert/head interventions, then times prefill/decode with and without routing capture
// against the device's measured read bandwidth.
//   moescope-cuda-check [--dry-run] [--tol X] [--bench] MODEL.gguf|HF_DIR[:PROMPT_FILE] ...
// --dry-run compares the CPU with itself (checks this tool on a machine without a GPU).
// Exit status 1 when a comparison fails.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda/device.h"
#include "hooks/hooks.h"
#include "model/generate.h"
#include "model/llama4.h"

using namespace moescope;

namespace {

int g_fail = 0;

double rel_err(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) { num += (double)(a[i] - b[i]) * (a[i] - b[i]); den += (double)b[i] * b[i]; }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
double max_abs(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

void expect(bool ok, const std::string& what) {
  if (!ok) { g_fail++; printf("FAIL %s\n", what.c_str()); }
}

RunResult run(const std::shared_ptr<Llama4Model>& m, const std::shared_ptr<DeviceBackend>& dev, const RunRequest& req) {
  set_model_device(m, dev);
  std::atomic<bool> cancel{false};
  return run_model(*m, req, &cancel, RunCallbacks{});
}

// Returns the worst relative error over logits and float captures.
double compare(const std::string& what, const RunResult& a, const RunResult& b, double tol) {
  double worst = 0;
  expect(a.generated == b.generated, what + ": generated tokens differ");
  expect(a.logits.size() == b.logits.size(), what + ": logits size");
  if (a.logits.size() == b.logits.size() && !a.logits.empty()) {
    double e = rel_err(b.logits.data(), a.logits.data(), a.logits.size());
    worst = std::max(worst, e);
    expect(e <= tol, strfmt("%s: logits rel %.2e > %.0e", what.c_str(), e, tol));
  }
  expect(a.captured.size() == b.captured.size(), strfmt("%s: %zu vs %zu captured tensors", what.c_str(), b.captured.size(), a.captured.size()));
  for (size_t i = 0; i < a.captured.size() && i < b.captured.size(); i++) {
    const Captured &x = a.captured[i], &y = b.captured[i];
    if (x.name != y.name || x.shape != y.shape || x.positions != y.positions) {
      expect(false, what + ": " + x.name + " name/shape/positions differ");
      continue;
    }
    if (x.is_int) { expect(*x.i == *y.i, what + ": " + x.name + " integers differ"); continue; }
    const size_t n = x.f->size();
    bool zero = true;
    for (float v : *x.f) zero &= v == 0;
    // Attention patterns too: relative over the tensor (per-element limits against float64 are the
    // fixture suite's, native/tools/device-check.js).
    const double e = zero ? max_abs(y.f->data(), x.f->data(), n) : rel_err(y.f->data(), x.f->data(), n);
    const double lim = zero ? 1e-6 : tol;
    if (!zero) worst = std::max(worst, e);
    expect(e <= lim, strfmt("%s: %s %s %.2e > %.0e", what.c_str(), x.name.c_str(), zero ? "max abs" : "rel", e, lim));
  }
  return worst;
}

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  bool dry = false, bench = false;
  double tol = 1e-5;
  std::vector<std::string> models;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--dry-run") dry = true;
    else if (a == "--bench") bench = true;
    else if (a == "--tol" && i + 1 < argc) tol = atof(argv[++i]);
    else models.push_back(a);
  }
  if (models.empty()) {
    fprintf(stderr, "usage: moescope-cuda-check [--dry-run] [--tol X] [--bench] MODEL[:PROMPT_FILE] ...\n");
    return 2;
  }
  try {
    printf("CUDA compiled %d, %d device(s)\n", (int)cuda_compiled(), cuda_device_count());
    if (!dry && cuda_device_count() == 0) { printf("no CUDA device (use --dry-run to check the tool itself)\n"); return 2; }
    for (const std::string& spec : models) {
      const size_t colon = spec.find(':');
      const std::string path = spec.substr(0, colon);
      const std::string text = colon == std::string::npos ? "The experts of a mixture route each token." : read_file(spec.substr(colon + 1));
      auto m = Llama4Model::load(path);
      const Llama4Config& c = m->config();
      auto dev = dry ? nullptr : make_cuda_backend(m);
      printf("== %s (%s)\n", path.c_str(), dev ? dev->describe().c_str() : "cpu vs cpu");
      RunRequest req;
      req.prompt = m->tokenizer().encode(text, m->tokenizer().spec().add_bos, true);
      req.max_new_tokens = 4;
      req.stop_at_eog = false;
      req.logits_last = 3;
      req.capture = true;
      req.plan.init(c);
      for (auto& row : req.plan.on) std::fill(row.begin(), row.end(), true);
      // Long prompts (across chunk boundaries): keep only the last rows, as a notebook would.
      if (req.prompt.size() > 512) req.plan.pos_begin = (int64_t)req.prompt.size() - 8;
      if (!bench) {
        double w = compare(path + " all hooks", run(m, nullptr, req), run(m, dev, req), tol);
        printf("  all hooks, %zu prompt tokens + 4: worst rel %.2e\n", req.prompt.size(), w);
        int L = -1;
        for (int il = 0; il < (int)c.n_layer; il++) if (c.layers[il].is_moe) { L = il; break; }
        if (L >= 0) {
          const int E = (int)c.n_expert;
          std::vector<std::pair<std::string, Interventions>> cases(6);
          cases[0].first = "ablate zero"; cases[0].second.ablate_experts = {{L, 0, false}, {L, 1 % E, false}};
          cases[1].first = "ablate reroute"; cases[1].second.ablate_experts = {{L, 0, true}, {L, 1 % E, true}};
          cases[2].first = "force route"; cases[2].second.force_routes = {{L, -1, E - 1}, {L, 2, 0}};
          cases[3].first = "router bias";
          { std::vector<float> b(E); for (int e = 0; e < E; e++) b[e] = (e % 3) * 0.7f; cases[3].second.router_biases = {{L, b}}; }
          cases[4].first = "head ablation"; cases[4].second.ablate_heads = {{0, 0}, {L, (int)c.n_head - 1}};
          cases[5].first = "steer";
          { Interventions::Steer s; s.layer = 0; s.vec.resize(c.n_embd); for (int64_t i = 0; i < c.n_embd; i++) s.vec[i] = 2 * std::sin((double)i); s.pos_begin = 1; s.pos_end = 4; cases[5].second.steers = {s}; }
          for (auto& [name, iv] : cases) {
            RunRequest r = req;
            r.interventions = iv;
            double e = compare(path + " " + name, run(m, nullptr, r), run(m, dev, r), tol);
            printf("  %-15s worst rel %.2e\n", name.c_str(), e);
          }
        }
      } else if (dev) {
        const double bw = cuda_read_bandwidth(4ull << 30, 5);
        RunRequest p;
        for (int i = 0; i < 512; i++) p.prompt.push_back((int32_t)((i * 7919 + 13) % std::min<int64_t>(c.n_vocab - 256, 30000) + 256));
        p.stop_at_eog = false;
        set_model_device(m, dev);
        std::atomic<bool> cancel{false};
        run_model(*m, p, &cancel, {});  // warm-up
        double pf = 1e30;
        for (int r = 0; r < 3; r++) pf = std::min(pf, run_model(*m, p, &cancel, {}).prefill_seconds);
        RunRequest d;
        d.prompt.assign(p.prompt.begin(), p.prompt.begin() + 16);
        d.max_new_tokens = 65;
        d.stop_at_eog = false;
        double dt = 1e30, dtc = 1e30;
        RunRequest dc = d;
        dc.capture = true;
        dc.plan.init(c);
        for (int il = 0; il < (int)c.n_layer; il++)
          for (HookPoint h : {HookPoint::RouterLogits, HookPoint::ExpertIndices, HookPoint::ExpertWeights}) dc.plan.on[(size_t)h][il] = true;
        dc.plan.pos_begin = 16;
        double waited = 1e30;  // host seconds per decoded token spent waiting for the GPU (in the fastest run)
        for (int r = 0; r < 3; r++) {
          const double w0 = dev->host_wait_seconds();
          const double t = run_model(*m, d, &cancel, {}).decode_seconds / 64;  // 64 fed tokens
          if (t < dt) { dt = t; waited = (dev->host_wait_seconds() - w0) / 65; }  // the prompt's wait is in it too
          dtc = std::min(dtc, run_model(*m, dc, &cancel, {}).decode_seconds / 65);   // capture feeds the last one too
        }
        const double bpt = (double)m->active_bytes_per_token();
        printf("  bandwidth %.0f GB/s | prefill %.0f tok/s | decode %.1f tok/s, %.1f MB/token, %.1f%% of bandwidth | routing capture %.1f tok/s, overhead %.2f%%\n",
               bw / 1e9, 512 / pf, 1 / dt, bpt / 1e6, 100 * bpt / dt / bw, 1 / dtc, 100 * (1 - dt / dtc));
        // Little waiting means the host's launches, not the GPU's work, set the pace.
        printf("  decode step %.1f us: host waited for the GPU %.1f us (%.0f%%), launching and the rest %.1f us\n", dt * 1e6, waited * 1e6,
               100 * waited / dt, (dt - waited) * 1e6);
      }
      set_model_device(m, nullptr);
    }
  } catch (const Error& e) {
    printf("error %s: %s\n", e.code.c_str(), e.what());
    return 1;
  }
  printf("%d failure(s)\n", g_fail);
  return g_fail ? 1 : 0;
}
