#include "actors/slice_run.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/log.h"
#include "net/data/peer_memory.h"

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

// What a predecessor needs besides the data plane's exposure to place rows in this cache.
struct KvTargetLayout {
  uint64_t capacity_tokens = 0;  // rows per layer
};

std::vector<uint8_t> encode_kv_target(const KvTargetLayout& layout,
                                      const std::vector<uint8_t>& exposure) {
  std::vector<uint8_t> out(sizeof(layout.capacity_tokens) + exposure.size());
  std::memcpy(out.data(), &layout.capacity_tokens, sizeof(layout.capacity_tokens));
  if (!exposure.empty()) {
    std::memcpy(out.data() + sizeof(layout.capacity_tokens), exposure.data(), exposure.size());
  }
  return out;
}

bool decode_kv_target(const std::vector<uint8_t>& bytes, KvTargetLayout& layout,
                      std::vector<uint8_t>& exposure) {
  if (bytes.size() <= sizeof(layout.capacity_tokens)) return false;
  std::memcpy(&layout.capacity_tokens, bytes.data(), sizeof(layout.capacity_tokens));
  exposure.assign(bytes.begin() + sizeof(layout.capacity_tokens), bytes.end());
  return layout.capacity_tokens > 0;
}

}  // namespace

Result<std::unique_ptr<SliceRun>> SliceRun::create(const Transformer& transformer, SlicePlan plan,
                                                   net::Transport& data_plane, IoPost io_post,
                                                   SliceBuffers buffers) {
  if (plan.begin < 0 || plan.end <= plan.begin || plan.cache_tokens < plan.end) {
    return make_error(ErrorCode::kInvalidArgument,
                      request_name(plan.request_id) + ": invalid slice [" +
                          std::to_string(plan.begin) + ", " + std::to_string(plan.end) +
                          ") with cache of " + std::to_string(plan.cache_tokens) + " tokens");
  }
  Backend& backend = transformer.backend();
  RUNAHEAD_ASSIGN_OR_RETURN(
      KvCache cache,
      KvCache::create(backend, transformer.config(), plan.cache_tokens, [&](size_t bytes) {
        return buffers.kv_caches != nullptr ? buffers.kv_caches->take(bytes)
                                            : backend.allocate(bytes);
      }));
  auto run = std::unique_ptr<SliceRun>(new SliceRun(transformer, plan,
                                                    std::make_shared<KvCache>(std::move(cache)),
                                                    data_plane, std::move(io_post)));
  const bool host_cache = transformer.backend().device_kind() == DeviceKind::kCpu;
  const bool reachable = host_cache || data_plane.capabilities().device_memory;
  run->stage_in_ =
      plan.begin > 0 && !plan.receive_direct && (plan.force_host_staging || !reachable);
  run->stage_out_ =
      plan.successor.has_value() && !plan.send_direct && (plan.force_host_staging || !reachable);
  if (run->stage_in_ || run->stage_out_) {
    // Own rows are staged only when they leave staged; the prefix whenever it passes here.
    run->host_rows_per_layer_ = run->stage_out_ ? plan.end : plan.begin;
    run->host_staging_pool_ = buffers.host_staging;
    run->host_staging_ready_ = false;
    if (!buffers.defer_host_staging) RUNAHEAD_RETURN_IF_ERROR(run->allocate_host_staging());
  }
  if (plan.begin > 0 && plan.receive_direct) {
    // The predecessor writes the prefix straight into this cache: expose all of it.
    KvCache& kv = *run->cache_;
    const size_t bytes = static_cast<size_t>(kv.n_layers()) * kv.block_bytes(kv.capacity());
    net::PeerMemory* memory = data_plane.peer_memory();
    auto exposure = memory != nullptr
                        ? memory->expose(kv.block(0, 0, 1).data, bytes, run->cache_)
                        : Result<std::vector<uint8_t>>(make_error(
                              ErrorCode::kUnsupported, "this data plane has no direct writes"));
    if (!exposure) {
      return make_error(exposure.error().code, request_name(plan.request_id) +
                                                   ": cannot expose the cache to the previous "
                                                   "worker: " +
                                                   exposure.error().message);
    }
    KvTargetLayout layout{static_cast<uint64_t>(kv.capacity())};
    run->kv_target_ = encode_kv_target(layout, *exposure);
  }
  return run;
}

