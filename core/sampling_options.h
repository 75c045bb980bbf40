// How the next token is chosen from a row of logits (model/sampler.h applies it): the one
// sampling type of local generation, the coordinator, the workers and the control protocol.
// The public API has its own (runahead::Sampling), converted at the API edge.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace runahead {

struct SamplingOptions {
  float temperature = 0.0f;         // 0: greedy (argmax)
  int top_k = 0;                    // 0: no limit
  float top_p = 1.0f;               // 1: no nucleus cut
  float repetition_penalty = 1.0f;  // 1: off; >1 discourages tokens already seen (CTRL style)
  uint64_t seed = 0;

  // Names the first option that is out of range.
  Status validate() const;
  bool greedy() const { return temperature == 0.0f; }

  bool operator==(const SamplingOptions&) const = default;
};

}  // namespace runahead
