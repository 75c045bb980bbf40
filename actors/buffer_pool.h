// Buffers reused across requests. A worker allocates the same kinds of large buffers for every
// request: its K/V cache on the device, and host staging where K/V goes through host memory.
// Pinned host memory costs about a second per few GB to allocate; a device cache reused keeps
// the CUDA IPC mapping a predecessor opened for it valid, so the next request needs no new one.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "core/status.h"
#include "core/tensor.h"

namespace runahead {

class BufferPool {
 public:
  using Allocate = std::function<Result<Buffer>(size_t bytes)>;

  // Keeps at most `max_idle` returned buffers for reuse. Allocations are rounded up to
  // `granularity` bytes so that requests of similar size share buffers.
  explicit BufferPool(Allocate allocate, size_t max_idle = 2, size_t granularity = 1);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least `bytes`: an idle one that is large enough, else a new allocation (after
  // freeing the idle ones, if the first attempt fails). It returns to the pool when released,
  // even after the pool is gone (it is then freed).
  [[nodiscard]] Result<Buffer> take(size_t bytes);
  size_t idle_count() const;

  struct State;

 private:
  Allocate allocate_;
  size_t granularity_;
  std::shared_ptr<State> state_;
};

}  // namespace runahead
