#include "actors/slice_outbound.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <utility>

#include "actors/host_staging.h"
#include "actors/kv_target.h"
#include "actors/slice_state.h"
#include "net/data/peer_memory.h"

namespace runahead {
namespace {

class NoSuccessor final : public SliceOutbound {
 public:
  Status own_rows_computed(int /*layer*/) override { return Status::ok(); }
  Status prefix_complete(int /*layer*/) override { return Status::ok(); }
  void prefix_landed(int /*layer*/, int64_t /*from*/, int64_t /*to*/) override {}
  void release(const std::vector<uint8_t>& /*successor_kv_target*/, bool /*fan_out*/,
               const std::vector<std::vector<uint8_t>>& /*later_kv_targets*/) override {}
  bool poll() override { return true; }
  void finish() override {}
  bool all_sent_locked() const override { return true; }
  std::string progress_locked() const override { return "0 of 0"; }
};

// What every way of sending shares: blocks held until the successor is ready, the sends in
// flight, and the count of what was posted. By default blocks are read from the cache and sent
// to the successor.
class BlockSender : public SliceOutbound {
 public:
  BlockSender(SliceState& state, KvMemory reads_from, KvMemory prefix_lands_in, bool hold)
      : state_(state), cut_through_(reads_from == prefix_lands_in), holding_(hold) {}

  Status own_rows_computed(int layer) override {
    RUNAHEAD_RETURN_IF_ERROR(state_.transformer.backend().synchronize());
    post_later(layer, state_.plan.begin, state_.plan.end);
    return Status::ok();
  }

  Status prefix_complete(int layer) override {
    if (!cut_through_) post_later(layer, 0, state_.plan.begin);
    return Status::ok();
  }

  void prefix_landed(int layer, int64_t from, int64_t to) override {
    // Cut-through: the successor needs the whole prefix, so pass the block on right away.
    if (cut_through_) send(layer, from, to);
  }

  void release(const std::vector<uint8_t>& successor_kv_target, bool fan_out,
               const std::vector<std::vector<uint8_t>>& later_kv_targets) override {
    if (!released_) {
      released_ = true;
      if (!open(successor_kv_target, fan_out, later_kv_targets)) return;
    }
    holding_ = false;
    std::vector<HeldBlock> held;
    held.swap(held_);
    for (const HeldBlock& block : held) send(block.layer, block.from, block.to);
  }

  bool poll() override;
  void finish() override {}

  bool all_sent_locked() const override {
    const SlicePlan& plan = state_.plan;
    const auto layers = static_cast<int64_t>(state_.transformer.config().n_layers);
    return own_rows_posted_ == layers * (plan.end - plan.begin) &&
           forwarded_rows_ == (forwards_prefix() ? layers * plan.begin : 0) &&
           completed_ == posted_;
  }

  std::string progress_locked() const override {
    return std::to_string(completed_) + " of " + std::to_string(posted_);
  }

 protected:
  // The successor is ready: opens what the sends need; false where the run failed instead.
  virtual bool open(const std::vector<uint8_t>& /*successor_kv_target*/, bool fan_out,
                    const std::vector<std::vector<uint8_t>>& /*later_kv_targets*/) {
    if (!fan_out) return true;
    state_.fail(make_error(
        ErrorCode::kProtocol,
        state_.request_name() + ": fan-out asked of a worker that does not write directly"));
    return false;
  }
  // Where rows [from, to) of `layer` leave from.
  virtual const void* rows(int layer, int64_t from, int64_t to) const {
    return state_.cache->block(layer, from, to).data;
  }
  // Hands one block to the transport.
  virtual std::vector<Result<net::SendHandle>> post(const net::KvBlockHeader& header,
                                                    const void* payload) {
    return {state_.transport.post_send(*state_.plan.successor, header, payload)};
  }
  // Whether prefix blocks are passed on at all.
  virtual bool forwards_prefix() const { return true; }

  // Posts rows [from, to) of `layer`, or holds them until release() (I/O thread).
  void send(int layer, int64_t from, int64_t to);
  // The same, from any thread.
  void post_later(int layer, int64_t from, int64_t to) {
    state_.io_post([this, layer, from, to] { send(layer, from, to); });
  }

  SliceState& state_;
  const bool cut_through_;  // prefix blocks leave from where they land

