#include "net/data/direct_write_data_plane.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "core/log.h"
#include "net/data/byte_codec.h"
#include "net/data/forwarding_transport.h"
#include "net/data/refusal_log.h"

namespace runahead::net {
namespace {

using Clock = std::chrono::steady_clock;

// The top bit of KvBlockHeader::flags marks a notice travelling in place of a block's payload.
constexpr uint32_t kNoticeFlag = 1u << 31;
constexpr uint64_t kNoticeMagic = 0x5241445752495445;  // "RADWRITE"
constexpr uint8_t kAddressMagic[4] = {'R', 'A', 'D', 'W'};

enum class NoticeKind : uint32_t {
  kWritten = 1,  // a block was written at `offset` of exposure `exposure`
  kClosed = 2,   // the writer unmapped exposure `exposure`
};

struct Notice {
  uint64_t magic = kNoticeMagic;
  uint32_t kind = 0;
  uint32_t reserved = 0;
  uint64_t exposure = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct ParsedAddress {
  std::vector<uint8_t> inner;
  std::vector<uint8_t> identity;
  bool enabled = false;
  bool direct_capable = false;  // the address is one of ours at all
};

ParsedAddress parse_address(const std::vector<uint8_t>& address) {
  ParsedAddress parsed;
  if (address.size() < sizeof(kAddressMagic) ||
      std::memcmp(address.data(), kAddressMagic, sizeof(kAddressMagic)) != 0) {
    parsed.inner = address;  // a plain plane's address: no direct path
    return parsed;
  }
  const std::vector<uint8_t> rest(address.begin() + sizeof(kAddressMagic), address.end());
  ByteReader reader(rest);
  uint8_t enabled = 0;
  if (!reader.read_sized(parsed.inner) || !reader.read_sized(parsed.identity) ||
      !reader.read(enabled) || !reader.at_end()) {
    return ParsedAddress{};
  }
  parsed.enabled = enabled != 0;
  parsed.direct_capable = true;
  return parsed;
}

// Copy completions, reported from whatever thread the copy engine calls back on.
struct CompletionQueue {
  std::mutex mutex;
  std::vector<std::pair<SendHandle, Status>> done;
  int event_fd = -1;

  ~CompletionQueue() {
    if (event_fd >= 0) ::close(event_fd);
  }

  void push(SendHandle handle, Status status) {
    {
      std::lock_guard lock(mutex);
      done.emplace_back(handle, std::move(status));
    }
    const uint64_t one = 1;
    (void)!::write(event_fd, &one, sizeof(one));
  }
};

// The two-sided side wraps the inner transport (addresses, notices among the received blocks,
// handles shared with writes); the one-sided side is the peer memory it offers.
class DirectWriteDataPlane final : public ForwardingTransport, public PeerMemory {
 public:
  DirectWriteDataPlane(std::unique_ptr<Transport> inner, std::unique_ptr<PeerMemoryAccess> memory,
                       DirectWriteOptions options, int epoll_fd,
                       std::shared_ptr<CompletionQueue> completions)
      : ForwardingTransport(std::move(inner)),
        memory_(std::move(memory)),
        options_(std::move(options)),
        epoll_fd_(epoll_fd),
        completions_(std::move(completions)) {
    set_inner_receiver();
  }

  ~DirectWriteDataPlane() override {
    for (auto& [key, mapping] : mappings_) memory_->unmap(mapping.mapped);
    // Copies still queued call back into the completion queue, which outlives this plane.
    ::close(epoll_fd_);
  }

  // --- Transport: every call wraps the inner one ---

  TransportCapabilities capabilities() const override {
    TransportCapabilities capabilities = inner().capabilities();
    if (options_.enabled) capabilities.transport += "+" + memory_->describe();
    return capabilities;
  }

  std::vector<uint8_t> local_address() const override {
    std::vector<uint8_t> address(kAddressMagic, kAddressMagic + sizeof(kAddressMagic));
    append_sized(address, inner().local_address());
    append_sized(address, memory_->identity());
    append(address, static_cast<uint8_t>(options_.enabled ? 1 : 0));
    return address;
  }

