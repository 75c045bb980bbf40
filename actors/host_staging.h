// A host copy of a slice run's cache, laid out the same way (rows [0, rows_per_layer) of every
// layer), through which K/V passes where the transport cannot reach the cache (or a test asks
// for it), and the asynchronous copies between the two. One copy serves both directions: the
// prefix lands in rows [0, begin), the own rows leave from [begin, end).
//
// Threads: allocate() on any thread, once; rows() and the copies on the I/O and compute
// threads once it is allocated; the copies complete on the backend's threads. Its state is
// guarded by the run's lock (actors/slice_state.h).
#pragma once

#include <cstdint>
#include <functional>

#include "actors/buffer_pool.h"
#include "core/status.h"
#include "core/tensor.h"

namespace runahead {

struct SliceState;

class HostStaging {
 public:
  // Taken from `pool` where given, else from the backend.
  HostStaging(SliceState& state, int64_t rows_per_layer, BufferPool* pool);

  // Page-locks the copy (seconds for long prompts). Once; on failure the run fails with the
  // reason, which is also returned.
  [[nodiscard]] Status allocate();
  // Under the run's lock: allocate() succeeded.
  bool ready_locked() const { return ready_; }

  // Rows from `from` of `layer` in the host copy.
  void* rows(int layer, int64_t from) const;

  // Start copying rows [from, to) of `layer` between the cache and the host copy, behind the
  // work enqueued on the device so far. `done` runs once, on a backend thread, when the copy
  // completed or failed; a copy that cannot start returns why and never calls it. Once the run
  // failed, copy_to_device() starts nothing: nothing reads the cache any more.
  using CopyDone = std::function<void(Status)>;
  [[nodiscard]] Status copy_to_device(int layer, int64_t from, int64_t to, CopyDone done);
  [[nodiscard]] Status copy_to_host(int layer, int64_t from, int64_t to, CopyDone done);
  // Waits until no copy is in flight: their completions refer to the run.
  void drain();

 private:
  // Counts a copy about to start; false (and not counted) if `unless_failed` and the run failed.
  bool copy_started(bool unless_failed);
  // The last thing a copy does with the run: notified under the lock, so that once drain()
  // sees none in flight, nothing touches the run any more.
  void copy_finished();

  SliceState& state_;
  const int64_t rows_per_layer_;
  BufferPool* const pool_;
  Buffer copy_;           // written once, under the lock, by allocate()
  bool ready_ = false;    // under the lock
  size_t in_flight_ = 0;  // under the lock
};

}  // namespace runahead
