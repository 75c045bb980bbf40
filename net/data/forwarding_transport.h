// A transport that hands every call to the one it wraps, and a peer memory that does the same.
// Decorators (direct writes, shaped links, test doubles) derive from them and override only what
// they change, so a virtual added to Transport or PeerMemory reaches the inner one instead of
// silently taking a default.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "net/data/peer_memory.h"
#include "net/data/transport.h"

namespace runahead::net {

class ForwardingTransport : public Transport {
 public:
  explicit ForwardingTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {}

  TransportCapabilities capabilities() const override { return inner_->capabilities(); }
  std::vector<uint8_t> local_address() const override { return inner_->local_address(); }
  Status connect(PeerId peer, const std::vector<uint8_t>& address) override {
    return inner_->connect(peer, address);
  }
  void disconnect(PeerId peer) override { inner_->disconnect(peer); }

  Result<SendHandle> post_send(PeerId peer, const KvBlockHeader& header,
                               const void* payload) override {
    return inner_->post_send(peer, header, payload);
  }
  SendState check(SendHandle handle, Status* failure = nullptr) override {
    return inner_->check(handle, failure);
  }
  void release(SendHandle handle) override { inner_->release(handle); }

  void set_receiver(Resolver resolve, Completion complete) override {
    inner_->set_receiver(std::move(resolve), std::move(complete));
  }
  void set_block_limits(const BlockLimits& limits) override { inner_->set_block_limits(limits); }

  void progress() override { inner_->progress(); }
  int event_fd() const override { return inner_->event_fd(); }
  bool arm() override { return inner_->arm(); }

  PeerMemory* peer_memory() override { return inner_->peer_memory(); }

 protected:
  Transport& inner() const { return *inner_; }

 private:
  std::unique_ptr<Transport> inner_;
};

class ForwardingPeerMemory : public PeerMemory {
 public:
  explicit ForwardingPeerMemory(PeerMemory& inner) : inner_(inner) {}

  bool direct_path(const std::vector<uint8_t>& peer_address) const override {
    return inner_.direct_path(peer_address);
  }
  Result<std::vector<uint8_t>> expose(void* base, size_t bytes,
                                      std::shared_ptr<void> keep_alive) override {
    return inner_.expose(base, bytes, std::move(keep_alive));
  }
  void withdraw(const std::vector<uint8_t>& exposure) override { inner_.withdraw(exposure); }
  Result<uint64_t> open_target(PeerId peer, const std::vector<uint8_t>& exposure) override {
    return inner_.open_target(peer, exposure);
  }
  Result<SendHandle> post_write(uint64_t target, size_t offset, const KvBlockHeader& header,
                                const void* payload) override {
    return inner_.post_write(target, offset, header, payload);
  }
  void close_target(uint64_t target) override { inner_.close_target(target); }

 protected:
  PeerMemory& inner() const { return inner_; }

 private:
  PeerMemory& inner_;
};

}  // namespace runahead::net