  Status connect(PeerId peer, const std::vector<uint8_t>& address) override {
    const ParsedAddress parsed = parse_address(address);
    if (parsed.inner.empty()) {
      return make_error(
          ErrorCode::kInvalidArgument,
          options_.name + ": malformed data-plane address of peer " + std::to_string(peer));
    }
    RUNAHEAD_RETURN_IF_ERROR(inner().connect(peer, parsed.inner));
    peers_[peer] = direct_path(address);
    return Status::ok();
  }

  void disconnect(PeerId peer) override {
    inner().disconnect(peer);
    peers_.erase(peer);
    trim_mappings(peer, 0);
  }

  Result<SendHandle> post_send(PeerId peer, const KvBlockHeader& header,
                               const void* payload) override {
    if ((header.flags & kNoticeFlag) != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        options_.name + ": " + describe(header) + ": flag bit 31 is reserved");
    }
    RUNAHEAD_ASSIGN_OR_RETURN(SendHandle inner_handle, inner().post_send(peer, header, payload));
    const SendHandle handle = next_handle_++;
    Send& send = sends_[handle];
    send.kind = Send::Kind::kInner;
    send.inner = inner_handle;
    return handle;
  }

  SendState check(SendHandle handle, Status* failure) override {
    auto it = sends_.find(handle);
    if (it == sends_.end()) {
      if (failure != nullptr) {
        *failure = make_error(ErrorCode::kNotFound, options_.name + ": no such send");
      }
      return SendState::kFailed;
    }
    Send& send = it->second;
    if (send.failed) {
      if (failure != nullptr) *failure = send.failure;
      return SendState::kFailed;
    }
    if (!send.inner) return SendState::kInFlight;  // a write whose copy has not completed
    return inner().check(*send.inner, failure);
  }

  void release(SendHandle handle) override {
    auto it = sends_.find(handle);
    if (it == sends_.end()) return;
    if (it->second.inner) inner().release(*it->second.inner);
    if (it->second.kind == Send::Kind::kWrite && !it->second.copied) {
      // The copy still runs: its completion finds no send and is dropped; the target stays
      // counted until then.
      orphaned_writes_[handle] = it->second.target;
    }
    sends_.erase(it);
  }

  void set_receiver(Resolver resolve, Completion complete) override {
    resolve_ = std::move(resolve);
    complete_ = std::move(complete);
  }

  void set_block_limits(const BlockLimits& limits) override {
    limits_ = limits;
    // The inner plane also carries notices, whose payload is not tokens * bytes_per_token: the
    // block limits are checked here instead.
    BlockLimits inner_limits = limits;
    inner_limits.bytes_per_token = 0;
    inner().set_block_limits(inner_limits);
  }

  void progress() override {
    uint64_t count = 0;
    (void)!::read(completions_->event_fd, &count, sizeof(count));
    inner().progress();
    std::vector<std::pair<SendHandle, Status>> done;
    {
      std::lock_guard lock(completions_->mutex);
      done.swap(completions_->done);
    }
    for (auto& [handle, status] : done) on_copied(handle, std::move(status));
    poll_own_sends();
    expire_exposures();
  }

  int event_fd() const override { return epoll_fd_; }

  bool arm() override {
    {
      std::lock_guard lock(completions_->mutex);
      if (!completions_->done.empty()) return false;
    }
    return inner().arm();
  }

  PeerMemory* peer_memory() override { return this; }

  // --- PeerMemory ---

  bool direct_path(const std::vector<uint8_t>& peer_address) const override {
    if (!options_.enabled) return false;
    const ParsedAddress parsed = parse_address(peer_address);
    return parsed.direct_capable && parsed.enabled && memory_->reaches(parsed.identity);
  }

