#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace runahead {

Sampler::Sampler(SamplingOptions options) : options_(options), rng_(options.seed) {}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const auto n = static_cast<int32_t>(logits.size());
  if (n == 0) return -1;
  scratch_.assign(logits.begin(), logits.end());
  if (options_.repetition_penalty != 1.0f) {
    // Each distinct token is penalized once, however often it appeared.
    std::vector<bool> seen(static_cast<size_t>(n), false);
    for (int32_t token : history) {
      if (token < 0 || token >= n || seen[static_cast<size_t>(token)]) continue;
      seen[static_cast<size_t>(token)] = true;
      float& x = scratch_[static_cast<size_t>(token)];
      x = x > 0 ? x / options_.repetition_penalty : x * options_.repetition_penalty;
    }
  }
  const auto best =
      static_cast<int32_t>(std::max_element(scratch_.begin(), scratch_.end()) - scratch_.begin());
  if (options_.greedy()) return best;

  for (float& x : scratch_) x /= options_.temperature;
  order_.resize(static_cast<size_t>(n));
  std::iota(order_.begin(), order_.end(), 0);
  // Highest logit first; ties by id so the order, and so the draw, is reproducible.
  auto higher = [&](int32_t a, int32_t b) {
    const float xa = scratch_[static_cast<size_t>(a)];
    const float xb = scratch_[static_cast<size_t>(b)];
    return xa > xb || (xa == xb && a < b);
  };
  size_t keep = static_cast<size_t>(n);
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < keep) {
    keep = static_cast<size_t>(options_.top_k);
    std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(keep),
                      order_.end(), higher);
  } else {
    std::sort(order_.begin(), order_.end(), higher);
  }
  const float top = scratch_[static_cast<size_t>(order_[0])];
  std::vector<double> weights(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    weights[i] = std::exp(static_cast<double>(scratch_[static_cast<size_t>(order_[i])] - top));
    total += weights[i];
  }
  if (options_.top_p < 1.0f) {
    // The smallest prefix whose probability reaches top_p (at least one token).
    double mass = 0.0;
    size_t cut = 0;
    while (cut < keep) {
      mass += weights[cut] / total;
      ++cut;
      if (mass >= options_.top_p) break;
    }
    keep = cut;
    weights.resize(keep);
    total = std::accumulate(weights.begin(), weights.end(), 0.0);
  }
  if (!(total > 0.0) || !std::isfinite(total)) return best;
  std::uniform_real_distribution<double> uniform(0.0, total);
  double draw = uniform(rng_);
  for (size_t i = 0; i < keep; ++i) {
    draw -= weights[i];
    if (draw < 0.0) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace runahead
