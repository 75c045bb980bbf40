#include "actors/slice_run.h"

#include <string>

#include "core/log.h"

namespace runahead {
namespace {

std::string request_name(uint64_t id) {
  return "request " + std::to_string(id);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// True when [begin, end) overlaps a range of `ranges` (begin -> end, disjoint).
bool overlaps(const std::map<int64_t, int64_t>& ranges, int64_t begin, int64_t end) {
  auto next = ranges.lower_bound(begin);
  if (next != ranges.end() && next->first < end) return true;
  if (next != ranges.begin() && std::prev(next)->second > begin) return true;
  return false;
}

}  // namespace

Result<std::unique_ptr<SliceRun>> SliceRun::create(const Transformer& transformer, SlicePlan plan,
                                                   net::DataPlane& data_plane, IoPost io_post) {
  if (plan.begin < 0 || plan.end <= plan.begin || plan.cache_tokens < plan.end) {
    return make_error(ErrorCode::kInvalidArgument,
                      request_name(plan.request_id) + ": invalid slice [" +
                          std::to_string(plan.begin) + ", " + std::to_string(plan.end) +
                          ") with cache of " + std::to_string(plan.cache_tokens) + " tokens");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(
      KvCache cache,
      KvCache::create(transformer.backend(), transformer.config(), plan.cache_tokens));
  auto run = std::unique_ptr<SliceRun>(
      new SliceRun(transformer, plan, std::move(cache), data_plane, std::move(io_post)));
  const bool reachable = transformer.backend().device_kind() == DeviceKind::kCpu ||
                         data_plane.capabilities().device_memory;
  const bool moves_kv = plan.begin > 0 || plan.successor.has_value();
  if (moves_kv && (plan.force_host_staging || !reachable)) {
    const size_t bytes =
        static_cast<size_t>(run->cache_.n_layers()) * run->cache_.block_bytes(plan.end);
    auto host_copy = transformer.backend().allocate_host(bytes);
    if (!host_copy) {
      return make_error(ErrorCode::kResourceExhausted,
                        request_name(plan.request_id) + ": host staging of " +
                            std::to_string(bytes >> 20) + " MiB: " + host_copy.error().message);
    }
    run->host_copy_ = std::move(host_copy).value();
  }
  return run;
}

SliceRun::SliceRun(const Transformer& transformer, SlicePlan plan, KvCache cache,
                   net::DataPlane& data_plane, IoPost io_post)
    : transformer_(transformer),
      plan_(plan),
      cache_(std::move(cache)),
      data_plane_(data_plane),
      io_post_(std::move(io_post)),
      arrived_(static_cast<size_t>(transformer.config().n_layers)),
      expected_(static_cast<size_t>(transformer.config().n_layers)),
      timeline_(static_cast<size_t>(transformer.config().n_layers)),
      holding_sends_(plan.hold_sends) {}

Result<void*> SliceRun::resolve(const net::KvBlockHeader& header) {
  const std::string where =
      request_name(plan_.request_id) + ", layer " + std::to_string(header.layer) + ", tokens [" +
      std::to_string(header.token_begin) + ", " + std::to_string(header.token_end) + ")";
  if (header.layer >= static_cast<uint32_t>(cache_.n_layers())) {
    return make_error(ErrorCode::kProtocol, where + ": no such layer");
  }
  if (header.token_begin < 0 || header.token_end <= header.token_begin ||
      header.token_end > plan_.begin) {
    return make_error(ErrorCode::kProtocol,
                      where + ": outside the prefix [0, " + std::to_string(plan_.begin) + ")");
  }
  const size_t want = cache_.block_bytes(header.token_end - header.token_begin);
  if (header.payload_bytes != want) {
    return make_error(ErrorCode::kProtocol, where + ": " + std::to_string(header.payload_bytes) +
                                                " bytes, expected " + std::to_string(want));
  }
  std::lock_guard lock(mutex_);
  if (overlaps(arrived_[header.layer], header.token_begin, header.token_end) ||
      overlaps(expected_[header.layer], header.token_begin, header.token_end)) {
    return make_error(ErrorCode::kProtocol, where + ": overlaps a block already received");
  }
  expected_[header.layer][header.token_begin] = header.token_end;
  return transfer_rows(static_cast<int>(header.layer), header.token_begin, header.token_end);
}

void* SliceRun::transfer_rows(int layer, int64_t from, int64_t to) const {
  if (host_copy_.empty()) return cache_.block(layer, from, to).data;
  const size_t layer_bytes = cache_.block_bytes(plan_.end);
  return static_cast<char*>(host_copy_.data()) + static_cast<size_t>(layer) * layer_bytes +
         cache_.block_bytes(from);
}

void SliceRun::on_block(const net::KvBlockHeader& header, Status status) {
  if (!status.is_ok()) {
    cancel(make_error(status.code(), request_name(plan_.request_id) + ": block of layer " +
                                         std::to_string(header.layer) +
                                         " failed: " + status.message()));
    return;
  }
  {
    std::lock_guard lock(mutex_);
    auto& pending = expected_[header.layer];
    auto it = pending.find(header.token_begin);
    if (it == pending.end() || it->second != header.token_end) return;  // never resolved
    pending.erase(it);
    arrived_[header.layer][header.token_begin] = header.token_end;
    timeline_[header.layer].bytes_in += header.payload_bytes;
  }
  // Cut-through: the successor needs the whole prefix, so pass the block on right away.
  if (plan_.successor)
    send_block(static_cast<int>(header.layer), header.token_begin, header.token_end);
  changed_.notify_all();
}

void SliceRun::release_sends() {
  holding_sends_ = false;
  std::vector<HeldBlock> held;
  held.swap(held_blocks_);
  for (const HeldBlock& block : held) send_block(block.layer, block.from, block.to);
}

void SliceRun::send_block(int layer, int64_t from, int64_t to) {
  if (holding_sends_) {
    held_blocks_.push_back({layer, from, to});
    return;
  }
  net::KvBlockHeader header;
  header.request_id = plan_.request_id;
  header.layer = static_cast<uint32_t>(layer);
  header.token_begin = from;
  header.token_end = to;
  header.payload_bytes = cache_.block_bytes(to - from);
  auto handle = data_plane_.post_send(*plan_.successor, header, transfer_rows(layer, from, to));
  std::lock_guard lock(mutex_);
  ++sends_posted_;
  if (from == plan_.begin) ++own_blocks_posted_;  // forwarded blocks all lie before begin
  if (!handle) {
    ++sends_completed_;
    failure_ = make_error(handle.error().code, request_name(plan_.request_id) +
                                                   ": forwarding layer " + std::to_string(layer) +
                                                   " failed: " + handle.error().message);
    changed_.notify_all();
    return;
  }
  timeline_[layer].bytes_out += header.payload_bytes;
  sends_in_flight_.push_back(*handle);
}

bool SliceRun::poll_sends() {
  std::vector<net::SendHandle> still;
  size_t finished = 0;
  std::optional<Status> failed;
  {
    std::lock_guard lock(mutex_);
    still.reserve(sends_in_flight_.size());
    for (net::SendHandle handle : sends_in_flight_) {
      Status why;
      switch (data_plane_.check(handle, &why)) {
        case net::SendState::kInFlight:
          still.push_back(handle);
          continue;
        case net::SendState::kDone:
          break;
        case net::SendState::kFailed:
          failed = why.is_ok() ? Status(make_error(ErrorCode::kUnavailable, "send failed")) : why;
          break;
      }
      data_plane_.release(handle);
      ++finished;
    }
    sends_in_flight_ = std::move(still);
    sends_completed_ += finished;
    if (failed && !failure_) {
      failure_ = make_error(failed->code(),
                            request_name(plan_.request_id) +
                                ": sending to the next worker failed: " + failed->message());
    }
  }
  if (finished > 0 || failed) changed_.notify_all();
  std::lock_guard lock(mutex_);
  return sends_in_flight_.empty();
}

int64_t SliceRun::received_rows(int layer) const {
  int64_t rows = 0;
  for (const auto& [from, to] : arrived_[layer]) rows += to - from;
  return rows;
}

Status SliceRun::run(std::span<const int32_t> tokens, Workspace& workspace,
                     std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  if (static_cast<int64_t>(tokens.size()) != plan_.end - plan_.begin) {
    return make_error(ErrorCode::kInvalidArgument, request_name(plan_.request_id) + ": slice has " +
                                                       std::to_string(tokens.size()) +
                                                       " tokens, plan says " +
                                                       std::to_string(plan_.end - plan_.begin));
  }
  Backend& backend = transformer_.backend();
  RUNAHEAD_RETURN_IF_ERROR(transformer_.check_slice(tokens, plan_.begin, workspace, cache_));
  transformer_.embed(tokens, workspace);
  for (int layer = 0; layer < transformer_.config().n_layers; ++layer) {
    {
      std::lock_guard lock(mutex_);
      if (failure_) return *failure_;  // cancelled: stop computing at the next layer
    }
    const auto compute_start = Clock::now();
    transformer_.project_qkv(layer, plan_.begin, workspace, cache_);
    if (plan_.successor) {
      // The own K/V must be in the memory the data plane reads before it is handed over.
      if (staged()) {
        RUNAHEAD_RETURN_IF_ERROR(
            backend.copy_to_host(cache_.block(layer, plan_.begin, plan_.end),
                                 transfer_rows(layer, plan_.begin, plan_.end)));
      } else {
        RUNAHEAD_RETURN_IF_ERROR(backend.synchronize());
      }
      io_post_([this, layer] { send_block(layer, plan_.begin, plan_.end); });
    }
    double compute_seconds = seconds_since(compute_start);

    const auto wait_start = Clock::now();
    {
      std::unique_lock lock(mutex_);
      const bool ready = changed_.wait_until(lock, deadline, [&] {
        return failure_.has_value() || received_rows(layer) == plan_.begin;
      });
      if (failure_) return *failure_;
      if (!ready) {
        return make_error(ErrorCode::kTimeout,
                          request_name(plan_.request_id) + ": timed out waiting for layer " +
                              std::to_string(layer) + " of the prefix [0, " +
                              std::to_string(plan_.begin) + ") from the previous worker (" +
                              std::to_string(received_rows(layer)) + " tokens arrived)");
      }
    }
    if (staged() && plan_.begin > 0) {
      // The whole prefix of this layer is in the host copy: one copy to the device.
      RUNAHEAD_RETURN_IF_ERROR(backend.copy_from_host(transfer_rows(layer, 0, plan_.begin),
                                                      cache_.block(layer, 0, plan_.begin)));
    }
    const double wait_seconds = seconds_since(wait_start);

    const auto finish_start = Clock::now();
    transformer_.attend_and_finish(layer, plan_.begin, workspace, cache_);
    compute_seconds += seconds_since(finish_start);
    std::lock_guard lock(mutex_);
    timeline_[layer].compute_seconds = compute_seconds;
    timeline_[layer].wait_seconds = wait_seconds;
  }
  return backend.synchronize();
}

void SliceRun::cancel(Status reason) {
  {
    std::lock_guard lock(mutex_);
    if (!failure_) failure_ = std::move(reason);
  }
  changed_.notify_all();
}

Status SliceRun::status() const {
  std::lock_guard lock(mutex_);
  return failure_ ? *failure_ : Status::ok();
}

Status SliceRun::wait_sends(std::chrono::steady_clock::time_point deadline) {
  if (!plan_.successor) return Status::ok();
  const size_t own_blocks = static_cast<size_t>(transformer_.config().n_layers);
  std::unique_lock lock(mutex_);
  const bool done = changed_.wait_until(lock, deadline, [&] {
    return failure_.has_value() ||
           (own_blocks_posted_ == own_blocks && sends_completed_ == sends_posted_);
  });
  if (failure_) return *failure_;
  if (!done) {
    return make_error(ErrorCode::kTimeout, request_name(plan_.request_id) +
                                               ": sends to the next worker did not complete (" +
                                               std::to_string(sends_completed_) + " of " +
                                               std::to_string(sends_posted_) + ")");
  }
  return Status::ok();
}

std::vector<LayerTiming> SliceRun::timeline() const {
  std::lock_guard lock(mutex_);
  return timeline_;
}

}  // namespace runahead
