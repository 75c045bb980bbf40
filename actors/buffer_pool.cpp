#include "actors/buffer_pool.h"

#include <map>
#include <mutex>

namespace runahead {

struct BufferPool::State {
  std::mutex mutex;
  size_t max_idle = 2;
  bool open = true;                    // false once the pool is destroyed
  std::multimap<size_t, Buffer> idle;  // by capacity
};

BufferPool::BufferPool(Allocate allocate, size_t max_idle, size_t granularity)
    : allocate_(std::move(allocate)),
      granularity_(granularity == 0 ? 1 : granularity),
      state_(std::make_shared<State>()) {
  state_->max_idle = max_idle;
}

BufferPool::~BufferPool() {
  std::lock_guard lock(state_->mutex);
  state_->open = false;
  state_->idle.clear();
}

Result<Buffer> BufferPool::take(size_t bytes) {
  Buffer block;
  {
    std::lock_guard lock(state_->mutex);
    auto fit = state_->idle.lower_bound(bytes);  // the smallest that is large enough
    if (fit != state_->idle.end()) {
      block = std::move(fit->second);
      state_->idle.erase(fit);
    }
  }
  if (block.empty()) {
    const size_t rounded = (bytes + granularity_ - 1) / granularity_ * granularity_;
    auto fresh = allocate_(rounded);
    if (!fresh) {
      // Idle buffers may be what stands in the way.
      {
        std::lock_guard lock(state_->mutex);
        state_->idle.clear();
      }
      fresh = allocate_(rounded);
    }
    if (!fresh) return fresh.status();
    block = std::move(fresh).value();
  }
  // Hand out a view that gives the block back instead of freeing it.
  void* data = block.data();
  auto owner = std::make_shared<Buffer>(std::move(block));
  std::weak_ptr<State> pool = state_;
  return Buffer(data, bytes, [owner, pool](void*) mutable {
    auto state = pool.lock();
    if (!state) return;  // the pool is gone: `owner` frees the block
    std::lock_guard lock(state->mutex);
    if (!state->open) return;
    const size_t capacity = owner->bytes();
    state->idle.emplace(capacity, std::move(*owner));
    while (state->idle.size() > state->max_idle) state->idle.erase(state->idle.begin());
  });
}

size_t BufferPool::idle_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->idle.size();
}

}  // namespace runahead
