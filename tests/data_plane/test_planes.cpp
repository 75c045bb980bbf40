#include "tests/data_plane/test_planes.h"

#include "net/data/direct_write_data_plane.h"
#include "net/data/peer_memory_access.h"
#include "net/data/ucx_data_plane.h"

namespace runahead::net::testing {

std::vector<PlaneKind> all_plane_kinds() {
  // Shared memory without cma: CI containers may forbid process_vm_readv.
  return {{"loopback", ""},
          {"ucx_tcp", "tcp"},
          {"ucx_shm", "posix,sysv,self"},
          {"direct_loopback", "", true},
          {"direct_ucx_tcp", "tcp", true}};
}

void PrintTo(const PlaneKind& kind, std::ostream* out) {
  *out << kind.label;
}

PlaneFactory::PlaneFactory(PlaneKind kind) : kind_(std::move(kind)), hub_(make_loopback_hub()) {}

Result<std::unique_ptr<Transport>> PlaneFactory::make(const std::string& name,
                                                      std::chrono::milliseconds send_timeout) {
  RUNAHEAD_ASSIGN_OR_RETURN(auto plane, make_inner(name, send_timeout));
  if (!kind_.direct) return plane;
  return make_direct_write_data_plane(std::move(plane), make_host_peer_memory_access(name),
                                      DirectWriteOptions{.name = name});
}

Result<std::unique_ptr<Transport>> PlaneFactory::make_inner(
    const std::string& name, std::chrono::milliseconds send_timeout) {
  if (!kind_.is_ucx()) {
    RUNAHEAD_ASSIGN_OR_RETURN(auto plane,
                              LoopbackDataPlane::create(hub_, LoopbackOptions{.name = name}));
    return std::unique_ptr<Transport>(std::move(plane));
  }
  UcxDataPlaneOptions options;
  options.name = name;
  options.transports = kind_.transports;
  options.send_timeout = send_timeout;
  RUNAHEAD_ASSIGN_OR_RETURN(auto plane, UcxDataPlane::create(options));
  return std::unique_ptr<Transport>(std::move(plane));
}

bool pump_until(const std::vector<Transport*>& planes, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    for (Transport* plane : planes) plane->progress();
  }
  return true;
}

std::vector<uint8_t> pattern(size_t bytes, uint64_t seed) {
  std::vector<uint8_t> out(bytes);
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < bytes; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    out[i] = static_cast<uint8_t>(state);
  }
  return out;
}

}  // namespace runahead::net::testing
