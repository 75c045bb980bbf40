// A token bucket: `rate` events per second on average, `burst` at once. Not thread-safe: one
// per connection, used on that connection's strand.
#pragma once

#include <algorithm>
#include <chrono>

namespace runahead {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(double rate_per_second, double burst)
      : rate_(rate_per_second), burst_(burst), tokens_(burst) {}

  // Takes one token if there is one at `now`.
  [[nodiscard]] bool take(Clock::time_point now) {
    if (started_) {
      const double elapsed = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * rate_);
    }
    started_ = true;
    last_ = now;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  bool started_ = false;
  Clock::time_point last_;
};

}  // namespace runahead