  Result<std::vector<uint8_t>> expose(void* base, size_t bytes,
                                      std::shared_ptr<void> keep_alive) override {
    if (!options_.enabled) {
      return make_error(ErrorCode::kUnsupported, options_.name + ": direct writes are off");
    }
    RUNAHEAD_ASSIGN_OR_RETURN(std::vector<uint8_t> handle, memory_->export_handle(base, bytes));
    const uint64_t id = next_exposure_++;
    exposures_[id] = Exposure{static_cast<char*>(base), bytes, std::move(keep_alive)};
    std::vector<uint8_t> out;
    append(out, id);
    append(out, static_cast<uint64_t>(bytes));
    append_sized(out, handle);
    return out;
  }

  void withdraw(const std::vector<uint8_t>& exposure) override {
    uint64_t id = 0;
    ByteReader reader(exposure);
    if (!reader.read(id)) return;
    auto it = exposures_.find(id);
    if (it == exposures_.end()) return;
    it->second.withdrawn = true;
    it->second.withdrawn_at = Clock::now();
    if (it->second.writer_closed) exposures_.erase(it);
  }

  Result<uint64_t> open_target(PeerId peer, const std::vector<uint8_t>& exposure) override {
    auto known = peers_.find(peer);
    if (known == peers_.end() || !known->second) {
      return make_error(ErrorCode::kUnsupported, options_.name + ": peer " + std::to_string(peer) +
                                                     " cannot be written to directly");
    }
    ByteReader reader(exposure);
    uint64_t id = 0;
    uint64_t bytes = 0;
    std::vector<uint8_t> handle;
    if (!reader.read(id) || !reader.read(bytes) || !reader.read_sized(handle) || !reader.at_end()) {
      return make_error(ErrorCode::kProtocol,
                        options_.name + ": malformed exposure from peer " + std::to_string(peer));
    }
    // A receiver that reuses its cache exposes the same memory again: its mapping is kept.
    const MappingKey key{peer, handle};
    auto mapping = mappings_.find(key);
    if (mapping == mappings_.end()) {
      RUNAHEAD_ASSIGN_OR_RETURN(void* mapped, memory_->map(handle));
      mapping = mappings_.emplace(key, Mapping{static_cast<char*>(mapped), 0, 0}).first;
    }
    ++mapping->second.users;
    const uint64_t target = next_target_++;
    targets_[target] = Target{peer, mapping->second.mapped, bytes, id, 0, false, key};
    return target;
  }

  Result<SendHandle> post_write(uint64_t target_id, size_t offset, const KvBlockHeader& header,
                                const void* payload) override {
    auto it = targets_.find(target_id);
    if (it == targets_.end() || it->second.closing) {
      return make_error(ErrorCode::kNotFound, options_.name + ": " + describe(header) +
                                                  ": no open target " + std::to_string(target_id));
    }
    Target& target = it->second;
    if ((header.flags & kNoticeFlag) != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        options_.name + ": " + describe(header) + ": flag bit 31 is reserved");
    }
    RUNAHEAD_RETURN_IF_ERROR(validate_block_header(header, limits_, header.payload_bytes));
    if (offset > target.bytes || header.payload_bytes > target.bytes - offset) {
      return make_error(ErrorCode::kOutOfRange, options_.name + ": " + describe(header) +
                                                    " at offset " + std::to_string(offset) +
                                                    " does not fit the peer's " +
                                                    std::to_string(target.bytes) + "-byte region");
    }
    const SendHandle handle = next_handle_++;
    Send& send = sends_[handle];
    send.kind = Send::Kind::kWrite;
    send.peer = target.peer;
    send.target = target_id;
    send.header = header;
    send.notice.kind = static_cast<uint32_t>(NoticeKind::kWritten);
    send.notice.exposure = target.exposure;
    send.notice.offset = offset;
    send.notice.bytes = header.payload_bytes;
    Status started = memory_->copy_async(
        target.mapped + offset, payload, header.payload_bytes,
        [queue = completions_, handle](Status status) { queue->push(handle, std::move(status)); });
    if (!started.is_ok()) {
      sends_.erase(handle);
      return make_error(started.code(),
                        options_.name + ": " + describe(header) + ": " + started.message());
    }
    ++target.writes_in_flight;
    return handle;
  }

