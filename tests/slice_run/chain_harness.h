// KV-Runahead across a chain of workers in one process, for tests: each worker has its own
// data-plane endpoint (loopback, optionally with direct writes over host memory), I/O thread and
// compute thread, and runs its slice with SliceRun.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "planner/partition.h"
#include "tests/support/random_model.h"

namespace runahead::testing {

// What the chain computed: the last worker's logits and cache, and what each worker sent.
struct ChainResult {
  std::vector<float> logits;
  std::vector<std::vector<float>> cache;  // per layer, of the last worker
  std::vector<uint64_t> bytes_out;        // per worker, all layers
  Status status;
};

// How K/V moves along the chain.
struct ChainMode {
  bool staged = false;  // through host memory where not written directly
  // Workers [0, direct_workers) write K/V straight into their successor's cache (direct writes
  // over host memory); the others send it.
  size_t direct_workers = 0;
  // Every pair direct (direct_workers must cover the chain): each worker writes its own K/V to
  // every later one, nothing is forwarded.
  bool fan_out = false;
  // Host-staged own blocks leave in chunks of this many bytes (0: the default).
  size_t chunk_bytes = 0;
  // Staging memory allocated after the runs are created, on other threads (as a worker does).
  bool defer_staging = false;
  // Cancels every run this long after they started (0: never).
  std::chrono::milliseconds cancel_after{0};
};

// Runs `prompt` cut at `cuts` over one worker per slice, worker i on `models[i]` (they may
// share one); failures are in ChainResult::status (and as test failures).
ChainResult run_chain(const std::vector<const LoadedModel*>& models,
                      const std::vector<int32_t>& prompt, const Partition& cuts, ChainMode mode);
// Every worker on `model`.
ChainResult run_chain(const LoadedModel& model, const std::vector<int32_t>& prompt,
                      const Partition& cuts, ChainMode mode);

// The rows of `t` as floats, whatever the backend stores (f32 or bf16).
std::vector<float> read_floats(Backend& backend, Tensor t);

}  // namespace runahead::testing
