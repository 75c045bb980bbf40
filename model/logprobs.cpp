#include "model/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace runahead {

namespace {

// log(sum(exp(x))) = shift + log_sum, kept apart so that x - shift is exact for large x.
struct Normalizer {
  double shift = 0.0;
  double log_sum = 0.0;

  // -inf when every logit is (no token has any probability), NaN for a NaN logit.
  float logprob(float x) const {
    if (std::isinf(shift) && shift < 0) return -std::numeric_limits<float>::infinity();
    return static_cast<float>((static_cast<double>(x) - shift) - log_sum);
  }
};

Normalizer normalizer(std::span<const float> logits) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float largest = kNegInf;
  for (float x : logits) {
    if (x > largest) largest = x;  // NaN never compares greater
  }
  if (std::isinf(largest)) return Normalizer{largest, 0.0};
  double sum = 0.0;
  for (float x : logits) {
    if (!std::isnan(x)) sum += std::exp(static_cast<double>(x) - static_cast<double>(largest));
  }
  return Normalizer{static_cast<double>(largest), std::log(sum)};
}

}  // namespace

float log_sum_exp(std::span<const float> logits) {
  const Normalizer n = normalizer(logits);
  return static_cast<float>(n.shift + n.log_sum);
}

Status validate_top_logprobs(int64_t k, int64_t vocab, const char* what) {
  if (k < 1 || k > vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(what) + " asks for the top " + std::to_string(k) +
                          " log-probabilities; it must be between 1 and the vocabulary size " +
                          std::to_string(vocab));
  }
  return Status::ok();
}

Result<PositionLogprobs> position_logprobs(std::span<const float> logits, int32_t chosen, int k) {
  const auto vocab = static_cast<int64_t>(logits.size());
  RUNAHEAD_RETURN_IF_ERROR(validate_top_logprobs(k, vocab, "the request"));
  if (chosen < 0 || chosen >= vocab) {
    return make_error(ErrorCode::kOutOfRange, "chosen token " + std::to_string(chosen) +
                                                  " is outside the vocabulary of " +
                                                  std::to_string(vocab));
  }
  const Normalizer n = normalizer(logits);
  auto logprob = [&](int32_t id) { return n.logprob(logits[static_cast<size_t>(id)]); };
  // Higher logit first, lower id first among equals; NaN below every number.
  auto before = [&](int32_t a, int32_t b) {
    const float x = logits[static_cast<size_t>(a)];
    const float y = logits[static_cast<size_t>(b)];
    const bool x_nan = std::isnan(x);
    const bool y_nan = std::isnan(y);
    if (x_nan != y_nan) return y_nan;
    if (!x_nan && x != y) return x > y;
    return a < b;
  };
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  PositionLogprobs out;
  out.token = chosen;
  out.logprob = logprob(chosen);
  out.top.reserve(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) {
    const int32_t id = order[static_cast<size_t>(i)];
    out.top.push_back(TokenLogprob{id, logprob(id)});
  }
  return out;
}

}  // namespace runahead
