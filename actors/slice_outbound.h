// How a slice run's blocks leave for the later workers (actors/slice_run.h), chosen once when the
// run is created:
// - from the cache: two-sided sends to the successor, each block read where it was computed;
// - through host memory: the own rows are copied to a host copy (actors/host_staging.h) in
//   chunks behind the compute work, each chunk sent as soon as its copy completes; the prefix is
//   copied out once it is complete in the cache, unless it arrived in the host copy already;
// - direct writes into the successor's cache, opened from its kv_target() when it is ready, or,
//   when StartSlice asks for fan-out, into every later worker's, and then nothing is forwarded;
// - nothing, for the last worker.
// Prefix blocks are forwarded cut-through (as they land) where they land in the memory blocks
// leave from, else once the layer's prefix is complete in the cache.
//
// Threads: the compute thread, the I/O thread and any thread under the run's lock, as marked.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/slice_inbound.h"
#include "core/status.h"

namespace runahead {

struct SliceState;
class HostStaging;

class SliceOutbound {
 public:
  SliceOutbound() = default;
  virtual ~SliceOutbound() = default;
  SliceOutbound(const SliceOutbound&) = delete;
  SliceOutbound& operator=(const SliceOutbound&) = delete;

  // --- compute thread ---
  // The own rows of `layer` are enqueued for computation: hands them over once they are in the
  // memory blocks leave from. Waits for the device where anything is sent, which keeps the
  // layer's compute time whole (calibration fits it) and the launches from running far ahead.
  [[nodiscard]] virtual Status own_rows_computed(int layer) = 0;
  // The prefix of `layer` (not empty) is complete in the cache: forwards it unless it went
  // cut-through.
  [[nodiscard]] virtual Status prefix_complete(int layer) = 0;

  // --- I/O thread ---
  // Prefix rows [from, to) of `layer` landed: forwards them at once where cut through.
  virtual void prefix_landed(int layer, int64_t from, int64_t to) = 0;
  // The successor is ready: as SliceRun::release_sends.
  virtual void release(const std::vector<uint8_t>& successor_kv_target, bool fan_out,
                       const std::vector<std::vector<uint8_t>>& later_kv_targets) = 0;
  // Checks the sends in flight; true when none is left.
  virtual bool poll() = 0;
  // The request is over here: lets go of the later workers' caches.
  virtual void finish() = 0;

  // --- any thread, under the run's lock ---
  // Every block was handed to the transport and its send completed or failed.
  virtual bool all_sent_locked() const = 0;
  // "3 of 5": sends completed of those posted.
  virtual std::string progress_locked() const = 0;
};

// `prefix_lands_in`: where the inbound side puts arriving blocks (SliceInbound::lands_in()).
std::unique_ptr<SliceOutbound> send_nothing();
std::unique_ptr<SliceOutbound> send_from_cache(SliceState& state, KvMemory prefix_lands_in);
std::unique_ptr<SliceOutbound> send_through_host(SliceState& state, HostStaging& staging,
                                                 KvMemory prefix_lands_in);
std::unique_ptr<SliceOutbound> write_directly(SliceState& state, KvMemory prefix_lands_in);

}  // namespace runahead
