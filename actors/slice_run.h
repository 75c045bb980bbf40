// One worker's part of one request: the per-layer KV-Runahead loop over a slice [begin, end).
//
// The compute thread calls run(): for each layer it projects the slice's Q/K/V (writing its own
// K/V into the cache), hands its own block to the outbound side, waits until the predecessor's
// prefix [0, begin) of that layer is in the cache, then attends and finishes the layer. The I/O
// thread owns the data plane: it resolves arriving blocks to their place (resolve, on_block) and
// drives the sends (release_sends, poll_sends, finish_transfers).
//
// How the prefix arrives and how blocks leave are chosen once, when the run is created, from the
// plan's routes and whether the transport reaches the cache's memory:
// - inbound (actors/slice_inbound.h): two-sided blocks into the cache; direct writes into the
//   cache, which the run exposes (kv_target(): SliceReady carries it, StartSlice hands it to the
//   predecessor); or blocks through a host copy, each copied to the device as soon as it lands;
// - outbound (actors/slice_outbound.h): two-sided sends from the cache; sends through a host copy,
//   the own rows copied out in chunks behind the compute work, each sent as soon as its copy
//   completes; direct writes into the successor's cache, or (fan-out, as StartSlice decides) into
//   every later worker's; nothing for the last worker.
// So the copy out, the transfer and the copy in of one layer overlap each other and the compute.
// Blocks are forwarded cut-through (as they land) where they land in the memory they leave from,
// else once the layer's prefix is complete in the cache.
//
// Threads: create() runs on the I/O thread; allocate_host_staging() on any thread, once; the
// I/O-thread and compute-thread methods are marked below; asynchronous host copies complete on
// the backend's threads. They meet under one lock (actors/slice_state.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "actors/buffer_pool.h"
#include "core/layer_timing.h"
#include "core/status.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "net/data/transport.h"

namespace runahead {

struct SliceState;
class HostStaging;
class SliceInbound;
class SliceOutbound;

// Where a slice run's large buffers come from; null: straight from the backend.
struct SliceBuffers {
  BufferPool* host_staging = nullptr;
  BufferPool* kv_caches = nullptr;
  // Leave the host staging copy to allocate_host_staging(): page-locking gigabytes takes
  // seconds, which the thread that creates the run (the worker's I/O thread) cannot spend.
  bool defer_host_staging = false;
};

// How K/V crosses one link of the chain.
enum class KvRoute : uint8_t {
  // Two-sided blocks; through host memory where the transport cannot reach the cache (a GPU
  // cache, UCX without CUDA).
  kSend,
  // Two-sided blocks through host memory even where the transport could reach the cache (tests).
  kHostStaged,
  // One-sided writes into the receiver's cache (net::direct_path of each other's addresses).
  kDirectWrite,
};

struct SlicePlan {
  uint64_t request_id = 0;
  // This worker's id: the sender every block it sends names.
  uint64_t worker_id = 0;
  // The workers whose K/V blocks this run takes (net/data/block_admission.h): the predecessor,
  // and with fan-out every earlier worker. Blocks from anyone else are refused.
  std::vector<uint64_t> senders;
  // The request's capability: carried by every block sent, required of every block received.
  net::KvCapability capability{};
  int64_t begin = 0;         // first token of this slice
  int64_t end = 0;           // one past its last token
  int64_t cache_tokens = 0;  // cache rows to allocate (>= end; more for the decoding worker)
  std::optional<net::PeerId> successor;  // the next worker in the chain, if any
  // Hold blocks for the successor until release_sends(): it may not know the request yet.
  // Direct writes always wait for it (they need its cache).
  bool hold_sends = false;
  KvRoute inbound = KvRoute::kSend;   // from the predecessor (unused by the first worker)
  KvRoute outbound = KvRoute::kSend;  // to the successor (unused by the last worker)
  // The workers after this one, in chain order (the successor first): with fan-out each gets
  // this worker's own K/V directly.
  std::vector<net::PeerId> later_workers;
  // Host-staged own blocks leave in chunks of about this many bytes (at least one token), so
  // that copying one chunk out overlaps sending the one before; 0: each block whole.
  size_t staging_chunk_bytes = size_t{4} << 20;
};

class SliceRun {
 public:
  // Runs `task` on the I/O thread (the thread that owns the transport).
  using IoPost = std::function<void(std::function<void()> task)>;