  void close_target(uint64_t target_id) override {
    auto it = targets_.find(target_id);
    if (it == targets_.end()) return;
    it->second.closing = true;
    if (it->second.writes_in_flight == 0) finish_close(it);
  }

 private:
  struct Send {
    enum class Kind : uint8_t { kInner, kWrite };
    Kind kind = Kind::kInner;
    std::optional<SendHandle> inner;  // the block (kInner) or its notice (kWrite, once copied)
    bool copied = false;
    bool failed = false;
    Status failure;
    PeerId peer = 0;
    uint64_t target = 0;
    KvBlockHeader header;
    Notice notice;  // stays here while the inner plane sends it
  };
  using MappingKey = std::pair<PeerId, std::vector<uint8_t>>;  // peer, memory handle
  struct Mapping {
    char* mapped = nullptr;
    size_t users = 0;        // open targets
    uint64_t last_used = 0;  // for evicting the least recently used idle mappings
  };
  struct Target {
    PeerId peer = 0;
    char* mapped = nullptr;
    uint64_t bytes = 0;
    uint64_t exposure = 0;
    size_t writes_in_flight = 0;
    bool closing = false;
    MappingKey mapping;
  };
  struct Exposure {
    char* base = nullptr;
    size_t bytes = 0;
    std::shared_ptr<void> keep_alive;
    bool withdrawn = false;
    bool writer_closed = false;
    Clock::time_point withdrawn_at{};
  };
  // Notices in flight are told apart by their whole header, the sender and capability included:
  // a forged notice (anyone may send one) never takes the place of the real one.
  using NoticeKey =
      std::tuple<uint64_t, uint32_t, int64_t, int64_t, uint64_t, std::array<uint8_t, 16>>;

  static NoticeKey notice_key(const KvBlockHeader& header) {
    return {header.request_id, header.layer,         header.token_begin,
            header.token_end,  header.sender_worker, header.capability.bytes};
  }

  void set_inner_receiver() {
    inner().set_receiver(
        [this](const KvBlockHeader& header) -> Result<void*> {
          if ((header.flags & kNoticeFlag) != 0) {
            if (header.payload_bytes != sizeof(Notice)) {
              return make_error(ErrorCode::kProtocol,
                                options_.name + ": " + describe(header) + ": not a notice");
            }
            auto& slot = arriving_notices_[notice_key(header)];
            if (slot) {
              return make_error(ErrorCode::kProtocol,
                                options_.name + ": " + describe(header) + ": duplicate notice");
            }
            slot = std::make_unique<Notice>();
            return static_cast<void*>(slot.get());
          }
          RUNAHEAD_RETURN_IF_ERROR(validate_block_header(header, limits_, header.payload_bytes));
          if (!resolve_) {
            return make_error(ErrorCode::kUnavailable, options_.name + ": no receiver");
          }
          return resolve_(header);
        },
        [this](const KvBlockHeader& header, Status status) {
          if ((header.flags & kNoticeFlag) == 0) {
            if (complete_) complete_(header, std::move(status));
            return;
          }
          auto it = arriving_notices_.find(notice_key(header));
          if (it == arriving_notices_.end()) return;
          std::unique_ptr<Notice> notice = std::move(it->second);
          arriving_notices_.erase(it);
          if (!status.is_ok()) {
            logger("data_plane")
                ->warn("{}: notice {} lost: {}", options_.name, describe(header), status.message());
            return;
          }
          on_notice(header, *notice);
        });
  }

