#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace moescope {

Sampler::Sampler(const SamplingParams& p) : p_(p), state_(p.seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}

double Sampler::uniform() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::sample(const float* logits, int64_t n) {
  if (p_.temperature <= 0) {
    int64_t best = 0;  // first maximum, as argmax does
    for (int64_t i = 1; i < n; i++)
      if (logits[i] > logits[best]) best = i;
    return (int32_t)best;
  }
  cand_.resize(n);
  for (int64_t i = 0; i < n; i++) cand_[i] = {logits[i], (int32_t)i};
  int64_t k = (p_.top_k > 0 && p_.top_k < n) ? p_.top_k : n;
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  cand_.resize(k);
  const double mx = cand_[0].first;
  std::vector<double> prob(k);
  double sum = 0;
  for (int64_t i = 0; i < k; i++) sum += prob[i] = std::exp(((double)cand_[i].first - mx) / p_.temperature);
  int64_t keep = k;
  if (p_.top_p < 1) {
    double acc = 0;
    for (int64_t i = 0; i < k; i++) {
      acc += prob[i] / sum;
      if (acc >= p_.top_p) { keep = i + 1; break; }
    }
  }
  double total = 0;
  for (int64_t i = 0; i < keep; i++) total += prob[i];
  double r = uniform() * total;
  for (int64_t i = 0; i < keep; i++) {
    r -= prob[i];
    if (r < 0) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace moescope
