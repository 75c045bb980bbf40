// Log-probabilities of generated tokens as every layer reports them: the local generation path
// and the worker compute them (model/logprobs.h), the API returns them (runahead/request.h).
#pragma once

#include <cstdint>
#include <vector>

namespace runahead {

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;

  bool operator==(const TokenLogprob&) const = default;
};

// One generated position: the token chosen, its log-probability, the K likeliest tokens.
struct PositionLogprobs {
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;  // likeliest first; equal values by lower id first

  bool operator==(const PositionLogprobs&) const = default;
};

}  // namespace runahead
