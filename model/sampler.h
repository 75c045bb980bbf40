// Picks the next token from a row of logits: greedy, or sampled with temperature, top-k,
// top-p and a repetition penalty, reproducibly for a given seed.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/sampling_options.h"
#include "core/status.h"

namespace runahead {

// The steps, in the order Hugging Face applies them: repetition penalty on the raw logits
// (positive logits divided, negative multiplied), temperature, top-k, top-p, then a draw.
class Sampler {
 public:
  explicit Sampler(SamplingOptions options);

  // Chooses a token; `history` (prompt and generated tokens) feeds the repetition penalty.
  // Ids in `history` outside the logits are ignored.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  const SamplingOptions& options() const { return options_; }

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<float> scratch_;
  std::vector<int32_t> order_;
};

}  // namespace runahead