  void on_notice(KvBlockHeader header, const Notice& notice) {
    auto log = logger("data_plane");
    if (notice.magic != kNoticeMagic) {
      log->warn("{}: {}: malformed notice dropped", options_.name, describe(header));
      return;
    }
    auto exposure = exposures_.find(notice.exposure);
    if (notice.kind == static_cast<uint32_t>(NoticeKind::kClosed)) {
      if (exposure == exposures_.end()) return;
      exposure->second.writer_closed = true;
      if (exposure->second.withdrawn) exposures_.erase(exposure);
      return;
    }
    header.flags &= ~kNoticeFlag;
    header.payload_bytes = notice.bytes;
    if (notice.kind != static_cast<uint32_t>(NoticeKind::kWritten) ||
        exposure == exposures_.end()) {
      log->warn("{}: {}: notice for unknown exposure {} dropped", options_.name, describe(header),
                notice.exposure);
      return;
    }
    const Exposure& region = exposure->second;
    if (notice.offset > region.bytes || notice.bytes > region.bytes - notice.offset) {
      log->warn("{}: {}: written outside the exposed region; dropped", options_.name,
                describe(header));
      return;
    }
    if (Status valid = validate_block_header(header, limits_, notice.bytes); !valid.is_ok()) {
      log->warn("{}: {}", options_.name, valid.message());
      return;
    }
    if (!resolve_ || !complete_) return;
    auto destination = resolve_(header);
    if (!destination) {
      refusals_.refused("worker " + std::to_string(header.sender_worker) + " (a write notice)",
                        destination.status());
      return;
    }
    if (*destination != region.base + notice.offset) {
      complete_(header,
                make_error(ErrorCode::kProtocol,
                           options_.name + ": " + describe(header) + " was written at offset " +
                               std::to_string(notice.offset) + ", not where it belongs"));
      return;
    }
    complete_(header, Status::ok());
  }

  void on_copied(SendHandle handle, Status status) {
    uint64_t target_id = 0;
    auto orphan = orphaned_writes_.find(handle);
    auto it = sends_.find(handle);
    if (orphan != orphaned_writes_.end()) {
      target_id = orphan->second;
      orphaned_writes_.erase(orphan);
    } else if (it != sends_.end()) {
      target_id = it->second.target;
    }
    if (auto target = targets_.find(target_id); target != targets_.end()) {
      if (--target->second.writes_in_flight == 0 && target->second.closing) finish_close(target);
    }
    if (it == sends_.end()) return;
    Send& send = it->second;
    send.copied = true;
    if (!status.is_ok()) {
      send.failed = true;
      send.failure = std::move(status);
      return;
    }
    KvBlockHeader notice_header = send.header;
    notice_header.flags |= kNoticeFlag;
    notice_header.payload_bytes = sizeof(Notice);
    auto posted = inner().post_send(send.peer, notice_header, &send.notice);
    if (!posted) {
      send.failed = true;
      send.failure = posted.status();
      return;
    }
    send.inner = *posted;
  }

  void finish_close(std::map<uint64_t, Target>::iterator it) {
    Target& target = it->second;
    if (auto mapping = mappings_.find(target.mapping); mapping != mappings_.end()) {
      --mapping->second.users;
      mapping->second.last_used = ++use_clock_;
    }
    trim_mappings(target.peer, kIdleMappingsPerPeer);
    auto notice = std::make_unique<Notice>();
    notice->kind = static_cast<uint32_t>(NoticeKind::kClosed);
    notice->exposure = target.exposure;
    KvBlockHeader header;
    // A closed notice names no request: the exposure id says which region is let go. The
    // receiver keys notices in flight by their header, and several writers (fan-out) close the
    // same exposure at once: the header carries the exposure and a number no other close
    // notice of any writer uses.
    header.request_id = target.exposure;
    header.layer = 0;
    header.token_begin = static_cast<int64_t>(close_salt_ + ++closes_sent_);
    header.token_end = header.token_begin + 1;
    header.flags = kNoticeFlag;
    header.payload_bytes = sizeof(Notice);
    auto posted = inner().post_send(target.peer, header, notice.get());
    if (posted) own_sends_.emplace_back(*posted, std::move(notice));
    targets_.erase(it);
  }

