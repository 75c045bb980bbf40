#include "net/control/refusal_log.h"

#include "core/log.h"

namespace runahead::net {

RefusalLog::RefusalLog(size_t burst, std::chrono::seconds window, size_t max_addresses)
    : limiter_(LogLimiter::Options{
          .lines_per_window = burst, .window = window, .max_keys = max_addresses}) {}

void RefusalLog::warn(const std::string& address, const std::string& message) {
  uint64_t left_out = 0;
  if (!limiter_.admit(address, LogLimiter::Clock::now(), &left_out)) return;
  if (left_out > 0) {
    logger("control")->warn("control: {} more refusals of {} were not logged", left_out, address);
  }
  logger("control")->warn("control: {}", message);
}

bool RefusalLog::would_log(const std::string& address) const {
  return limiter_.would_admit(address, LogLimiter::Clock::now());
}

std::string address_host(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close != std::string::npos) return address.substr(1, close - 1);
  }
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

}  // namespace runahead::net
