#include "core/log_limiter.h"

namespace runahead {
namespace {

constexpr std::string_view kOverflowKey = "(other keys)";

}  // namespace

LogLimiter::LogLimiter() : LogLimiter(Options{}) {}

LogLimiter::LogLimiter(Options options) : options_(options) {}

bool LogLimiter::admit(std::string_view key, Clock::time_point now, uint64_t* suppressed) {
  std::lock_guard lock(mutex_);
  auto it = windows_.find(std::string(key));
  if (it == windows_.end()) {
    if (windows_.size() >= options_.max_keys) {
      // Forget keys whose window has passed with nothing left to report.
      std::erase_if(windows_, [&](const auto& entry) {
        return entry.second.suppressed == 0 && now - entry.second.start >= options_.window;
      });
    }
    const std::string_view stored = windows_.size() < options_.max_keys ? key : kOverflowKey;
    it = windows_.try_emplace(std::string(stored), Window{now, 0, 0}).first;
  }
  Window& window = it->second;
  if (now - window.start >= options_.window) {
    window.start = now;
    window.written = 0;
  }
  if (window.written >= options_.lines_per_window) {
    ++window.suppressed;
    ++total_suppressed_;
    return false;
  }
  ++window.written;
  if (suppressed != nullptr) *suppressed = window.suppressed;
  window.suppressed = 0;
  return true;
}

bool LogLimiter::would_admit(std::string_view key, Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  auto it = windows_.find(std::string(key));
  if (it == windows_.end()) return true;
  return now - it->second.start >= options_.window ||
         it->second.written < options_.lines_per_window;
}

uint64_t LogLimiter::total_suppressed() const {
  std::lock_guard lock(mutex_);
  return total_suppressed_;
}

void LogLimiter::reset() {
  std::lock_guard lock(mutex_);
  windows_.clear();
}

LogLimiter& shared_log_limiter() {
  static LogLimiter limiter;
  return limiter;
}

}  // namespace runahead
