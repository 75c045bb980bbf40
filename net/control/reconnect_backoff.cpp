#include "net/control/reconnect_backoff.h"

#include <algorithm>

namespace runahead::net {

ReconnectBackoff::ReconnectBackoff(ReconnectPolicy policy, uint64_t seed)
    : policy_(policy), random_(seed) {
  policy_.initial = std::max(policy_.initial, std::chrono::milliseconds(1));
  policy_.max = std::max(policy_.max, policy_.initial);
  policy_.jitter = std::clamp(policy_.jitter, 0.0, 1.0);
}

std::chrono::milliseconds ReconnectBackoff::next() {
  // Doubling stops once past the cap, so the shift never overflows.
  auto base = policy_.initial;
  for (int i = 0; i < attempts_ && base < policy_.max; ++i) base *= 2;
  base = std::min(base, policy_.max);
  ++attempts_;
  std::uniform_real_distribution<double> fraction(0.0, policy_.jitter);
  const double shortened = static_cast<double>(base.count()) * (1.0 - fraction(random_));
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::milliseconds(static_cast<int64_t>(shortened)));
}

}  // namespace runahead::net
