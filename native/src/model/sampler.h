// Next-token choice: greedy when temperature is 0, else softmax(logits / T) restricted by top-k and
// top-p, drawn with a seeded generator so a run is reproducible on any machine.
#pragma once
#include <cstdint>
#include <vector>

namespace moescope {

struct SamplingParams {
  float temperature = 0;  // 0 = greedy
  int top_k = 0;          // 0 = no limit
  float top_p = 1;        // 1 = no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  int32_t sample(const float* logits, int64_t n_vocab);

 private:
  double uniform();  // [0, 1)
  SamplingParams p_;
  uint64_t state_;   // splitmix64: tiny, fast and identical everywhere
  std::vector<std::pair<float, int32_t>> cand_;
};

}  // namespace moescope