 private:
  struct HeldBlock {
    int layer;
    int64_t from;
    int64_t to;
  };
  bool holding_;                 // I/O thread only
  bool released_ = false;        // I/O thread only
  std::vector<HeldBlock> held_;  // I/O thread only
  // Under the run's lock:
  std::vector<net::SendHandle> in_flight_;
  size_t posted_ = 0;
  size_t completed_ = 0;
  int64_t own_rows_posted_ = 0;  // own rows handed to the transport, all layers together
  int64_t forwarded_rows_ = 0;   // prefix rows passed on, all layers together
};

void BlockSender::send(int layer, int64_t from, int64_t to) {
  if (holding_) {
    held_.push_back({layer, from, to});
    return;
  }
  const SlicePlan& plan = state_.plan;
  if (from < plan.begin && !forwards_prefix()) return;
  net::KvBlockHeader header;
  header.request_id = plan.request_id;
  header.layer = static_cast<uint32_t>(layer);
  header.token_begin = from;
  header.token_end = to;
  header.payload_bytes = state_.cache->block_bytes(to - from);
  header.sender_worker = plan.worker_id;
  header.capability = plan.capability;
  std::vector<Result<net::SendHandle>> handles = post(header, rows(layer, from, to));
  std::lock_guard lock(state_.mutex);
  if (from >= plan.begin) own_rows_posted_ += to - from;  // forwarded blocks lie before begin
  if (from < plan.begin) forwarded_rows_ += to - from;
  for (Result<net::SendHandle>& handle : handles) {
    ++posted_;
    if (!handle) {
      ++completed_;
      state_.failure = make_error(handle.error().code, state_.request_name() + ": sending layer " +
                                                           std::to_string(layer) +
                                                           " failed: " + handle.error().message);
      state_.changed.notify_all();
      continue;
    }
    state_.timeline[static_cast<size_t>(layer)].bytes_out += header.payload_bytes;
    in_flight_.push_back(*handle);
  }
}

bool BlockSender::poll() {
  std::vector<net::SendHandle> still;
  size_t finished = 0;
  std::optional<Status> failed;
  {
    std::lock_guard lock(state_.mutex);
    still.reserve(in_flight_.size());
    for (net::SendHandle handle : in_flight_) {
      Status why;
      switch (state_.transport.check(handle, &why)) {
        case net::SendState::kInFlight:
          still.push_back(handle);
          continue;
        case net::SendState::kDone:
          break;
        case net::SendState::kFailed:
          failed = why.is_ok() ? Status(make_error(ErrorCode::kUnavailable, "send failed")) : why;
          break;
      }
      state_.transport.release(handle);
      ++finished;
    }
    in_flight_ = std::move(still);
    completed_ += finished;
    if (failed && !state_.failure) {
      state_.failure = make_error(
          failed->code(),
          state_.request_name() + ": sending to the next worker failed: " + failed->message());
    }
  }
  if (finished > 0 || failed) state_.changed.notify_all();
  std::lock_guard lock(state_.mutex);
  return in_flight_.empty();
}

// Two-sided sends from the cache.
class FromCache final : public BlockSender {
 public:
  FromCache(SliceState& state, KvMemory prefix_lands_in)
      : BlockSender(state, KvMemory::kCache, prefix_lands_in, state.plan.hold_sends) {}
};

// Two-sided sends from the host copy, which the compute thread fills in chunks.
class ThroughHost final : public BlockSender {
 public:
  ThroughHost(SliceState& state, HostStaging& staging, KvMemory prefix_lands_in)
      : BlockSender(state, KvMemory::kHostCopy, prefix_lands_in, state.plan.hold_sends),
        staging_(staging) {}

  Status own_rows_computed(int layer) override {
    // The copies wait for the projection on their own streams; the device is waited for after
    // they were issued.
    RUNAHEAD_RETURN_IF_ERROR(copy_out_and_send(layer, state_.plan.begin, state_.plan.end));
    return state_.transformer.backend().synchronize();
  }

  Status prefix_complete(int layer) override {
    // Complete in the cache, not in the host copy: move it there, then forward it.
    if (cut_through_) return Status::ok();
    return copy_out_and_send(layer, 0, state_.plan.begin);
  }

 protected:
  const void* rows(int layer, int64_t from, int64_t /*to*/) const override {
    return staging_.rows(layer, from);
  }

