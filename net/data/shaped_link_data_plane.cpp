#include "net/data/shaped_link_data_plane.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "net/data/forwarding_transport.h"

namespace runahead::net {
namespace {

using Clock = std::chrono::steady_clock;

class ShapedLinkDataPlane final : public ForwardingTransport {
 public:
  ShapedLinkDataPlane(std::unique_ptr<Transport> wrapped, LinkShape shape, int epoll_fd,
                      int timer_fd)
      : ForwardingTransport(std::move(wrapped)),
        shape_(shape),
        epoll_fd_(epoll_fd),
        timer_fd_(timer_fd),
        random_(shape.seed) {
    if (PeerMemory* memory = inner().peer_memory()) writes_.emplace(*this, *memory);
  }

  ~ShapedLinkDataPlane() override {
    ::close(timer_fd_);
    ::close(epoll_fd_);
  }

  TransportCapabilities capabilities() const override {
    TransportCapabilities capabilities = inner().capabilities();
    capabilities.transport += "+shaped";
    return capabilities;
  }

  Result<SendHandle> post_send(PeerId peer, const KvBlockHeader& header,
                               const void* payload) override {
    // Refuse at once what the inner plane would refuse at once (unknown peer, bad header):
    // only well-formed sends wait.
    RUNAHEAD_RETURN_IF_ERROR(validate_block_header(header, BlockLimits{}, header.payload_bytes));
    Pending pending;
    pending.peer = peer;
    pending.header = header;
    pending.payload = payload;
    return enqueue(std::move(pending));
  }

  SendState check(SendHandle handle, Status* failure) override {
    auto it = sends_.find(handle);
    if (it == sends_.end()) {
      if (failure != nullptr) *failure = make_error(ErrorCode::kNotFound, "no such send");
      return SendState::kFailed;
    }
    if (it->second.failure) {
      if (failure != nullptr) *failure = *it->second.failure;
      return SendState::kFailed;
    }
    if (!it->second.inner) return SendState::kInFlight;  // still waiting for the link
    return inner().check(*it->second.inner, failure);
  }

  void release(SendHandle handle) override {
    auto it = sends_.find(handle);
    if (it == sends_.end()) return;
    if (it->second.inner) inner().release(*it->second.inner);
    sends_.erase(it);  // a queued one is dropped when its turn comes
  }

  void progress() override {
    uint64_t expirations = 0;
    (void)!::read(timer_fd_, &expirations, sizeof(expirations));
    const auto now = Clock::now();
    while (!queue_.empty() && queue_.front().release_at <= now) {
      Pending pending = std::move(queue_.front());
      queue_.pop_front();
      start(pending);
    }
    arm_timer();
    inner().progress();
  }

  int event_fd() const override { return epoll_fd_; }
  bool arm() override {
    if (!queue_.empty() && queue_.front().release_at <= Clock::now()) return false;
    return inner().arm();
  }

  PeerMemory* peer_memory() override { return writes_ ? &*writes_ : nullptr; }

 private:
  // The inner transport's direct writes, queued on the same link as the sends.
  class ShapedWrites final : public ForwardingPeerMemory {
   public:
    ShapedWrites(ShapedLinkDataPlane& link, PeerMemory& inner)
        : ForwardingPeerMemory(inner), link_(link) {}
    Result<SendHandle> post_write(uint64_t target, size_t offset, const KvBlockHeader& header,
                                  const void* payload) override {
      return link_.post_write(target, offset, header, payload);
    }
    void close_target(uint64_t target) override { link_.close_target(target); }

   private:
    ShapedLinkDataPlane& link_;
  };

  Result<SendHandle> post_write(uint64_t target, size_t offset, const KvBlockHeader& header,
                                const void* payload) {
    RUNAHEAD_RETURN_IF_ERROR(validate_block_header(header, BlockLimits{}, header.payload_bytes));
    ++queued_writes_[target];
    Pending pending;
    pending.header = header;
    pending.payload = payload;
    pending.target = target;
    pending.offset = offset;
    return enqueue(std::move(pending));
  }

  void close_target(uint64_t target) {
    if (queued_writes_[target] > 0) {
      closing_.insert(target);  // after its last queued write is posted
      return;
    }
    queued_writes_.erase(target);
    inner().peer_memory()->close_target(target);
  }

