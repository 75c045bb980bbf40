// Helpers shared by the data plane tests: making planes of each kind, pumping them, payloads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "net/data/loopback_data_plane.h"
#include "net/data/transport.h"

namespace runahead::net::testing {

// One kind of data plane under test: "loopback", "ucx-tcp" or "ucx-shm".
struct PlaneKind {
  std::string label;
  std::string transports;  // UCX_TLS, empty for loopback
  bool direct = false;     // wrapped in the direct-write plane (host memory within the process)
  bool is_ucx() const { return !transports.empty(); }
};

std::vector<PlaneKind> all_plane_kinds();
// gtest prints parameters through this.
void PrintTo(const PlaneKind& kind, std::ostream* out);

// Makes planes of one kind; loopback planes share the factory's hub.
class PlaneFactory {
 public:
  explicit PlaneFactory(PlaneKind kind);
  [[nodiscard]] Result<std::unique_ptr<Transport>> make(
      const std::string& name,
      std::chrono::milliseconds send_timeout = std::chrono::milliseconds(5000));

 private:
  [[nodiscard]] Result<std::unique_ptr<Transport>> make_inner(
      const std::string& name, std::chrono::milliseconds send_timeout);

  PlaneKind kind_;
  std::shared_ptr<LoopbackHub> hub_;
};

// Progresses the planes until `done` holds or `timeout` passes; returns whether it held.
bool pump_until(const std::vector<Transport*>& planes, const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// Deterministic bytes that differ per (seed, offset).
std::vector<uint8_t> pattern(size_t bytes, uint64_t seed);

}  // namespace runahead::net::testing
