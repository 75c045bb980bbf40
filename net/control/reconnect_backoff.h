// The waits between attempts to reach a peer again: exponential from `initial` up to `max`,
// each shortened by a random fraction (jitter), so that the workers of a cluster whose
// coordinator restarts do not all knock at the same instant.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace runahead::net {

struct ReconnectPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{2000};
  double jitter = 0.25;  // each wait is shortened by a uniform fraction in [0, jitter)
};

class ReconnectBackoff {
 public:
  ReconnectBackoff(ReconnectPolicy policy, uint64_t seed);

  // The wait before the next attempt; grows with each call until reset().
  std::chrono::milliseconds next();
  void reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  ReconnectPolicy policy_;
  std::mt19937_64 random_;
  int attempts_ = 0;
};

}  // namespace runahead::net
