// How one endpoint reaches memory another endpoint exposes: the mechanism under the one-sided
// peer memory (net/data/peer_memory.h) that the direct-write plane
// (net/data/direct_write_data_plane.h) offers.
//
// Two implementations: CUDA IPC between worker processes on GPUs of one host (handles exported
// by the receiver, mapped by the sender, copies on the sender's own stream over NVLink or PCIe),
// and plain host pointers within one process, for tests of the protocol above it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace runahead::net {

class PeerMemoryAccess {
 public:
  virtual ~PeerMemoryAccess() = default;

  // "cuda-ipc cuda:1", for logs.
  virtual std::string describe() const = 0;
  // Who this endpoint is, as its peers need to know to decide reach (host, process, device).
  virtual std::vector<uint8_t> identity() const = 0;
  // Whether this endpoint can map memory the endpoint with `peer_identity` exposes, and the
  // other way round. Untrusted input: anything malformed is simply not reachable.
  virtual bool reaches(const std::vector<uint8_t>& peer_identity) const = 0;

  // Exporter: a handle for the allocation that starts at `base` and holds `bytes`.
  [[nodiscard]] virtual Result<std::vector<uint8_t>> export_handle(void* base, size_t bytes) = 0;
  // Importer: maps a peer's handle (untrusted bytes); returns the local address.
  [[nodiscard]] virtual Result<void*> map(const std::vector<uint8_t>& handle) = 0;
  virtual void unmap(void* mapped) = 0;

  // Starts copying `bytes` from `src` (this endpoint's memory) to `dst` (a mapped address);
  // `done` runs exactly once, on any thread, when the copy has completed or failed.
  [[nodiscard]] virtual Status copy_async(void* dst, const void* src, size_t bytes,
                                          std::function<void(Status)> done) = 0;
};

// Host pointers within one process: map() returns the exported pointer, copies are memcpy.
// `name` tells endpoints apart in the identity; all of one process reach each other.
std::unique_ptr<PeerMemoryAccess> make_host_peer_memory_access(std::string name);

// CUDA IPC for GPU `device`: reaches endpoints on the same host in other processes whose GPU
// has peer access to this one (or is this one). kUnsupported in builds without CUDA.
[[nodiscard]] Result<std::unique_ptr<PeerMemoryAccess>> make_cuda_ipc_peer_memory_access(
    int device);

}  // namespace runahead::net
