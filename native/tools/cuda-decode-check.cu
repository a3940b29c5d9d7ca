// Host-side check of the CUDA weight decoders (native/src/cuda/dequant.cuh) against the CPU's exact
// dequantiser (TypeTraits::to_float), bit for bit, for every supported type: runs without a GPU, so
// layout mistakes in the CUDA kernels are caught on the dev machine (tests/cuda/decode.test.ts builds
// and runs it). Also runs the routing kernel's per-token body (moe.cuh route_token) on the host
// against the CPU's rule (stable sort + interventions) on random logits with ties.
// Prints one line per type and exits 1 on the first mismatch.
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <algorithm>
#include <cmath>

#include "cuda/dequant.cuh"
#include "cuda/moe.cuh"
#include "ops/quant.h"

using namespace moescope;

template <class D>
static bool check(const char* name, uint32_t type) {
  const TypeTraits* tt = type_traits(type);
  const int64_t n = 4096;
  std::mt19937 rng(1234 + type);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(n), ref(n), got(n);
  for (int64_t i = 0; i < n; i++) x[i] = nd(rng) * (1.f + (i % 97) * 0.05f);
  std::vector<uint8_t> q(row_bytes(*tt, n) + 16);
  tt->from_float(x.data(), q.data(), n);
  tt->to_float(q.data(), ref.data(), n);
  for (int64_t u = 0; u < n / 8; u++) D::unit(q.data(), u, got.data() + u * 8);
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&ref[i], &got[i], 4) != 0) {
      printf("%-5s MISMATCH at %lld: cuda %.9g cpu %.9g\n", name, (long long)i, got[i], ref[i]);
      return false;
    }
  if constexpr (D::kBlock == 1)  // in-major (HF) kernels read single elements
    for (int64_t i = 0; i < n; i++)
      if (memcmp(&ref[i], &(got[i] = D::elem(q.data(), i)), 4) != 0) {
        printf("%-5s elem MISMATCH at %lld\n", name, (long long)i);
        return false;
      }
  printf("%-5s ok (%lld values bit-identical)\n", name, (long long)n);
  return true;
}

// The decode GEMV's chunk decoders: the 8 chunks of every block, summed, against the dot of the CPU's
// dequantised weights with x in double, on rows of 16 blocks with x of mixed magnitudes.
template <class C>
static bool check_chunks(const char* name, uint32_t type) {
  const TypeTraits* tt = type_traits(type);
  const int64_t n = 16 * C::kBlock;
  std::mt19937 rng(99 + type);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> w(n), wf(n), x(n);
  double worst = 0;
  for (int trial = 0; trial < 20; trial++) {
    for (int64_t i = 0; i < n; i++) { w[i] = nd(rng) * (1.f + (i % 61) * 0.1f); x[i] = nd(rng) * (trial % 3 ? 1.f : 100.f); }
    std::vector<uint8_t> q(row_bytes(*tt, n));
    tt->from_float(w.data(), q.data(), n);
    tt->to_float(q.data(), wf.data(), n);
    double ref = 0, mag = 0, got = 0;
    for (int64_t i = 0; i < n; i++) { ref += (double)wf[i] * x[i]; mag += std::fabs((double)wf[i] * x[i]); }
    for (int64_t b = 0; b < n / C::kBlock; b++)
      for (int c = 0; c < 8; c++) got += C::dot(q.data() + b * C::kBytes, c, x.data() + b * C::kBlock);
    worst = std::max(worst, std::fabs(got - ref) / mag);
  }
  const bool ok = worst < 1e-6;
  printf("%-5s chunk dot %s (worst |error| %.1e of sum |w x|)\n", name, ok ? "ok" : "MISMATCH", worst);
  return ok;
}

// The CPU's routing rule, verbatim from Llama4Model::moe (steps 2-3), for one token.
static void cpu_route(const float* z, int64_t E, int64_t K, int il, int64_t pos, const Interventions* iv, int32_t* experts, float* gates,
                      uint8_t* zeroed) {
  std::vector<float> sel(z, z + E);
  std::vector<int32_t> order(E);
  if (iv)
    for (auto& rb : iv->router_biases)
      if (rb.layer == il) for (int64_t e = 0; e < E; e++) sel[e] += rb.bias[e];
  for (int64_t e = 0; e < E; e++) order[e] = (int32_t)e;
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return sel[a] > sel[b]; });
  int64_t next = 0;
  for (int64_t j = 0; j < K; j++) {
    int32_t e = order[next++];
    zeroed[j] = 0;
    if (iv) {
      for (auto& ab : iv->ablate_experts) {
        if (ab.layer != il || ab.expert != e) continue;
        if (ab.reroute) {
          auto ablated = [&](int32_t x) {
            for (auto& a2 : iv->ablate_experts) if (a2.layer == il && a2.expert == x) return true;
            return false;
          };
          while (next < E && ablated(order[next])) next++;
          if (next < E) e = order[next++];
        } else {
          zeroed[j] = 1;
        }
      }
      for (auto& rp : iv->replays) {
        int64_t r = pos - rp.pos0;
        if (rp.layer == il && r >= 0 && (size_t)((r + 1) * rp.k) <= rp.experts.size() && j < rp.k) e = rp.experts[r * rp.k + j];
      }
      for (auto& fr : iv->force_routes)
        if (fr.layer == il && (fr.pos < 0 || fr.pos == pos) && j == 0) e = fr.expert;
    }
    experts[j] = e;
    gates[j] = 1.0f / (1.0f + std::exp(-z[e]));
  }
}