SliceRun::SliceRun(const Transformer& transformer, SlicePlan plan, std::shared_ptr<KvCache> cache,
                   net::Transport& data_plane, IoPost io_post)
    : transformer_(transformer),
      plan_(plan),
      cache_(std::move(cache)),
      data_plane_(data_plane),
      io_post_(std::move(io_post)),
      arrived_(static_cast<size_t>(transformer.config().n_layers)),
      expected_(static_cast<size_t>(transformer.config().n_layers)),
      staged_in_rows_(static_cast<size_t>(transformer.config().n_layers), 0),
      timeline_(static_cast<size_t>(transformer.config().n_layers)),
      holding_sends_(plan.hold_sends) {}

SliceRun::~SliceRun() {
  drain_copies();
}

bool SliceRun::host_staging_pending() const {
  std::lock_guard lock(mutex_);
  return !host_staging_ready_;
}

Status SliceRun::allocate_host_staging() {
  {
    std::lock_guard lock(mutex_);
    if (host_staging_ready_) return Status::ok();
  }
  const size_t bytes =
      static_cast<size_t>(cache_->n_layers()) * cache_->block_bytes(host_rows_per_layer_);
  auto host_copy = host_staging_pool_ != nullptr ? host_staging_pool_->take(bytes)
                                                 : transformer_.backend().allocate_host(bytes);
  if (!host_copy) {
    Status failed =
        make_error(ErrorCode::kResourceExhausted,
                   request_name(plan_.request_id) + ": host staging of " +
                       std::to_string(bytes >> 20) + " MiB: " + host_copy.error().message);
    cancel(failed);
    return failed;
  }
  {
    std::lock_guard lock(mutex_);
    host_copy_ = std::move(host_copy).value();
    host_staging_ready_ = true;
  }
  changed_.notify_all();
  return Status::ok();
}

Result<void*> SliceRun::resolve(const net::KvBlockHeader& header) {
  const std::string where =
      request_name(plan_.request_id) + ", layer " + std::to_string(header.layer) + ", tokens [" +
      std::to_string(header.token_begin) + ", " + std::to_string(header.token_end) + ")";
  if (header.layer >= static_cast<uint32_t>(cache_->n_layers())) {
    return make_error(ErrorCode::kProtocol, where + ": no such layer");
  }
  if (header.token_begin < 0 || header.token_end <= header.token_begin ||
      header.token_end > plan_.begin) {
    return make_error(ErrorCode::kProtocol,
                      where + ": outside the prefix [0, " + std::to_string(plan_.begin) + ")");
  }
  const size_t want = cache_->block_bytes(header.token_end - header.token_begin);
  if (header.payload_bytes != want) {
    return make_error(ErrorCode::kProtocol, where + ": " + std::to_string(header.payload_bytes) +
                                                " bytes, expected " + std::to_string(want));
  }
  std::lock_guard lock(mutex_);
  if (!host_staging_ready_) {
    return make_error(ErrorCode::kProtocol, where + ": arrived before this worker was ready");
  }
  if (overlaps(arrived_[header.layer], header.token_begin, header.token_end) ||
      overlaps(expected_[header.layer], header.token_begin, header.token_end)) {
    return make_error(ErrorCode::kProtocol, where + ": overlaps a block already received");
  }
  expected_[header.layer][header.token_begin] = header.token_end;
  return incoming_rows(static_cast<int>(header.layer), header.token_begin, header.token_end);
}

void* SliceRun::host_rows(int layer, int64_t from) const {
  const size_t layer_bytes = cache_->block_bytes(host_rows_per_layer_);
  return static_cast<char*>(host_copy_.data()) + static_cast<size_t>(layer) * layer_bytes +
         cache_->block_bytes(from);
}

