// A transport that adds direct writes to another one: it offers one-sided peer memory
// (net/data/peer_memory.h) beside the inner transport's sends.
//
// Blocks still travel through the inner plane (UCX) unless the sender writes them straight into
// memory the receiver exposed: between worker processes on GPUs of one host, a CUDA IPC mapping
// and a device-to-device copy over NVLink (net/data/peer_memory_access.h). After the copy completes
// the sender tells the receiver through the inner plane with a small notice that carries the
// block's header, and the receiver resolves and completes the block as if it had been sent, so
// the layers above see the same protocol whichever way a block came.
//
// Addresses carry the inner address and the endpoint's identity (host, process, device), so
// each end decides from the other's address alone whether the path between them is direct.
// The writer unmaps an exposure when it is done with it and tells the receiver; the receiver's
// memory stays alive until then (or until a grace period after it withdrew the exposure).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "net/data/peer_memory_access.h"
#include "net/data/transport.h"

namespace runahead::net {

struct DirectWriteOptions {
  std::string name = "direct";  // this endpoint, in logs and errors
  bool enabled = true;          // false: announce no direct path (every block goes inner)
  // How long a withdrawn exposure stays mapped for a writer that never said it let go.
  std::chrono::milliseconds withdraw_grace{10000};
};

[[nodiscard]] Result<std::unique_ptr<Transport>> make_direct_write_data_plane(
    std::unique_ptr<Transport> inner, std::unique_ptr<PeerMemoryAccess> memory,
    DirectWriteOptions options = {});

}  // namespace runahead::net
