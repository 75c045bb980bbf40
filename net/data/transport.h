// The two-sided data plane: K/V blocks between workers, behind one small interface.
//
// A block is the K/V of one layer for a token range of one request (model/kv_cache.h lays it
// out contiguously). The sender posts it and later checks and releases the send; the receiver
// resolves each arriving header to a destination in its own cache, so the payload lands there
// directly, and is told when a block is complete. Implementations: UCX (net/data/ucx_data_plane.h)
// and an in-process loopback for tests (net/data/loopback_data_plane.h). A transport may also
// offer one-sided writes into its peers' memory (peer_memory(), net/data/peer_memory.h).
// Decorators derive from ForwardingTransport (net/data/forwarding_transport.h).
//
// Threading: a transport is driven by one thread (the I/O thread of its worker); none of its
// methods, nor those of its peer memory, may be called concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/status.h"

namespace runahead::net {

class PeerMemory;

// The secret a coordinator draws for each request (128 bits from the system's CSPRNG) and
// gives to the workers of that request only: every K/V block of the request carries it, and a
// receiver takes no block without it (net/data/block_admission.h). Never logged.
struct KvCapability {
  std::array<uint8_t, 16> bytes{};
};

// Fixed-size header sent in front of every block; validated before any payload is accepted.
struct KvBlockHeader {
  uint64_t request_id = 0;
  uint32_t layer = 0;
  uint32_t flags = 0;  // left to the caller; carried as is
  int64_t token_begin = 0;
  int64_t token_end = 0;
  uint64_t payload_bytes = 0;
  // Who sent the block (the worker id the coordinator gave it) and the request's capability:
  // the receiver takes blocks only from the senders its plan names, with the capability.
  uint64_t sender_worker = 0;
  KvCapability capability{};
};

// What a receiver accepts at all, checked before its resolver sees a header. The worker sets
// these from its model: a header outside them is refused without consulting the resolver.
struct BlockLimits {
  uint32_t n_layers = std::numeric_limits<uint32_t>::max();  // layer must be below this
  uint64_t bytes_per_token = 0;  // payload_bytes must be tokens * this; 0: not checked
  uint64_t max_block_bytes = uint64_t{1} << 32;  // no payload above this, whatever it claims
};

// "request 7 layer 3 tokens [0, 128) 4096 bytes", for logs and error messages.
std::string describe(const KvBlockHeader& header);

// Checks a header against the limits and against the payload that actually arrived (or is
// about to be sent): a non-empty token range, a layer in range, a payload size that agrees with
// the range and with `payload_bytes_on_wire`. The error message names the block.
[[nodiscard]] Status validate_block_header(const KvBlockHeader& header, const BlockLimits& limits,
                                           uint64_t payload_bytes_on_wire);

struct TransportCapabilities {
  std::string transport;           // "ucx:tcp", "ucx:shm", "loopback", ...
  bool device_memory = false;      // can send from / receive into GPU memory directly
  bool zero_copy_receive = false;  // bulk payloads land in the destination without a staging copy
};

using PeerId = uint64_t;
using SendHandle = uint64_t;

enum class SendState : uint8_t { kInFlight, kDone, kFailed };

class Transport {
 public:
  virtual ~Transport() = default;

  virtual TransportCapabilities capabilities() const = 0;
  // Opaque bytes a peer needs to reach this endpoint (published through the control plane).
  virtual std::vector<uint8_t> local_address() const = 0;
  // The address is untrusted input: a malformed one is refused with kInvalidArgument.
  [[nodiscard]] virtual Status connect(PeerId peer, const std::vector<uint8_t>& address) = 0;
  // Sends still in flight to the peer finish or fail; later sends to it fail with kNotFound.
  virtual void disconnect(PeerId peer) = 0;

  // Starts sending a block; `payload` must stay valid until check() reports kDone or kFailed.
  // A send to a peer that failed, or whose header is invalid, fails here at once. A send that
  // cannot complete (peer died, timed out) ends in kFailed with a status naming the peer.
  // A block the receiver refuses fails with kProtocol where the transport can tell (loopback, a
  // UCX rendezvous block) and reports kDone where it cannot (a small UCX eager block): the
  // receiver's log is the authority.
  [[nodiscard]] virtual Result<SendHandle> post_send(PeerId peer, const KvBlockHeader& header,
                                                     const void* payload) = 0;
  // Checks a send, or a write of this transport's peer memory.
  virtual SendState check(SendHandle handle, Status* failure = nullptr) = 0;
  // Forgets a send (or write), normally once check() reported kDone or kFailed. Releasing one in
  // flight only stops tracking it: the transport may still read the payload until the transfer
  // ends.
  virtual void release(SendHandle handle) = 0;

  // Receiving: `resolve` maps a header to the destination of its payload (which must hold
  // header.payload_bytes), or refuses it (unknown request, size that disagrees with the plan):
  // the block is dropped and logged, nothing is written. `complete` is called once the payload
  // is in place, or with the reason it never will be. `resolve` runs inside progress() and must
  // not call into the transport; `complete` runs after it, also inside progress(), and may
  // (e.g. to forward the block).
  using Resolver = std::function<Result<void*>(const KvBlockHeader& header)>;
  using Completion = std::function<void(const KvBlockHeader& header, Status status)>;
  virtual void set_receiver(Resolver resolve, Completion complete) = 0;
  virtual void set_block_limits(const BlockLimits& limits) = 0;

  // Makes progress on sends and receives; callbacks run inside this call. Besides calling it
  // when event_fd() is readable, call it on a timer (every ~100 ms) while sends are in flight:
  // failure detection and send timeouts are checked here.
  virtual void progress() = 0;
  // A file descriptor that becomes readable when progress() has work (-1 if polling only);
  // arm() must return true before waiting on it, false meaning "call progress() first". Under
  // Asio, on false post the progress-and-arm step back to the loop rather than spinning on it:
  // arm() can stay false while a transfer waits on the peer.
  virtual int event_fd() const = 0;
  virtual bool arm() = 0;

  // The one-sided writes into peers' memory this transport offers alongside its sends, or null.
  // Their handles are checked and released here; progress() drives them too.
  virtual PeerMemory* peer_memory() { return nullptr; }
};

}  // namespace runahead::net
