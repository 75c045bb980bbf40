#include "actors/slice_inbound.h"

#include <mutex>
#include <string>
#include <utility>

#include "actors/host_staging.h"
#include "actors/kv_target.h"
#include "actors/slice_state.h"
#include "net/data/peer_memory.h"

namespace runahead {
namespace {

class IntoCache final : public SliceInbound {
 public:
  using SliceInbound::SliceInbound;
};

class DirectWrites final : public SliceInbound {
 public:
  DirectWrites(SliceState& state, net::PeerMemory& memory, std::vector<uint8_t> exposure)
      : SliceInbound(state),
        memory_(memory),
        exposure_(std::move(exposure)),
        kv_target_(encode_kv_target({static_cast<uint64_t>(state.cache->capacity()), exposure_})) {}

  const std::vector<uint8_t>& kv_target() const override { return kv_target_; }
  void finish() override { memory_.withdraw(exposure_); }

 private:
  net::PeerMemory& memory_;
  const std::vector<uint8_t> exposure_;
  const std::vector<uint8_t> kv_target_;
};

class ThroughHost final : public SliceInbound {
 public:
  ThroughHost(SliceState& state, HostStaging& staging)
      : SliceInbound(state),
        staging_(staging),
        copied_rows_(static_cast<size_t>(state.transformer.config().n_layers), 0) {}

  KvMemory lands_in() const override { return KvMemory::kHostCopy; }
  void* destination(int layer, int64_t from, int64_t /*to*/) const override {
    return staging_.rows(layer, from);
  }

  // Copies the block to the cache at once; the compute waits for the layer's whole prefix there.
  void landed(int layer, int64_t from, int64_t to) override {
    Status issued = staging_.copy_to_device(layer, from, to, [this, layer, from, to](Status done) {
      if (done.is_ok()) {
        std::lock_guard lock(state_.mutex);
        copied_rows_[static_cast<size_t>(layer)] += to - from;
        return;
      }
      state_.fail(make_error(done.code(), state_.request_name() + ": copying layer " +
                                              std::to_string(layer) + " tokens [" +
                                              std::to_string(from) + ", " + std::to_string(to) +
                                              ") to the device: " + done.message()));
    });
    if (!issued.is_ok()) {
      state_.fail(make_error(issued.code(), state_.request_name() + ": copying layer " +
                                                std::to_string(layer) +
                                                " to the device: " + issued.message()));
    }
  }

  int64_t rows_in_cache_locked(int layer, int64_t /*received*/) const override {
    return copied_rows_[static_cast<size_t>(layer)];
  }

 private:
  HostStaging& staging_;
  std::vector<int64_t> copied_rows_;  // per layer, under the lock: copied to the cache
};

}  // namespace

void* SliceInbound::destination(int layer, int64_t from, int64_t to) const {
  return state_.cache->block(layer, from, to).data;
}

const std::vector<uint8_t>& SliceInbound::kv_target() const {
  static const std::vector<uint8_t> kNone;
  return kNone;
}

std::unique_ptr<SliceInbound> receive_into_cache(SliceState& state) {
  return std::make_unique<IntoCache>(state);
}

Result<std::unique_ptr<SliceInbound>> receive_direct_writes(SliceState& state) {
  auto refused = [&](const Error& error) {
    return make_error(error.code,
                      state.request_name() +
                          ": cannot expose the cache to the previous worker: " + error.message);
  };
  net::PeerMemory* memory = state.transport.peer_memory();
  if (memory == nullptr) {
    return refused(Error{ErrorCode::kUnsupported, "this data plane has no direct writes"});
  }
  // The predecessor writes the prefix straight into this cache: expose all of it.
  KvCache& kv = *state.cache;
  const size_t bytes = static_cast<size_t>(kv.n_layers()) * kv.block_bytes(kv.capacity());
  auto exposure = memory->expose(kv.block(0, 0, 1).data, bytes, state.cache);
  if (!exposure) return refused(exposure.error());
  return std::unique_ptr<SliceInbound>(
      std::make_unique<DirectWrites>(state, *memory, std::move(exposure).value()));
}

std::unique_ptr<SliceInbound> receive_through_host(SliceState& state, HostStaging& staging) {
  return std::make_unique<ThroughHost>(state, staging);
}

}  // namespace runahead