// Random logits (with ties) and random interventions: the routing kernel's body must choose the same
// experts, zero the same slots and compute the same gates as the CPU.
static bool check_routing() {
  std::mt19937 rng(77);
  int trials = 0;
  for (int trial = 0; trial < 3000; trial++) {
    const int64_t E = (trial % 3 == 0) ? 128 : 16, K = 1 + trial % 2 + (trial % 7 == 0 ? 2 : 0);
    const int il = trial % 2;
    Interventions iv;
    std::uniform_int_distribution<int> ex(0, (int)E - 1), coin(0, 5);
    for (int a = coin(rng); a > 1; a--) iv.ablate_experts.push_back({coin(rng) ? il : 1 - il, ex(rng), (bool)(coin(rng) & 1)});
    if (coin(rng) == 0) iv.force_routes.push_back({il, coin(rng) < 3 ? -1 : (int64_t)coin(rng), ex(rng)});
    if (coin(rng) == 0) {
      std::vector<float> b(E);
      for (auto& v : b) v = (float)coin(rng) * 0.25f;
      iv.router_biases.push_back({il, b});
    }
    if (coin(rng) == 0) {
      Interventions::Replay r{il, (int64_t)coin(rng), {}, (int)K};
      for (int i = 0; i < 4 * K; i++) r.experts.push_back(ex(rng));
      iv.replays.push_back(r);
    }
    const cuda::RouteTables t = cuda::route_tables(iv, il, E);
    cuda::RouteIv riv;
    riv.bias = t.bias.empty() ? nullptr : t.bias.data();
    riv.ablate = t.ablate.empty() ? nullptr : t.ablate.data();
    riv.n_force = (int)t.force.size() / 2; riv.force = t.force.data();
    riv.n_replay = (int)t.replay.size() / 4; riv.replay = t.replay.data(); riv.replay_experts = t.replay_experts.data();
    for (int64_t pos = 0; pos < 6; pos++) {
      std::vector<float> z(E);
      for (auto& v : z) v = (float)(int)(rng() % 9) * 0.5f - 2.f;  // few distinct values: many ties
      std::vector<int32_t> ce(K), ge(K), gs(K);
      std::vector<float> cg(K), gg(K);
      std::vector<uint8_t> cz(K);
      cpu_route(z.data(), E, K, il, pos, &iv, ce.data(), cg.data(), cz.data());
      cuda::route_token(z.data(), E, K, pos, riv, ge.data(), gg.data(), gs.data());
      for (int64_t j = 0; j < K; j++)
        if (ce[j] != ge[j] || cg[j] != gg[j] || (cz[j] ? -1 : ce[j]) != gs[j]) {
          printf("routing MISMATCH trial %d pos %lld slot %lld: cpu expert %d zeroed %d, cuda expert %d slot %d\n", trial, (long long)pos,
                 (long long)j, ce[j], cz[j], ge[j], gs[j]);
          return false;
        }
      trials++;
    }
  }
  printf("routing ok (%d tokens: top-k with ties, bias, ablate zero/reroute, force, replay)\n", trials);
  return true;
}

int main() {
  bool ok = check_routing();
  ok &= check<cuda::DecF32>("F32", 0);
  ok &= check<cuda::DecF16>("F16", 1);
  ok &= check<cuda::DecBF16>("BF16", 30);
  ok &= check<cuda::DecQ8_0>("Q8_0", 8);
  ok &= check<cuda::DecQ4_0>("Q4_0", 2);
  ok &= check<cuda::DecQ4_K>("Q4_K", 12);
  ok &= check<cuda::DecQ5_K>("Q5_K", 13);
  ok &= check<cuda::DecQ6_K>("Q6_K", 14);
  ok &= check_chunks<cuda::ChunkQ4_K>("Q4_K", 12);
  ok &= check_chunks<cuda::ChunkQ6_K>("Q6_K", 14);
  printf(ok ? "all decoders match\n" : "decoder mismatch\n");
  return ok ? 0 : 1;
}
