// The slow or noisy link that tsp_bench emulates under every K/V all-gather (--link-gbps,
// --link-jitter-ms), so TSP can be compared with KV-Runahead's shaped links
// (net/data/shaped_link_data_plane.h) on GPUs joined by NVLink. The delay is computed here, on the
// host; bench/tsp/link_wait.h makes the GPU wait for it after the real collective.
//
// Rate: in a ring all-gather every byte a rank must receive (all shares but its own) crosses the
// rank's incoming link once, so one all-gather costs bytes_received / rate on the emulated link.
// Jitter: a ring all-gather over P ranks has P - 1 steps; every step of every rank is delayed by
// a uniform random time in [0, max jitter], and a rank waits the sum of its P - 1 draws. Ranks
// draw independently, and the next all-gather cannot finish before the slowest rank has sent,
// so the slowest rank holds every rank back, as on a real noisy network.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/status.h"

namespace runahead::tsp {

struct LinkShape {
  double bytes_per_second = 0.0;  // 0: no cap
  double max_jitter_ms = 0.0;     // 0: no jitter

  bool active() const { return bytes_per_second > 0.0 || max_jitter_ms > 0.0; }
};

// Bytes one rank receives in an all-gather of `bytes_per_rank` from each of `ranks` ranks.
int64_t all_gather_bytes_received(int64_t bytes_per_rank, int ranks);

// The emulated link's time for one all-gather, in nanoseconds: bytes_received / bytes_per_second
// (no cap when the rate is 0) plus the sum of the jitter draws (milliseconds each). Errors name
// the argument that is negative or not finite.
[[nodiscard]] Result<int64_t> emulated_all_gather_ns(int64_t bytes_received,
                                                     double bytes_per_second,
                                                     std::span<const double> jitter_ms);

// One rank's emulated link: its own random stream of jitter draws, from the seed and the rank,
// so a run is repeatable and ranks differ.
class EmulatedLink {
 public:
  // Errors name the rate or jitter that is negative or not finite.
  [[nodiscard]] static Result<EmulatedLink> create(LinkShape shape, uint64_t seed, int rank);

  const LinkShape& shape() const { return shape_; }
  // The next all-gather's delay for this rank: `bytes_per_rank` from each of `ranks` ranks,
  // with ranks - 1 fresh jitter draws.
  [[nodiscard]] Result<int64_t> next_all_gather_ns(int64_t bytes_per_rank, int ranks);

 private:
  EmulatedLink(LinkShape shape, uint64_t seed, int rank);

  LinkShape shape_;
  std::mt19937_64 rng_;
  std::vector<double> draws_;
};

}  // namespace runahead::tsp