  // The cache and host staging buffers come from the pools in `buffers` where given (reused
  // across requests), else straight from the backend.
  [[nodiscard]] static Result<std::unique_ptr<SliceRun>> create(const Transformer& transformer,
                                                                SlicePlan plan,
                                                                net::Transport& transport,
                                                                IoPost io_post,
                                                                SliceBuffers buffers = {});

  // Waits for the copies to and from host memory still in flight (they refer to this run).
  ~SliceRun();
  SliceRun(const SliceRun&) = delete;
  SliceRun& operator=(const SliceRun&) = delete;

  const SlicePlan& plan() const;
  KvCache& cache();
  // Where the predecessor may write this cache directly (for SliceReady); empty if it cannot.
  const std::vector<uint8_t>& kv_target() const;
  // The host staging copy is still to be allocated (SliceBuffers::defer_host_staging).
  bool host_staging_pending() const;
  // Allocates it (any thread, once, before the predecessor may send and before run()); on
  // failure the run fails with the reason, which is also returned.
  [[nodiscard]] Status allocate_host_staging();

  // --- I/O thread ---
  // Where an arriving block of this request goes; refuses blocks that do not fit the plan.
  [[nodiscard]] Result<void*> resolve(const net::KvBlockHeader& header);
  // A block landed (or failed): record it, forward it to the successor.
  void on_block(const net::KvBlockHeader& header, Status status);
  // Checks the sends in flight; returns true when none is left.
  bool poll_sends();
  // The successor is ready for this request (its kv_target(), empty unless it can be written
  // directly): posts the blocks held so far, and later ones at once. Fails the run if the
  // successor's cache cannot be opened.
  // With `fan_out` (every pair of the chain direct) own blocks go straight to every later
  // worker (`later_kv_targets`, in chain order) and nothing is forwarded.
  void release_sends(const std::vector<uint8_t>& successor_kv_target = {}, bool fan_out = false,
                     const std::vector<std::vector<uint8_t>>& later_kv_targets = {});
  // The request is over here: lets go of the successor's cache and withdraws this one's.
  void finish_transfers();

  // --- compute thread ---
  // Runs the slice through every layer. `workspace` must hold the slice; `deadline` bounds each
  // wait for the predecessor. On success the slice's last hidden state is in the workspace.
  [[nodiscard]] Status run(std::span<const int32_t> tokens, Workspace& workspace,
                           std::chrono::steady_clock::time_point deadline);

  // --- any thread ---
  // Fails the run: a waiting run() returns `reason` at once.
  void cancel(Status reason);
  // ok, or why the run failed or was cancelled.
  Status status() const;
  // Blocks until all sends completed or failed, or the deadline passed.
  [[nodiscard]] Status wait_sends(std::chrono::steady_clock::time_point deadline);
  // Per layer: compute and wait time, bytes in and out (worker_id left to the worker).
  std::vector<LayerTiming> timeline() const;

 private:
  explicit SliceRun(std::unique_ptr<SliceState> state);

  // Picks the inbound and outbound behaviour (and the host copy they may share).
  [[nodiscard]] Status choose_routes(SliceBuffers buffers);
  // The per-layer loop of run().
  [[nodiscard]] Status run_layers(std::span<const int32_t> tokens, Workspace& workspace,
                                  std::chrono::steady_clock::time_point deadline);
  // Under the lock: the host copy is allocated where there is one.
  bool staging_ready() const;
  // Under the lock: prefix rows of `layer` landed / in the cache, where the compute reads them.
  int64_t received_rows(int layer) const;
  int64_t rows_in_cache(int layer) const;

  std::unique_ptr<SliceState> state_;
  std::unique_ptr<HostStaging> staging_;  // null where nothing passes through host memory
  std::unique_ptr<SliceInbound> inbound_;
  std::unique_ptr<SliceOutbound> outbound_;
  // Per layer, under the lock: prefix ranges begin -> end that landed / were resolved and have
  // not landed yet.
  std::vector<std::map<int64_t, int64_t>> arrived_;
  std::vector<std::map<int64_t, int64_t>> expected_;
};

}  // namespace runahead
