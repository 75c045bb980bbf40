// How the K/V prefix [0, begin) of each layer reaches a slice run (actors/slice_run.h), chosen
// once when the run is created:
// - into the cache: the predecessor sends blocks (two-sided) and they land in the cache (also
//   the first worker's, which receives nothing);
// - direct writes: the predecessor writes blocks straight into the cache, which the run exposes
//   through the transport's peer memory (net/data/peer_memory.h) and names in kv_target();
// - through host memory: blocks land in a host copy (actors/host_staging.h) and each is copied to
//   the cache as soon as it lands.
// The run keeps the bookkeeping common to all (which ranges were resolved and landed).
//
// Threads: creation, destination(), landed() and finish() on the I/O thread;
// rows_in_cache_locked() on any thread under the run's lock.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"

namespace runahead {

struct SliceState;
class HostStaging;

// Where blocks land, or leave from: cut-through forwarding needs both to be the same.
enum class KvMemory : uint8_t { kCache, kHostCopy };

class SliceInbound {
 public:
  explicit SliceInbound(SliceState& state) : state_(state) {}
  virtual ~SliceInbound() = default;
  SliceInbound(const SliceInbound&) = delete;
  SliceInbound& operator=(const SliceInbound&) = delete;

  virtual KvMemory lands_in() const { return KvMemory::kCache; }
  // Where rows [from, to) of `layer` of an accepted block land.
  virtual void* destination(int layer, int64_t from, int64_t to) const;
  // They landed there.
  virtual void landed(int /*layer*/, int64_t /*from*/, int64_t /*to*/) {}
  // Of the `received` prefix rows of `layer` that landed, how many are in the cache, where the
  // compute reads them.
  virtual int64_t rows_in_cache_locked(int /*layer*/, int64_t received) const { return received; }
  // Where the predecessor may write the cache directly; empty if it cannot.
  virtual const std::vector<uint8_t>& kv_target() const;
  // The request is over here.
  virtual void finish() {}

 protected:
  SliceState& state_;
};

std::unique_ptr<SliceInbound> receive_into_cache(SliceState& state);
// Fails (naming the request) where the transport offers no peer memory or cannot expose the
// cache.
[[nodiscard]] Result<std::unique_ptr<SliceInbound>> receive_direct_writes(SliceState& state);
std::unique_ptr<SliceInbound> receive_through_host(SliceState& state, HostStaging& staging);

}  // namespace runahead