  struct Pending {
    PeerId peer = 0;
    KvBlockHeader header;
    const void* payload = nullptr;
    std::optional<uint64_t> target;  // a direct write
    size_t offset = 0;
    SendHandle handle = 0;
    Clock::time_point release_at{};
  };
  struct Send {
    std::optional<SendHandle> inner;
    std::optional<Status> failure;
  };

  Result<SendHandle> enqueue(Pending pending) {
    const auto now = Clock::now();
    // The link carries one block at a time at the capped rate.
    auto busy = std::chrono::nanoseconds(0);
    if (shape_.bytes_per_second > 0.0) {
      busy = std::chrono::nanoseconds(static_cast<int64_t>(
          1e9 * static_cast<double>(pending.header.payload_bytes) / shape_.bytes_per_second));
    }
    link_free_at_ = std::max(link_free_at_, now) + busy;
    auto jitter = std::chrono::microseconds(0);
    if (shape_.max_jitter.count() > 0) {
      std::uniform_int_distribution<int64_t> spread(0, shape_.max_jitter.count());
      jitter = std::chrono::microseconds(spread(random_));
    }
    pending.release_at = std::max(link_free_at_ + jitter, last_release_);
    last_release_ = pending.release_at;  // blocks keep their order
    pending.handle = next_handle_++;
    sends_[pending.handle] = Send{};
    const SendHandle handle = pending.handle;
    queue_.push_back(std::move(pending));
    arm_timer();
    return handle;
  }

  void start(const Pending& pending) {
    if (pending.target) finish_queued_write(*pending.target);
    auto it = sends_.find(pending.handle);
    if (it == sends_.end()) return;  // released while it waited
    Result<SendHandle> posted =
        pending.target ? inner().peer_memory()->post_write(*pending.target, pending.offset,
                                                           pending.header, pending.payload)
                       : inner().post_send(pending.peer, pending.header, pending.payload);
    if (posted) {
      it->second.inner = *posted;
    } else {
      it->second.failure = posted.status();
    }
    if (pending.target && closing_.count(*pending.target) > 0 &&
        queued_writes_[*pending.target] == 0) {
      closing_.erase(*pending.target);
      queued_writes_.erase(*pending.target);
      inner().peer_memory()->close_target(*pending.target);
    }
  }

  void finish_queued_write(uint64_t target) {
    auto it = queued_writes_.find(target);
    if (it != queued_writes_.end() && it->second > 0) --it->second;
  }

  // One-shot timer at the next release (disarmed when nothing waits).
  void arm_timer() {
    itimerspec spec{};
    if (!queue_.empty()) {
      const auto wait = std::max(std::chrono::nanoseconds(1000),
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     queue_.front().release_at - Clock::now()));
      spec.it_value.tv_sec = static_cast<time_t>(wait.count() / 1000000000);
      spec.it_value.tv_nsec = static_cast<long>(wait.count() % 1000000000);
    }
    ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
  }

  LinkShape shape_;
  int epoll_fd_;
  int timer_fd_;
  std::mt19937_64 random_;
  std::deque<Pending> queue_;
  std::map<SendHandle, Send> sends_;
  std::map<uint64_t, size_t> queued_writes_;  // per direct-write target
  std::set<uint64_t> closing_;
  std::optional<ShapedWrites> writes_;  // where the inner transport offers peer memory
  SendHandle next_handle_ = 1;
  Clock::time_point link_free_at_{};
  Clock::time_point last_release_{};
};

}  // namespace

Result<std::unique_ptr<Transport>> make_shaped_link_data_plane(std::unique_ptr<Transport> inner,
                                                               LinkShape shape) {
  const int timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (timer_fd < 0 || epoll_fd < 0) {
    if (timer_fd >= 0) ::close(timer_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
    return make_error(ErrorCode::kInternal, "cannot create the timer of a shaped link");
  }
  for (int fd : {inner->event_fd(), timer_fd}) {
    if (fd < 0) continue;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      ::close(timer_fd);
      ::close(epoll_fd);
      return make_error(ErrorCode::kInternal, "cannot watch the inner data plane's events");
    }
  }
  return std::unique_ptr<Transport>(
      new ShapedLinkDataPlane(std::move(inner), shape, epoll_fd, timer_fd));
}

}  // namespace runahead::net