void* SliceRun::incoming_rows(int layer, int64_t from, int64_t to) const {
  return stage_in_ ? host_rows(layer, from) : cache_->block(layer, from, to).data;
}

void* SliceRun::outgoing_rows(int layer, int64_t from, int64_t to) const {
  return stage_out_ ? host_rows(layer, from) : cache_->block(layer, from, to).data;
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
  if (stage_in_) {
    stage_in_block(static_cast<int>(header.layer), header.token_begin, header.token_end);
  }
  // Cut-through: the successor needs the whole prefix, so pass the block on right away.
  if (cut_through())
    send_block(static_cast<int>(header.layer), header.token_begin, header.token_end);
  changed_.notify_all();
}

bool SliceRun::open_target(net::PeerId peer, const std::vector<uint8_t>& kv_target) {
  auto fail = [&](const Error& error) {
    cancel(make_error(error.code, request_name(plan_.request_id) + ": cannot write to worker " +
                                      std::to_string(peer) + "'s cache: " + error.message));
    return false;
  };
  KvTargetLayout layout;
  std::vector<uint8_t> exposure;
  if (!decode_kv_target(kv_target, layout, exposure)) {
    return fail(Error{ErrorCode::kProtocol, "it sent no usable kv target"});
  }
  net::PeerMemory* memory = data_plane_.peer_memory();
  if (memory == nullptr) {
    return fail(Error{ErrorCode::kUnsupported, "this data plane has no direct writes"});
  }
  auto opened = memory->open_target(peer, exposure);
  if (!opened) return fail(opened.error());
  targets_.push_back({*opened, static_cast<int64_t>(layout.capacity_tokens)});
  return true;
}

void SliceRun::release_sends(const std::vector<uint8_t>& successor_kv_target, bool fan_out,
                             const std::vector<std::vector<uint8_t>>& later_kv_targets) {
  if (!targets_opened_ && plan_.successor) {
    targets_opened_ = true;
    if (fan_out && later_kv_targets.size() == plan_.later_workers.size()) {
      for (size_t i = 0; i < later_kv_targets.size(); ++i) {
        if (!open_target(plan_.later_workers[i], later_kv_targets[i])) return;
      }
      fan_out_ = true;
    } else if (fan_out) {
      cancel(make_error(ErrorCode::kProtocol,
                        request_name(plan_.request_id) + ": " +
                            std::to_string(later_kv_targets.size()) + " kv targets for " +
                            std::to_string(plan_.later_workers.size()) + " later workers"));
      return;
    } else if (plan_.send_direct && !open_target(*plan_.successor, successor_kv_target)) {
      return;
    }
  }
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
  // With fan-out every later worker got the prefix from its owner: nothing to forward.
  if (fan_out_ && from < plan_.begin) return;
  net::KvBlockHeader header;
  header.request_id = plan_.request_id;
  header.layer = static_cast<uint32_t>(layer);
  header.token_begin = from;
  header.token_end = to;
  header.payload_bytes = cache_->block_bytes(to - from);
  std::vector<Result<net::SendHandle>> handles;
  if (targets_.empty()) {
    handles.push_back(
        data_plane_.post_send(*plan_.successor, header, outgoing_rows(layer, from, to)));
  }
  for (const OpenTarget& target : targets_) {
    const size_t offset = cache_->block_bytes(static_cast<int64_t>(layer) * target.capacity + from);
    handles.push_back(data_plane_.peer_memory()->post_write(target.id, offset, header,
                                                            outgoing_rows(layer, from, to)));
  }
  std::lock_guard lock(mutex_);
  if (from >= plan_.begin) own_rows_posted_ += to - from;  // forwarded blocks lie before begin
  if (from < plan_.begin) forwarded_rows_ += to - from;
  for (Result<net::SendHandle>& handle : handles) {
    ++sends_posted_;
    if (!handle) {
      ++sends_completed_;
      failure_ = make_error(handle.error().code, request_name(plan_.request_id) +
                                                     ": sending layer " + std::to_string(layer) +
                                                     " failed: " + handle.error().message);
      changed_.notify_all();
      continue;
    }
    timeline_[layer].bytes_out += header.payload_bytes;
    sends_in_flight_.push_back(*handle);
  }
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

int64_t SliceRun::rows_on_device(int layer) const {
  return stage_in_ ? staged_in_rows_[static_cast<size_t>(layer)] : received_rows(layer);
}

void SliceRun::copy_finished() {
  // Notified under the lock: once the destructor's wait sees zero, nothing here touches the run.
  std::lock_guard lock(mutex_);
  --copies_in_flight_;
  changed_.notify_all();
}

void SliceRun::drain_copies() {
  // Every issued copy reports exactly once (Backend::CopyDone), failed or not.
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return copies_in_flight_ == 0; });
}