  // Unmaps the least recently used mappings of `peer` that no target uses, keeping `keep`.
  void trim_mappings(PeerId peer, size_t keep) {
    std::vector<std::map<MappingKey, Mapping>::iterator> idle;
    for (auto it = mappings_.begin(); it != mappings_.end(); ++it) {
      if (it->first.first == peer && it->second.users == 0) idle.push_back(it);
    }
    if (idle.size() <= keep) return;
    std::sort(idle.begin(), idle.end(),
              [](auto a, auto b) { return a->second.last_used < b->second.last_used; });
    for (size_t i = 0; i + keep < idle.size(); ++i) {
      memory_->unmap(idle[i]->second.mapped);
      mappings_.erase(idle[i]);
    }
  }

  void poll_own_sends() {
    for (auto it = own_sends_.begin(); it != own_sends_.end();) {
      if (inner().check(it->first) == SendState::kInFlight) {
        ++it;
        continue;
      }
      inner().release(it->first);
      it = own_sends_.erase(it);
    }
  }

  void expire_exposures() {
    const auto now = Clock::now();
    for (auto it = exposures_.begin(); it != exposures_.end();) {
      const Exposure& exposure = it->second;
      if (exposure.withdrawn && now - exposure.withdrawn_at > options_.withdraw_grace) {
        logger("data_plane")
            ->warn("{}: exposure {} released without word from its writer", options_.name,
                   it->first);
        it = exposures_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::unique_ptr<PeerMemoryAccess> memory_;
  DirectWriteOptions options_;
  int epoll_fd_ = -1;
  std::shared_ptr<CompletionQueue> completions_;

  Resolver resolve_;
  Completion complete_;
  BlockLimits limits_;
  RefusalLog refusals_{"direct " + options_.name};
  std::map<PeerId, bool> peers_;  // connected peers: whether the path to each is direct
  std::map<SendHandle, Send> sends_;
  std::map<SendHandle, uint64_t> orphaned_writes_;  // released while copying: their target
  SendHandle next_handle_ = 1;
  std::map<uint64_t, Target> targets_;
  // A receiver's reused caches keep their mappings here between requests (mapping is a driver
  // call that stalls the process's other GPU work for milliseconds).
  static constexpr size_t kIdleMappingsPerPeer = 4;
  std::map<MappingKey, Mapping> mappings_;
  uint64_t use_clock_ = 0;
  // Close notices' token ranges: a random start per writer (below 2^61, so that the count never
  // overflows into negative ranges), then one more per notice.
  const uint64_t close_salt_ = (std::random_device{}() % (uint64_t{1} << 29)) << 32;
  uint64_t closes_sent_ = 0;
  uint64_t next_target_ = 1;
  std::map<uint64_t, Exposure> exposures_;
  uint64_t next_exposure_ = 1;
  std::map<NoticeKey, std::unique_ptr<Notice>> arriving_notices_;
  std::vector<std::pair<SendHandle, std::unique_ptr<Notice>>> own_sends_;
};

}  // namespace

Result<std::unique_ptr<Transport>> make_direct_write_data_plane(
    std::unique_ptr<Transport> inner, std::unique_ptr<PeerMemoryAccess> memory,
    DirectWriteOptions options) {
  auto completions = std::make_shared<CompletionQueue>();
  completions->event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (completions->event_fd < 0 || epoll_fd < 0) {
    if (epoll_fd >= 0) ::close(epoll_fd);
    return make_error(ErrorCode::kInternal,
                      options.name + ": cannot create the event descriptors of direct writes");
  }
  // Readable when either the inner plane or a copy completion has work for progress().
  for (int fd : {inner->event_fd(), completions->event_fd}) {
    if (fd < 0) continue;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      ::close(epoll_fd);
      return make_error(ErrorCode::kInternal,
                        options.name + ": cannot watch the inner data plane's events");
    }
  }
  return std::unique_ptr<Transport>(new DirectWriteDataPlane(
      std::move(inner), std::move(memory), std::move(options), epoll_fd, std::move(completions)));
}

}  // namespace runahead::net
