#include "net/data/loopback_data_plane.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "core/log.h"

namespace runahead::net {

struct LoopbackDataPlane::Send {
  std::string target;  // "peer 3 (worker-1)", as the sender knows it
  SendState state = SendState::kInFlight;
  Status failure;
  std::weak_ptr<Endpoint> sender;
};

namespace {

struct Delivery {
  std::string from;  // the sender's name
  KvBlockHeader header;
  const void* payload = nullptr;
  std::shared_ptr<LoopbackDataPlane::Send> send;
};

void signal(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(fd, &one, sizeof(one));
}

void drain(int fd) {
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t got = ::read(fd, &count, sizeof(count));
}

}  // namespace

struct LoopbackDataPlane::Endpoint {
  uint64_t id = 0;
  std::string name;
  int event_fd = -1;
  // Guarded by the hub's mutex:
  std::deque<Delivery> inbox;
  bool sends_completed = false;  // a send of this endpoint completed since its last progress()
};

class LoopbackHub {
 public:
  std::mutex mutex;
  std::unordered_map<uint64_t, std::weak_ptr<LoopbackDataPlane::Endpoint>> endpoints;
  uint64_t next_id = 1;

  // Under `mutex`: ends a send and wakes its sender.
  static void finish(LoopbackDataPlane::Send& send, Status failure) {
    send.state = failure.is_ok() ? SendState::kDone : SendState::kFailed;
    send.failure = std::move(failure);
    if (auto sender = send.sender.lock()) {
      sender->sends_completed = true;
      signal(sender->event_fd);
    }
  }
};

std::shared_ptr<LoopbackHub> make_loopback_hub() {
  return std::make_shared<LoopbackHub>();
}

Result<std::unique_ptr<LoopbackDataPlane>> LoopbackDataPlane::create(
    std::shared_ptr<LoopbackHub> hub, LoopbackOptions options) {
  if (!hub) return make_error(ErrorCode::kInvalidArgument, "loopback data plane: no hub given");
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kResourceExhausted,
                      fmt::format("loopback data plane {}: eventfd failed: {}", options.name,
                                  std::strerror(errno)));
  }
  auto endpoint = std::make_shared<Endpoint>();
  endpoint->name = std::move(options.name);
  endpoint->event_fd = fd;
  {
    std::lock_guard lock(hub->mutex);
    endpoint->id = hub->next_id++;
    hub->endpoints[endpoint->id] = endpoint;
  }
  return std::unique_ptr<LoopbackDataPlane>(new LoopbackDataPlane(std::move(hub), endpoint));
}

LoopbackDataPlane::LoopbackDataPlane(std::shared_ptr<LoopbackHub> hub,
                                     std::shared_ptr<Endpoint> endpoint)
    : hub_(std::move(hub)),
      endpoint_(std::move(endpoint)),
      refusals_("loopback " + endpoint_->name) {}

LoopbackDataPlane::~LoopbackDataPlane() {
  std::deque<Delivery> orphaned;
  {
    std::lock_guard lock(hub_->mutex);
    hub_->endpoints.erase(endpoint_->id);
    orphaned.swap(endpoint_->inbox);
    for (Delivery& delivery : orphaned) {
      LoopbackHub::finish(
          *delivery.send,
          make_error(ErrorCode::kUnavailable,
                     fmt::format("send of {} to {} failed: the peer closed",
                                 describe(delivery.header), delivery.send->target)));
    }
  }
  ::close(endpoint_->event_fd);
}

TransportCapabilities LoopbackDataPlane::capabilities() const {
  return TransportCapabilities{
      .transport = "loopback", .device_memory = false, .zero_copy_receive = false};
}

std::vector<uint8_t> LoopbackDataPlane::local_address() const {
  std::vector<uint8_t> address(sizeof(uint64_t));
  std::memcpy(address.data(), &endpoint_->id, sizeof(uint64_t));
  return address;
}

Status LoopbackDataPlane::connect(PeerId peer, const std::vector<uint8_t>& address) {
  if (address.size() != sizeof(uint64_t)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("loopback {}: address of peer {} has {} bytes, expected {}",
                                  endpoint_->name, peer, address.size(), sizeof(uint64_t)));
  }
  uint64_t id = 0;
  std::memcpy(&id, address.data(), sizeof(id));
  {
    std::lock_guard lock(hub_->mutex);
    if (!hub_->endpoints.contains(id)) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("loopback {}: peer {} (endpoint {}) is not in the hub",
                                    endpoint_->name, peer, id));
    }
  }
  if (peers_.contains(peer)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("loopback {}: peer {} is already connected", endpoint_->name, peer));
  }
  peers_[peer] = id;
  return Status::ok();
}

