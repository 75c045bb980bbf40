// An in-process data plane for unit tests: endpoints that share a hub exchange blocks by memcpy.
//
// A post_send() queues the block at the receiving endpoint; the receiver's progress() validates,
// resolves and copies it, then completes the send. Destroying an endpoint fails the sends queued
// at it and every later send to it, as a dead peer would. The hub is thread-safe, so endpoints
// may be driven from different threads (each endpoint still from one thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/data/refusal_log.h"
#include "net/data/transport.h"

namespace runahead::net {

class LoopbackHub;

struct LoopbackOptions {
  std::string name = "loopback";  // shows in the logs and errors of its peers
};

class LoopbackDataPlane final : public Transport {
 public:
  [[nodiscard]] static Result<std::unique_ptr<LoopbackDataPlane>> create(
      std::shared_ptr<LoopbackHub> hub, LoopbackOptions options = {});
  ~LoopbackDataPlane() override;
  LoopbackDataPlane(const LoopbackDataPlane&) = delete;
  LoopbackDataPlane& operator=(const LoopbackDataPlane&) = delete;

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

  // Shared with the hub; public so that the hub's bookkeeping can name it.
  struct Send;
  struct Endpoint;

 private:
  LoopbackDataPlane(std::shared_ptr<LoopbackHub> hub, std::shared_ptr<Endpoint> endpoint);

  std::shared_ptr<LoopbackHub> hub_;
  std::shared_ptr<Endpoint> endpoint_;
  std::unordered_map<PeerId, uint64_t> peers_;  // peer -> endpoint id in the hub
  std::unordered_map<SendHandle, std::shared_ptr<Send>> sends_;
  SendHandle next_handle_ = 1;
  Resolver resolve_;
  Completion complete_;
  BlockLimits limits_;
  RefusalLog refusals_;
};

// Creates the hub that endpoints of one test share.
std::shared_ptr<LoopbackHub> make_loopback_hub();

}  // namespace runahead::net
