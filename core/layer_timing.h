// Where one worker's time went in one layer of a request: the one timing type of the slice
// runs, the workers' reports, the coordinator's timeline and the control protocol. The public
// API has its own (runahead::LayerTimeline, in milliseconds), converted at the API edge.
#pragma once

#include <chrono>
#include <cstdint>

namespace runahead {

struct LayerTiming {
  uint64_t worker_id = 0;
  uint32_t layer = 0;
  std::chrono::nanoseconds compute{0};
  std::chrono::nanoseconds wait{0};  // waiting for the predecessor's prefix of this layer
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;

  bool operator==(const LayerTiming&) const = default;
};

// Seconds as measured with a double clock, truncated to whole nanoseconds.
inline std::chrono::nanoseconds nanoseconds_of(double seconds) {
  return std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
}

}  // namespace runahead