 private:
  // Copies rows [from, to) of `layer` to the host copy in chunks, behind the compute work
  // enqueued so far, and sends each chunk once it is there.
  Status copy_out_and_send(int layer, int64_t from, int64_t to) {
    const size_t chunk_bytes = state_.plan.staging_chunk_bytes;
    const int64_t chunk_rows =
        chunk_bytes == 0
            ? to - from
            : std::max<int64_t>(
                  1, static_cast<int64_t>(chunk_bytes / state_.cache->bytes_per_token()));
    for (int64_t chunk = from; chunk < to; chunk += chunk_rows) {
      const int64_t chunk_end = std::min(to, chunk + chunk_rows);
      Status issued = staging_.copy_to_host(
          layer, chunk, chunk_end, [this, layer, chunk, chunk_end](Status done) {
            if (done.is_ok()) {
              post_later(layer, chunk, chunk_end);
            } else {
              state_.fail(make_error(done.code(), state_.request_name() + ": copying layer " +
                                                      std::to_string(layer) +
                                                      " to the host: " + done.message()));
            }
          });
      if (!issued.is_ok()) {
        return make_error(issued.code(), state_.request_name() + ": copying layer " +
                                             std::to_string(layer) +
                                             " to the host: " + issued.message());
      }
    }
    return Status::ok();
  }

  HostStaging& staging_;
};

// One-sided writes into the successor's cache, or into every later worker's with fan-out. They
// wait for release(), which brings the caches to write to.
class DirectWriter final : public BlockSender {
 public:
  DirectWriter(SliceState& state, KvMemory prefix_lands_in)
      : BlockSender(state, KvMemory::kCache, prefix_lands_in, /*hold=*/true),
        memory_(state.transport.peer_memory()) {}

  void finish() override {
    for (const Target& target : targets_) memory_->close_target(target.id);
    targets_.clear();
  }

 protected:
  bool open(const std::vector<uint8_t>& successor_kv_target, bool fan_out,
            const std::vector<std::vector<uint8_t>>& later_kv_targets) override {
    const SlicePlan& plan = state_.plan;
    if (!fan_out) return open_target(*plan.successor, successor_kv_target);
    if (later_kv_targets.size() != plan.later_workers.size()) {
      state_.fail(make_error(ErrorCode::kProtocol,
                             state_.request_name() + ": " +
                                 std::to_string(later_kv_targets.size()) + " kv targets for " +
                                 std::to_string(plan.later_workers.size()) + " later workers"));
      return false;
    }
    for (size_t i = 0; i < later_kv_targets.size(); ++i) {
      if (!open_target(plan.later_workers[i], later_kv_targets[i])) return false;
    }
    fan_out_ = true;
    return true;
  }

  std::vector<Result<net::SendHandle>> post(const net::KvBlockHeader& header,
                                            const void* payload) override {
    std::vector<Result<net::SendHandle>> handles;
    for (const Target& target : targets_) {
      const size_t offset = state_.cache->block_bytes(
          static_cast<int64_t>(header.layer) * target.capacity + header.token_begin);
      handles.push_back(memory_->post_write(target.id, offset, header, payload));
    }
    return handles;
  }

  // With fan-out every later worker got the prefix from its owner: nothing to forward.
  bool forwards_prefix() const override { return !fan_out_; }

 private:
  // Opens a later worker's cache; false (and the run failed) if it cannot.
  bool open_target(net::PeerId peer, const std::vector<uint8_t>& kv_target) {
    auto fail = [&](const Error& error) {
      state_.fail(make_error(error.code, state_.request_name() + ": cannot write to worker " +
                                             std::to_string(peer) + "'s cache: " + error.message));
      return false;
    };
    std::optional<KvTarget> target = decode_kv_target(kv_target);
    if (!target) return fail(Error{ErrorCode::kProtocol, "it sent no usable kv target"});
    if (memory_ == nullptr) {
      return fail(Error{ErrorCode::kUnsupported, "this data plane has no direct writes"});
    }
    auto opened = memory_->open_target(peer, target->exposure);
    if (!opened) return fail(opened.error());
    targets_.push_back({*opened, static_cast<int64_t>(target->capacity_tokens)});
    return true;
  }

  struct Target {
    uint64_t id = 0;       // the peer memory's
    int64_t capacity = 0;  // its rows per layer
  };
  net::PeerMemory* const memory_;  // the transport's; null where it has none
  std::vector<Target> targets_;    // I/O thread only
  std::atomic<bool> fan_out_{false};
};

}  // namespace

std::unique_ptr<SliceOutbound> send_nothing() {
  return std::make_unique<NoSuccessor>();
}

std::unique_ptr<SliceOutbound> send_from_cache(SliceState& state, KvMemory prefix_lands_in) {
  return std::make_unique<FromCache>(state, prefix_lands_in);
}

std::unique_ptr<SliceOutbound> send_through_host(SliceState& state, HostStaging& staging,
                                                 KvMemory prefix_lands_in) {
  return std::make_unique<ThroughHost>(state, staging, prefix_lands_in);
}

std::unique_ptr<SliceOutbound> write_directly(SliceState& state, KvMemory prefix_lands_in) {
  return std::make_unique<DirectWriter>(state, prefix_lands_in);
}

}  // namespace runahead
