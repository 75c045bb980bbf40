#include "net/control/refusal_log.h"

#include "core/log.h"

namespace runahead::net {

RefusalLog::RefusalLog(size_t burst, std::chrono::seconds window, size_t max_addresses)
    : burst_(burst), window_(window), max_addresses_(max_addresses) {}

RefusalLog::Window& RefusalLog::window_of(const std::string& address,
                                          std::chrono::steady_clock::time_point now) {
  auto found = windows_.find(address);
  if (found == windows_.end()) {
    // Bounded: forget expired windows first, everything if that is not enough.
    if (windows_.size() >= max_addresses_) {
      std::erase_if(windows_, [&](const auto& entry) {
        return now - entry.second.start >= window_ && entry.second.suppressed == 0;
      });
      if (windows_.size() >= max_addresses_) windows_.clear();
    }
    found = windows_.emplace(address, Window{now, 0, 0}).first;
  }
  return found->second;
}

void RefusalLog::warn(const std::string& address, const std::string& message) {
  size_t left_out = 0;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    Window& window = window_of(address, now);
    if (now - window.start >= window_) {
      left_out = window.suppressed;
      window = Window{now, 0, 0};
    }
    if (window.logged >= burst_) {
      ++window.suppressed;
      return;
    }
    ++window.logged;
  }
  if (left_out > 0) {
    logger("control")->warn("control: {} more refusals of {} were not logged", left_out, address);
  }
  logger("control")->warn("control: {}", message);
}

bool RefusalLog::would_log(const std::string& address) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  const Window& window = window_of(address, now);
  return now - window.start >= window_ || window.logged < burst_;
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
