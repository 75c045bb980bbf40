// Time that counts only while this process runs: a periodic check advances it by the real time
// since the previous check, but by at most `max_step`. Silence measured on it (the time since a
// peer was last heard) does not grow while this process is paused (SIGSTOP, a suspended VM or
// host, a long stall), so a process that resumes judges its peers by what arrives after it
// resumes, not by the gap; a peer that stays silent is still declared gone, at most `max_step`
// per check later than the real clock would say.
#pragma once

#include <algorithm>
#include <chrono>

namespace runahead::runtime {

class LivenessClock {
 public:
  using RealTime = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  explicit LivenessClock(Duration max_step, RealTime now = std::chrono::steady_clock::now())
      : max_step_(max_step), last_check_(now) {}

  // The periodic check. Returns how much of the gap since the previous check was not counted
  // (the stall beyond max_step; zero normally).
  Duration check(RealTime now = std::chrono::steady_clock::now()) {
    const Duration gap = std::max(now - last_check_, Duration::zero());
    const Duration counted = std::min(gap, max_step_);
    elapsed_ += counted;
    last_check_ = now;
    return gap - counted;
  }

  // Liveness time now: the time counted so far plus the real time since the last check, capped
  // the same way. Compare two readings only.
  Duration now(RealTime real_now = std::chrono::steady_clock::now()) const {
    return elapsed_ + std::clamp(real_now - last_check_, Duration::zero(), max_step_);
  }

  Duration max_step() const { return max_step_; }

 private:
  Duration max_step_;
  RealTime last_check_;
  Duration elapsed_{0};
};

}  // namespace runahead::runtime
