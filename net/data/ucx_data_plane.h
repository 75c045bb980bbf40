// The data plane over UCX (UCP active messages).
//
// Each block is one active message: a small wire header (the KvBlockHeader plus the sender's
// identity) as the AM header and the block as the AM data. UCX picks eager or rendezvous by
// size; a rendezvous payload is fetched by UCX straight into the destination the resolver
// returns, an eager one (small, already in a bounce buffer) is copied there. Active messages,
// not RMA put with packed rkeys, because the receiver decides the destination per block when
// it arrives (cut-through forwarding, out-of-order layers) without registering its cache with
// the sender or a round trip to hand out rkeys, and a refused rendezvous block is never pulled.
//
// Endpoints use UCX's peer error handling: a peer that dies fails the sends to it, with a status
// naming the peer, instead of hanging; a send still in flight after `send_timeout` fails its
// peer the same way (its endpoint is closed; connect it again to retry). The transport is UCX's
// choice (UCX_TLS from the environment) unless the `transports` option names one ("tcp",
// "posix,sysv,self", "rc,ud", ...).
//
// Shared memory (posix, sysv) in UCX 1.13 cannot detect a dead peer and refuses peer error
// handling, so a plane limited to shared-memory transports connects without it: there the send
// timeout alone bounds sends to a dead peer, and a send it fails is abandoned rather than
// cancelled (UCX never completes it), so a receive from that peer never completes either; the
// control plane's request timeout covers both.
//
// Threading: one thread drives a plane (UCS_THREAD_MODE_SINGLE). Progress: see Transport.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "net/data/transport.h"

namespace runahead::net {

struct UcxDataPlaneOptions {
  std::string name = "ucx";  // this endpoint, as its peers' logs and errors name it
  std::string transports;    // UCX_TLS for this plane; empty: the environment's or UCX's default
  std::chrono::milliseconds send_timeout{10000};
  // How often UCX checks that idle peers are alive (UCX_KEEPALIVE_INTERVAL); 0: UCX's default.
  std::chrono::milliseconds keepalive_interval{1000};
};

class UcxDataPlane final : public Transport {
 public:
  // Creates the UCP context and worker; fails with a message naming the UCX call and option.
  [[nodiscard]] static Result<std::unique_ptr<UcxDataPlane>> create(UcxDataPlaneOptions options);
  ~UcxDataPlane() override;
  UcxDataPlane(const UcxDataPlane&) = delete;
  UcxDataPlane& operator=(const UcxDataPlane&) = delete;

  TransportCapabilities capabilities() const override;
  std::vector<uint8_t> local_address() const override;
  [[nodiscard]] Status connect(PeerId peer, const std::vector<uint8_t>& address) override;
  void disconnect(PeerId peer) override;

  [[nodiscard]] Result<SendHandle> post_send(PeerId peer, const KvBlockHeader& header,
                                             const void* payload) override;
  SendState check(SendHandle handle, Status* failure = nullptr) override;
  void release(SendHandle handle) override;

  void set_receiver(Resolver resolve, Completion complete) override;
  void set_block_limits(const BlockLimits& limits) override;

  void progress() override;
  int event_fd() const override;
  bool arm() override;

  struct Impl;

 private:
  explicit UcxDataPlane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runahead::net
