// Rate-limited logging for lines a peer can trigger once per message (a refused send, a
// malformed frame, a closed connection): at most N lines per window for each key, after which
// lines of that key are counted, not written; the next line written for the key says how many
// were suppressed. A flood then costs a few lines per second instead of one per message.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace runahead {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    size_t lines_per_window = 10;
    std::chrono::milliseconds window{1000};
    // Keys remembered at once; lines of further keys share one overflow key, so that keys
    // derived from peer input cannot grow the map.
    size_t max_keys = 256;
  };

  LogLimiter();
  explicit LogLimiter(Options options);

  // Whether a line of `key` may be written at `now`. When it may, `*suppressed` is set to the
  // number of lines of `key` dropped since the last one written. Thread-safe.
  [[nodiscard]] bool admit(std::string_view key, Clock::time_point now, uint64_t* suppressed);

  // Whether admit() would let a line of `key` through at `now`, without counting one.
  [[nodiscard]] bool would_admit(std::string_view key, Clock::time_point now) const;

  // Lines dropped so far over all keys (for tests and diagnostics).
  uint64_t total_suppressed() const;

  // Forgets every key's window: the next lines are written (tests that look for a line).
  void reset();

 private:
  struct Window {
    Clock::time_point start;
    size_t written = 0;
    uint64_t suppressed = 0;
  };

  const Options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;
  uint64_t total_suppressed_ = 0;
};

// The process-wide limiter that log_limited() uses: 10 lines per second per key.
LogLimiter& shared_log_limiter();

// Writes a line at `level` on `log` unless the shared limiter suppresses it for `key`; a line
// written after suppression ends with "(N similar lines suppressed)".
template <typename... Args>
void log_limited(spdlog::logger& log, spdlog::level::level_enum level, std::string_view key,
                 fmt::format_string<Args...> format, Args&&... args) {
  if (!log.should_log(level)) return;
  uint64_t suppressed = 0;
  if (!shared_log_limiter().admit(key, LogLimiter::Clock::now(), &suppressed)) return;
  std::string line = fmt::format(format, std::forward<Args>(args)...);
  if (suppressed > 0) line += fmt::format(" ({} similar lines suppressed)", suppressed);
  log.log(level, "{}", line);
}

template <typename... Args>
void warn_limited(spdlog::logger& log, std::string_view key, fmt::format_string<Args...> format,
                  Args&&... args) {
  log_limited(log, spdlog::level::warn, key, format, std::forward<Args>(args)...);
}

}  // namespace runahead
