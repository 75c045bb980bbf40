#include "actors/host_staging.h"

#include <mutex>
#include <string>
#include <utility>

#include "actors/slice_state.h"

namespace runahead {

HostStaging::HostStaging(SliceState& state, int64_t rows_per_layer, BufferPool* pool)
    : state_(state), rows_per_layer_(rows_per_layer), pool_(pool) {}

Status HostStaging::allocate() {
  {
    std::lock_guard lock(state_.mutex);
    if (ready_) return Status::ok();
  }
  const KvCache& cache = *state_.cache;
  const size_t bytes = static_cast<size_t>(cache.n_layers()) * cache.block_bytes(rows_per_layer_);
  auto copy =
      pool_ != nullptr ? pool_->take(bytes) : state_.transformer.backend().allocate_host(bytes);
  if (!copy) {
    Status failed = make_error(ErrorCode::kResourceExhausted,
                               state_.request_name() + ": host staging of " +
                                   std::to_string(bytes >> 20) + " MiB: " + copy.error().message);
    state_.fail(failed);
    return failed;
  }
  {
    std::lock_guard lock(state_.mutex);
    copy_ = std::move(copy).value();
    ready_ = true;
  }
  state_.changed.notify_all();
  return Status::ok();
}

void* HostStaging::rows(int layer, int64_t from) const {
  const KvCache& cache = *state_.cache;
  const size_t layer_bytes = cache.block_bytes(rows_per_layer_);
  return static_cast<char*>(copy_.data()) + static_cast<size_t>(layer) * layer_bytes +
         cache.block_bytes(from);
}

Status HostStaging::copy_to_device(int layer, int64_t from, int64_t to, CopyDone done) {
  if (!copy_started(/*unless_failed=*/true)) return Status::ok();
  Status issued = state_.transformer.backend().copy_from_host_async(
      rows(layer, from), state_.cache->block(layer, from, to),
      [this, done = std::move(done)](Status status) {
        done(std::move(status));
        copy_finished();
      });
  if (!issued.is_ok()) copy_finished();
  return issued;
}

Status HostStaging::copy_to_host(int layer, int64_t from, int64_t to, CopyDone done) {
  copy_started(/*unless_failed=*/false);
  Status issued = state_.transformer.backend().copy_to_host_async(
      state_.cache->block(layer, from, to), rows(layer, from),
      [this, done = std::move(done)](Status status) {
        done(std::move(status));
        copy_finished();
      });
  if (!issued.is_ok()) copy_finished();
  return issued;
}

bool HostStaging::copy_started(bool unless_failed) {
  std::lock_guard lock(state_.mutex);
  if (unless_failed && state_.failure) return false;
  ++in_flight_;
  return true;
}

void HostStaging::copy_finished() {
  std::lock_guard lock(state_.mutex);
  --in_flight_;
  state_.changed.notify_all();
}

void HostStaging::drain() {
  // Every issued copy reports exactly once (Backend::CopyDone), failed or not.
  std::unique_lock lock(state_.mutex);
  state_.changed.wait(lock, [&] { return in_flight_ == 0; });
}

}  // namespace runahead
