// What the parts of one slice run share (actors/slice_run.h, host_staging.h, slice_inbound.h,
// slice_outbound.h): the plan, the cache, the transport, and the lock under which the compute
// thread, the I/O thread and the completions of host copies meet, with what it guards.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/slice_run.h"

namespace runahead {

struct SliceState {
  SliceState(const Transformer& model, SlicePlan slice_plan, std::shared_ptr<KvCache> kv_cache,
             net::Transport& data_plane, SliceRun::IoPost post);

  const Transformer& transformer;
  const SlicePlan plan;
  const std::shared_ptr<KvCache> cache;  // shared with the transport while exposed
  net::Transport& transport;             // I/O thread only
  const SliceRun::IoPost io_post;        // runs a task on the I/O thread

  mutable std::mutex mutex;
  std::condition_variable changed;  // notified whenever something the lock guards changes
  // Guarded by `mutex`:
  std::optional<Status> failure;      // why the run failed or was cancelled
  std::vector<LayerTiming> timeline;  // per layer

  // "request 7", for messages.
  std::string request_name() const;
  // Fails the run unless it failed already, and wakes every waiter (any thread, without the
  // lock).
  void fail(Status reason);
};

}  // namespace runahead
