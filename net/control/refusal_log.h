// Warnings about refused peers, rate limited per remote address: a peer that retries a wrong
// key (or a flood of them) cannot fill the log. Each address gets `burst` lines per `window`
// (core/log_limiter.h); the next line after a quiet window says how many were left out.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "core/log_limiter.h"

namespace runahead::net {

class RefusalLog {
 public:
  explicit RefusalLog(size_t burst = 5, std::chrono::seconds window = std::chrono::seconds(60),
                      size_t max_addresses = 4096);

  // Logs `message` (a warning on the "control" logger) unless `address` used up its lines.
  void warn(const std::string& address, const std::string& message);

  // Whether the next warning for `address` would be written (for tests).
  bool would_log(const std::string& address) const;

 private:
  LogLimiter limiter_;
};

// The host part of "host:port" or "[v6]:port" (the port changes with every connection).
std::string address_host(const std::string& address);

}  // namespace runahead::net