void SliceRun::stage_in_block(int layer, int64_t from, int64_t to) {
  {
    std::lock_guard lock(mutex_);
    if (failure_) return;  // the run is over: nothing reads the cache any more
    ++copies_in_flight_;
  }
  Status issued = transformer_.backend().copy_from_host_async(
      host_rows(layer, from), cache_->block(layer, from, to), [this, layer, from, to](Status done) {
        if (!done.is_ok()) {
          cancel(make_error(done.code(), request_name(plan_.request_id) + ": copying layer " +
                                             std::to_string(layer) + " tokens [" +
                                             std::to_string(from) + ", " + std::to_string(to) +
                                             ") to the device: " + done.message()));
        } else {
          std::lock_guard lock(mutex_);
          staged_in_rows_[static_cast<size_t>(layer)] += to - from;
        }
        copy_finished();
      });
  if (!issued.is_ok()) {
    cancel(make_error(issued.code(), request_name(plan_.request_id) + ": copying layer " +
                                         std::to_string(layer) +
                                         " to the device: " + issued.message()));
    copy_finished();
  }
}

Status SliceRun::stage_and_send(int layer, int64_t from, int64_t to) {
  const int64_t chunk_rows =
      plan_.staging_chunk_bytes == 0
          ? to - from
          : std::max<int64_t>(
                1, static_cast<int64_t>(plan_.staging_chunk_bytes / cache_->bytes_per_token()));
  for (int64_t chunk = from; chunk < to; chunk += chunk_rows) {
    const int64_t chunk_end = std::min(to, chunk + chunk_rows);
    {
      std::lock_guard lock(mutex_);
      ++copies_in_flight_;
    }
    Status issued = transformer_.backend().copy_to_host_async(
        cache_->block(layer, chunk, chunk_end), host_rows(layer, chunk),
        [this, layer, chunk, chunk_end](Status done) {
          if (done.is_ok()) {
            io_post_([this, layer, chunk, chunk_end] { send_block(layer, chunk, chunk_end); });
          } else {
            cancel(make_error(done.code(), request_name(plan_.request_id) + ": copying layer " +
                                               std::to_string(layer) +
                                               " to the host: " + done.message()));
          }
          copy_finished();
        });
    if (!issued.is_ok()) {
      copy_finished();
      return make_error(issued.code(), request_name(plan_.request_id) + ": copying layer " +
                                           std::to_string(layer) +
                                           " to the host: " + issued.message());
    }
  }
  return Status::ok();
}

Status SliceRun::run(std::span<const int32_t> tokens, Workspace& workspace,
                     std::chrono::steady_clock::time_point deadline) {
  Status status = run_layers(tokens, workspace, deadline);
  // A failed run takes no more blocks to the device; the copies it issued still refer to it.
  if (!status.is_ok()) cancel(status);
  drain_copies();
  return status;
}

