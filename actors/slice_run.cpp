#include "actors/slice_run.h"

#include <iterator>
#include <string>
#include <utility>

#include "actors/host_staging.h"
#include "actors/slice_inbound.h"
#include "actors/slice_outbound.h"
#include "actors/slice_state.h"
#include "net/data/block_admission.h"

namespace runahead {
namespace {

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
                                                   net::Transport& transport, IoPost io_post,
                                                   SliceBuffers buffers) {
  if (plan.begin < 0 || plan.end <= plan.begin || plan.cache_tokens < plan.end) {
    return make_error(ErrorCode::kInvalidArgument,
                      "request " + std::to_string(plan.request_id) + ": invalid slice [" +
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
  auto run = std::unique_ptr<SliceRun>(new SliceRun(std::make_unique<SliceState>(
      transformer, std::move(plan), std::make_shared<KvCache>(std::move(cache)), transport,
      std::move(io_post))));
  RUNAHEAD_RETURN_IF_ERROR(run->choose_routes(buffers));
  return run;
}

SliceRun::SliceRun(std::unique_ptr<SliceState> state)
    : state_(std::move(state)),
      arrived_(static_cast<size_t>(state_->transformer.config().n_layers)),
      expected_(static_cast<size_t>(state_->transformer.config().n_layers)) {}

SliceRun::~SliceRun() {
  if (staging_) staging_->drain();
}

Status SliceRun::choose_routes(SliceBuffers buffers) {
  const SlicePlan& plan = state_->plan;
  // Two-sided blocks pass through host memory where the transport cannot reach the cache.
  const bool reachable = state_->transformer.backend().device_kind() == DeviceKind::kCpu ||
                         state_->transport.capabilities().device_memory;
  const auto through_host = [&](KvRoute route) {
    return route == KvRoute::kHostStaged || (route == KvRoute::kSend && !reachable);
  };
  const bool has_prefix = plan.begin > 0;
  const bool stage_in = has_prefix && through_host(plan.inbound);
  const bool stage_out = plan.successor.has_value() && through_host(plan.outbound);
  if (stage_in || stage_out) {
    // Own rows are staged only when they leave staged; the prefix whenever it passes here.
    staging_ = std::make_unique<HostStaging>(*state_, stage_out ? plan.end : plan.begin,
                                             buffers.host_staging);
    if (!buffers.defer_host_staging) RUNAHEAD_RETURN_IF_ERROR(staging_->allocate());
  }

  if (stage_in) {
    inbound_ = receive_through_host(*state_, *staging_);
  } else if (has_prefix && plan.inbound == KvRoute::kDirectWrite) {
    RUNAHEAD_ASSIGN_OR_RETURN(inbound_, receive_direct_writes(*state_));
  } else {
    inbound_ = receive_into_cache(*state_);
  }

  const KvMemory lands_in = inbound_->lands_in();
  if (!plan.successor) {
    outbound_ = send_nothing();
  } else if (plan.outbound == KvRoute::kDirectWrite) {
    outbound_ = write_directly(*state_, lands_in);
  } else if (stage_out) {
    outbound_ = send_through_host(*state_, *staging_, lands_in);
  } else {
    outbound_ = send_from_cache(*state_, lands_in);
  }
  return Status::ok();
}

const SlicePlan& SliceRun::plan() const {
  return state_->plan;
}

KvCache& SliceRun::cache() {
  return *state_->cache;
}

const std::vector<uint8_t>& SliceRun::kv_target() const {
  return inbound_->kv_target();
}

bool SliceRun::staging_ready() const {
  return !staging_ || staging_->ready_locked();
}

bool SliceRun::host_staging_pending() const {
  std::lock_guard lock(state_->mutex);
  return !staging_ready();
}

Status SliceRun::allocate_host_staging() {
  return staging_ ? staging_->allocate() : Status::ok();
}

Result<void*> SliceRun::resolve(const net::KvBlockHeader& header) {
  const SlicePlan& plan = state_->plan;
  // Before anything else: a block without the request's capability, or from a worker the plan
  // does not name, is never written (nor reserves a range that the real block then misses).
  RUNAHEAD_RETURN_IF_ERROR(net::admit_block(
      header,
      {.request_id = plan.request_id, .senders = plan.senders, .capability = plan.capability}));
  const KvCache& cache = *state_->cache;
  const std::string where = state_->request_name() + ", layer " + std::to_string(header.layer) +
                            ", tokens [" + std::to_string(header.token_begin) + ", " +
                            std::to_string(header.token_end) + ")";
  if (header.layer >= static_cast<uint32_t>(cache.n_layers())) {
    return make_error(ErrorCode::kProtocol, where + ": no such layer");
  }
  if (header.token_begin < 0 || header.token_end <= header.token_begin ||
      header.token_end > plan.begin) {
    return make_error(ErrorCode::kProtocol,
                      where + ": outside the prefix [0, " + std::to_string(plan.begin) + ")");
  }
  const size_t want = cache.block_bytes(header.token_end - header.token_begin);
  if (header.payload_bytes != want) {
    return make_error(ErrorCode::kProtocol, where + ": " + std::to_string(header.payload_bytes) +
                                                " bytes, expected " + std::to_string(want));
  }
  std::lock_guard lock(state_->mutex);
  if (!staging_ready()) {
    return make_error(ErrorCode::kProtocol, where + ": arrived before this worker was ready");
  }
  if (overlaps(arrived_[header.layer], header.token_begin, header.token_end) ||
      overlaps(expected_[header.layer], header.token_begin, header.token_end)) {
    return make_error(ErrorCode::kProtocol, where + ": overlaps a block already received");
  }
  expected_[header.layer][header.token_begin] = header.token_end;
  return inbound_->destination(static_cast<int>(header.layer), header.token_begin,
                               header.token_end);
}

void SliceRun::on_block(const net::KvBlockHeader& header, Status status) {
  if (!status.is_ok()) {
    cancel(make_error(status.code(), state_->request_name() + ": block of layer " +
                                         std::to_string(header.layer) +
                                         " failed: " + status.message()));
    return;
  }
  {
    std::lock_guard lock(state_->mutex);
    auto& pending = expected_[header.layer];
    auto it = pending.find(header.token_begin);
    if (it == pending.end() || it->second != header.token_end) return;  // never resolved
    pending.erase(it);
    arrived_[header.layer][header.token_begin] = header.token_end;
    state_->timeline[header.layer].bytes_in += header.payload_bytes;
  }
  const auto layer = static_cast<int>(header.layer);
  inbound_->landed(layer, header.token_begin, header.token_end);
  outbound_->prefix_landed(layer, header.token_begin, header.token_end);
  state_->changed.notify_all();
}

bool SliceRun::poll_sends() {
  return outbound_->poll();
}

void SliceRun::release_sends(const std::vector<uint8_t>& successor_kv_target, bool fan_out,
                             const std::vector<std::vector<uint8_t>>& later_kv_targets) {
  outbound_->release(successor_kv_target, fan_out, later_kv_targets);
}

void SliceRun::finish_transfers() {
  outbound_->finish();
  inbound_->finish();
}

int64_t SliceRun::received_rows(int layer) const {
  int64_t rows = 0;
  for (const auto& [from, to] : arrived_[static_cast<size_t>(layer)]) rows += to - from;
  return rows;
}

int64_t SliceRun::rows_in_cache(int layer) const {
  return inbound_->rows_in_cache_locked(layer, received_rows(layer));
}

Status SliceRun::run(std::span<const int32_t> tokens, Workspace& workspace,
                     std::chrono::steady_clock::time_point deadline) {
  Status status = run_layers(tokens, workspace, deadline);
  // A failed run takes no more blocks to the device; the copies it issued still refer to it.
  if (!status.is_ok()) cancel(status);
  if (staging_) staging_->drain();
  return status;
}

Status SliceRun::run_layers(std::span<const int32_t> tokens, Workspace& workspace,
                            std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  const SlicePlan& plan = state_->plan;
  const Transformer& transformer = state_->transformer;
  KvCache& cache = *state_->cache;
  if (static_cast<int64_t>(tokens.size()) != plan.end - plan.begin) {
    return make_error(ErrorCode::kInvalidArgument,
                      state_->request_name() + ": slice has " + std::to_string(tokens.size()) +
                          " tokens, plan says " + std::to_string(plan.end - plan.begin));
  }
  RUNAHEAD_RETURN_IF_ERROR(transformer.check_slice(tokens, plan.begin, workspace, cache));
  {
    std::unique_lock lock(state_->mutex);
    if (!state_->changed.wait_until(
            lock, deadline, [&] { return state_->failure.has_value() || staging_ready(); })) {
      return make_error(ErrorCode::kTimeout,
                        state_->request_name() + ": host staging memory not ready in time");
    }
    if (state_->failure) return *state_->failure;
  }
  transformer.embed(tokens, workspace);
  for (int layer = 0; layer < transformer.config().n_layers; ++layer) {
    {
      std::lock_guard lock(state_->mutex);
      if (state_->failure) return *state_->failure;  // cancelled: stop at the next layer
    }
    const auto compute_start = Clock::now();
    transformer.project_qkv(layer, plan.begin, workspace, cache);
    RUNAHEAD_RETURN_IF_ERROR(outbound_->own_rows_computed(layer));
    double compute_seconds = seconds_since(compute_start);

    const auto wait_start = Clock::now();
    {
      std::unique_lock lock(state_->mutex);
      const bool ready = state_->changed.wait_until(lock, deadline, [&] {
        return state_->failure.has_value() || rows_in_cache(layer) == plan.begin;
      });
      if (state_->failure) return *state_->failure;
      if (!ready) {
        return make_error(ErrorCode::kTimeout,
                          state_->request_name() + ": timed out waiting for layer " +
                              std::to_string(layer) + " of the prefix [0, " +
                              std::to_string(plan.begin) + ") from the previous worker (" +
                              std::to_string(received_rows(layer)) + " tokens arrived, " +
                              std::to_string(rows_in_cache(layer)) + " on the device)");
      }
    }
    if (plan.begin > 0) RUNAHEAD_RETURN_IF_ERROR(outbound_->prefix_complete(layer));
    const double wait_seconds = seconds_since(wait_start);

    const auto finish_start = Clock::now();
    transformer.attend_and_finish(layer, plan.begin, workspace, cache);
    compute_seconds += seconds_since(finish_start);
    std::lock_guard lock(state_->mutex);
    LayerTiming& timing = state_->timeline[static_cast<size_t>(layer)];
    timing.layer = static_cast<uint32_t>(layer);
    timing.compute = nanoseconds_of(compute_seconds);
    timing.wait = nanoseconds_of(wait_seconds);
  }
  return transformer.backend().synchronize();
}

void SliceRun::cancel(Status reason) {
  state_->fail(std::move(reason));
}

Status SliceRun::status() const {
  std::lock_guard lock(state_->mutex);
  return state_->failure ? *state_->failure : Status::ok();
}

Status SliceRun::wait_sends(std::chrono::steady_clock::time_point deadline) {
  if (!state_->plan.successor) return Status::ok();
  std::unique_lock lock(state_->mutex);
  const bool done = state_->changed.wait_until(
      lock, deadline, [&] { return state_->failure.has_value() || outbound_->all_sent_locked(); });
  if (state_->failure) return *state_->failure;
  if (!done) {
    return make_error(ErrorCode::kTimeout, state_->request_name() +
                                               ": sends to the next worker did not complete (" +
                                               outbound_->progress_locked() + ")");
  }
  return Status::ok();
}

std::vector<LayerTiming> SliceRun::timeline() const {
  std::lock_guard lock(state_->mutex);
  return state_->timeline;
}

}  // namespace runahead
