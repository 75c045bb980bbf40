// Host staging buffers reused across requests. Pinned host memory (what a GPU backend's
// allocate_host returns, so copies run at full speed) costs about a second per few GB to
// allocate; a worker that stages K/V through the host would pay that on every request.
#pragma once

#include <cstddef>
#include <memory>

#include "core/status.h"
#include "core/tensor.h"
#include "kernels/backend.h"

namespace runahead {

class HostStagingPool {
 public:
  // Keeps at most `max_idle` returned buffers for reuse; `backend` must outlive the pool and
  // every buffer taken from it.
  HostStagingPool(Backend& backend, size_t max_idle = 2);
  ~HostStagingPool();
  HostStagingPool(const HostStagingPool&) = delete;
  HostStagingPool& operator=(const HostStagingPool&) = delete;

  // A buffer of at least `bytes`: an idle one that is large enough, else a new allocation. It
  // returns to the pool when released, even after the pool is gone (it is then freed).
  [[nodiscard]] Result<Buffer> take(size_t bytes);
  size_t idle_count() const;

  struct State;

 private:
  Backend& backend_;
  std::shared_ptr<State> state_;
};

}  // namespace runahead