Status SliceRun::run_layers(std::span<const int32_t> tokens, Workspace& workspace,
                            std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  if (static_cast<int64_t>(tokens.size()) != plan_.end - plan_.begin) {
    return make_error(ErrorCode::kInvalidArgument, request_name(plan_.request_id) + ": slice has " +
                                                       std::to_string(tokens.size()) +
                                                       " tokens, plan says " +
                                                       std::to_string(plan_.end - plan_.begin));
  }
  Backend& backend = transformer_.backend();
  RUNAHEAD_RETURN_IF_ERROR(transformer_.check_slice(tokens, plan_.begin, workspace, *cache_));
  {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_until(lock, deadline,
                             [&] { return failure_.has_value() || host_staging_ready_; })) {
      return make_error(ErrorCode::kTimeout,
                        request_name(plan_.request_id) + ": host staging memory not ready in time");
    }
    if (failure_) return *failure_;
  }
  transformer_.embed(tokens, workspace);
  for (int layer = 0; layer < transformer_.config().n_layers; ++layer) {
    {
      std::lock_guard lock(mutex_);
      if (failure_) return *failure_;  // cancelled: stop computing at the next layer
    }
    const auto compute_start = Clock::now();
    transformer_.project_qkv(layer, plan_.begin, workspace, *cache_);
    if (plan_.successor) {
      // The own K/V must be in the memory the data plane reads before it is handed over.
      // Staged: the copies wait for the projection on their own streams. Either way the
      // projection is waited for here, which keeps this layer's compute time whole (calibration
      // fits it) and the launches from running far ahead.
      if (stage_out_) RUNAHEAD_RETURN_IF_ERROR(stage_and_send(layer, plan_.begin, plan_.end));
      RUNAHEAD_RETURN_IF_ERROR(backend.synchronize());
      if (!stage_out_) io_post_([this, layer] { send_block(layer, plan_.begin, plan_.end); });
    }
    double compute_seconds = seconds_since(compute_start);

    const auto wait_start = Clock::now();
    {
      std::unique_lock lock(mutex_);
      const bool ready = changed_.wait_until(lock, deadline, [&] {
        return failure_.has_value() || rows_on_device(layer) == plan_.begin;
      });
      if (failure_) return *failure_;
      if (!ready) {
        return make_error(ErrorCode::kTimeout,
                          request_name(plan_.request_id) + ": timed out waiting for layer " +
                              std::to_string(layer) + " of the prefix [0, " +
                              std::to_string(plan_.begin) + ") from the previous worker (" +
                              std::to_string(received_rows(layer)) + " tokens arrived, " +
                              std::to_string(rows_on_device(layer)) + " on the device)");
      }
    }
    if (plan_.successor && plan_.begin > 0 && !cut_through()) {
      // The prefix arrived in other memory than the next hop reads (and is complete there):
      // move it, then forward it.
      if (stage_out_) {
        RUNAHEAD_RETURN_IF_ERROR(stage_and_send(layer, 0, plan_.begin));
      } else {
        io_post_([this, layer] { send_block(layer, 0, plan_.begin); });
      }
    }
    const double wait_seconds = seconds_since(wait_start);

    const auto finish_start = Clock::now();
    transformer_.attend_and_finish(layer, plan_.begin, workspace, *cache_);
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
  const auto layers = static_cast<int64_t>(transformer_.config().n_layers);
  std::unique_lock lock(mutex_);
  const bool done = changed_.wait_until(lock, deadline, [&] {
    return failure_.has_value() || (own_rows_posted_ == layers * (plan_.end - plan_.begin) &&
                                    forwarded_rows_ == (fan_out_ ? 0 : layers * plan_.begin) &&
                                    sends_completed_ == sends_posted_);
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

void SliceRun::finish_transfers() {
  for (const OpenTarget& target : targets_) data_plane_.peer_memory()->close_target(target.id);
  targets_.clear();
  if (!kv_target_.empty()) {
    KvTargetLayout layout;
    std::vector<uint8_t> exposure;
    if (decode_kv_target(kv_target_, layout, exposure))
      data_plane_.peer_memory()->withdraw(exposure);
  }
}

std::vector<LayerTiming> SliceRun::timeline() const {
  std::lock_guard lock(mutex_);
  return timeline_;
}

}  // namespace runahead
