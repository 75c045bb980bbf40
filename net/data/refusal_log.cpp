#include "net/data/refusal_log.h"

#include <utility>

#include "core/log.h"

namespace runahead::net {

RefusalLog::RefusalLog(std::string plane, uint32_t burst, std::chrono::milliseconds period)
    : plane_(std::move(plane)), burst_(burst), period_(period) {}

RefusalLog::~RefusalLog() {
  summarize();
}

void RefusalLog::summarize() {
  if (suppressed_ == 0) return;
  logger("data_plane")
      ->warn("{}: {} more K/V blocks refused and not logged (rate limit of {} per {} ms)", plane_,
             suppressed_, burst_, period_.count());
  suppressed_ = 0;
}

void RefusalLog::refused(const std::string& from, const Status& why) {
  ++total_;
  const auto now = std::chrono::steady_clock::now();
  if (now - period_start_ >= period_) {
    summarize();
    period_start_ = now;
    logged_in_period_ = 0;
  }
  if (logged_in_period_ >= burst_) {
    ++suppressed_;
    return;
  }
  ++logged_in_period_;
  logger("data_plane")->warn("{}: refused a K/V block from {}: {}", plane_, from, why.to_string());
}

}  // namespace runahead::net