void LoopbackDataPlane::disconnect(PeerId peer) {
  peers_.erase(peer);
}

Result<SendHandle> LoopbackDataPlane::post_send(PeerId peer, const KvBlockHeader& header,
                                                const void* payload) {
  const auto found = peers_.find(peer);
  if (found == peers_.end()) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("loopback {}: send of {} to peer {}: not connected",
                                  endpoint_->name, describe(header), peer));
  }
  RUNAHEAD_RETURN_IF_ERROR(validate_block_header(header, BlockLimits{}, header.payload_bytes));
  if (payload == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("loopback {}: send of {} to peer {}: no payload", endpoint_->name,
                                  describe(header), peer));
  }
  std::lock_guard lock(hub_->mutex);
  const auto target = hub_->endpoints.find(found->second);
  std::shared_ptr<Endpoint> receiver =
      target == hub_->endpoints.end() ? nullptr : target->second.lock();
  if (!receiver) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("loopback {}: send of {} to peer {}: the peer closed",
                                  endpoint_->name, describe(header), peer));
  }
  auto send = std::make_shared<Send>();
  send->target = fmt::format("peer {} ({})", peer, receiver->name);
  send->sender = endpoint_;
  receiver->inbox.push_back(
      Delivery{.from = endpoint_->name, .header = header, .payload = payload, .send = send});
  signal(receiver->event_fd);
  const SendHandle handle = next_handle_++;
  sends_[handle] = std::move(send);
  return handle;
}

SendState LoopbackDataPlane::check(SendHandle handle, Status* failure) {
  const auto found = sends_.find(handle);
  std::lock_guard lock(hub_->mutex);
  if (found == sends_.end()) {
    if (failure) {
      *failure = make_error(ErrorCode::kNotFound, fmt::format("loopback {}: unknown send handle {}",
                                                              endpoint_->name, handle));
    }
    return SendState::kFailed;
  }
  const Send& send = *found->second;
  if (failure && send.state == SendState::kFailed) *failure = send.failure;
  return send.state;
}

void LoopbackDataPlane::release(SendHandle handle) {
  sends_.erase(handle);
}

void LoopbackDataPlane::set_receiver(Resolver resolve, Completion complete) {
  resolve_ = std::move(resolve);
  complete_ = std::move(complete);
}

void LoopbackDataPlane::set_block_limits(const BlockLimits& limits) {
  limits_ = limits;
}

void LoopbackDataPlane::progress() {
  std::deque<Delivery> arrived;
  {
    std::lock_guard lock(hub_->mutex);
    arrived.swap(endpoint_->inbox);
    endpoint_->sends_completed = false;
  }
  for (Delivery& delivery : arrived) {
    const KvBlockHeader& header = delivery.header;
    Status accepted = validate_block_header(header, limits_, header.payload_bytes);
    void* destination = nullptr;
    if (accepted.is_ok()) {
      if (!resolve_) {
        accepted = make_error(ErrorCode::kUnavailable,
                              fmt::format("K/V block {}: no receiver set", describe(header)));
      } else if (Result<void*> resolved = resolve_(header); !resolved.is_ok()) {
        accepted = resolved.status();
      } else if (*resolved == nullptr) {
        accepted =
            make_error(ErrorCode::kInternal,
                       fmt::format("K/V block {}: resolver gave no destination", describe(header)));
      } else {
        destination = *resolved;
      }
    }
    if (!accepted.is_ok()) {
      refusals_.refused(delivery.from, accepted);
      std::lock_guard lock(hub_->mutex);
      LoopbackHub::finish(
          *delivery.send,
          make_error(accepted.code(), fmt::format("send of {} to {} refused: {}", describe(header),
                                                  delivery.send->target, accepted.message())));
      continue;
    }
    std::memcpy(destination, delivery.payload, header.payload_bytes);
    {
      std::lock_guard lock(hub_->mutex);
      LoopbackHub::finish(*delivery.send, Status::ok());
    }
    if (complete_) complete_(header, Status::ok());
  }
}

int LoopbackDataPlane::event_fd() const {
  return endpoint_->event_fd;
}

bool LoopbackDataPlane::arm() {
  std::lock_guard lock(hub_->mutex);
  if (!endpoint_->inbox.empty() || endpoint_->sends_completed) return false;
  drain(endpoint_->event_fd);
  // A signal that raced with the drain is caught by the check above on the next arm().
  return endpoint_->inbox.empty();
}

}  // namespace runahead::net
