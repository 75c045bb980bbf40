// One-sided peer memory: direct writes of K/V blocks into memory a peer exposed (GPU peer copies
// between processes of one host), offered by a transport alongside its sends
// (Transport::peer_memory(); net/data/direct_write_data_plane.h provides it).
//
// A receiver exposes a region of its device memory; the sender opens it from the exposure's
// bytes (passed through the control plane) and posts blocks with a destination offset. The block
// is copied device to device, then the receiver is told, with the same header, and its
// transport's resolver and completion run as for a sent block (the resolver must name the place
// the block was written to). A write's handle is checked and released through the transport
// that offers this peer memory, like a send's.
//
// Threading: driven by the thread that drives its transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "net/data/transport.h"

namespace runahead::net {

class PeerMemory {
 public:
  virtual ~PeerMemory() = default;

  // Whether blocks between this endpoint and the one at `peer_address` can be written
  // directly. Both ends compute the same answer from each other's address.
  virtual bool direct_path(const std::vector<uint8_t>& peer_address) const = 0;

  // Receiver: lets a peer write into [base, base + bytes) of device memory. `keep_alive` holds
  // the memory until withdraw() was called and the writer has let go of it (or a grace period
  // passed). Returns the bytes a writer opens it with.
  [[nodiscard]] virtual Result<std::vector<uint8_t>> expose(void* base, size_t bytes,
                                                            std::shared_ptr<void> keep_alive) = 0;
  // Receiver: no further writes are expected into the exposure named by `exposure` (expose()'s
  // bytes).
  virtual void withdraw(const std::vector<uint8_t>& exposure) = 0;

  // Sender: maps the peer's exposure; later writes name it by the returned id.
  [[nodiscard]] virtual Result<uint64_t> open_target(PeerId peer,
                                                     const std::vector<uint8_t>& exposure) = 0;
  // Sender: writes the block at `offset` bytes into the target, then tells the receiver. The
  // handle is checked and released through the transport, like a send's.
  [[nodiscard]] virtual Result<SendHandle> post_write(uint64_t target, size_t offset,
                                                      const KvBlockHeader& header,
                                                      const void* payload) = 0;
  // Sender: unmaps the target once no write to it is in flight, and tells the receiver.
  virtual void close_target(uint64_t target) = 0;
};

// Whether `transport` can write blocks directly to the endpoint at `peer_address`: it offers
// peer memory and that memory reaches there.
inline bool direct_path(Transport& transport, const std::vector<uint8_t>& peer_address) {
  const PeerMemory* memory = transport.peer_memory();
  return memory != nullptr && memory->direct_path(peer_address);
}

}  // namespace runahead::net
