// A worker of the cluster: what it says of itself when it joins, and the record the
// coordinator's registry keeps of it and reports in a status. The one worker type of the
// coordinator, its planner and the control protocol; the public API has its own
// (runahead::WorkerState), converted at the API edge.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace runahead {

// What a worker says of itself when it joins (the control protocol's Hello).
struct WorkerInfo {
  std::vector<uint8_t> data_plane_address;  // opaque: DataPlane::local_address()
  std::string backend;                      // "cpu", "cuda:0", ...
  uint64_t free_memory_bytes = 0;           // kept current by the worker's heartbeats
  std::string model_hash;                   // must match the cluster's
  // The worker's measured cost model of a slice, t = a n + b n (s + n/2) (0: not measured).
  double per_token_seconds = 0.0;  // a
  double per_key_seconds = 0.0;    // b
  // The model's sliding attention window (0: none); requests of more positions are refused.
  uint32_t sliding_window = 0;
  // The model's context in positions and its vocabulary size (0: not said): the coordinator
  // refuses requests that do not fit before any worker sees them.
  uint32_t max_positions = 0;
  uint32_t vocab_size = 0;

  bool operator==(const WorkerInfo&) const = default;
};

// A worker the coordinator registered.
struct WorkerRecord {
  uint64_t id = 0;  // given by the coordinator when the worker joined
  std::string name;
  WorkerInfo info;
  // As of the record's reading (a status): heard from within the coordinator's heartbeat
  // timeout, how long ago, and the requests it is part of.
  bool healthy = false;
  std::chrono::milliseconds last_heartbeat_age{0};
  uint32_t active_requests = 0;

  bool operator==(const WorkerRecord&) const = default;
};

}  // namespace runahead
