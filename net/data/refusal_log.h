// Warnings about refused K/V blocks, rate-limited: anyone who reaches a data-plane endpoint
// can send blocks, and a flood of forged ones must not turn into a flood of log lines. The
// first `burst` refusals of each period are logged; the rest are counted and summed up in one
// line when the next period starts (or at destruction).
//
// Threading: used by the one thread that drives its transport.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace runahead::net {

class RefusalLog {
 public:
  // `plane` names the receiving endpoint in every line ("ucx w1", "loopback w2").
  explicit RefusalLog(std::string plane, uint32_t burst = 10,
                      std::chrono::milliseconds period = std::chrono::seconds(1));
  ~RefusalLog();
  RefusalLog(const RefusalLog&) = delete;
  RefusalLog& operator=(const RefusalLog&) = delete;

  // A block from `from` (the sender, as the block names it) was refused for `why`.
  void refused(const std::string& from, const Status& why);
  // Refusals so far, logged or not.
  uint64_t total() const { return total_; }

 private:
  void summarize();

  std::string plane_;
  uint32_t burst_;
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point period_start_{};
  uint32_t logged_in_period_ = 0;
  uint64_t suppressed_ = 0;
  uint64_t total_ = 0;
};

}  // namespace runahead::net
