// A transport that makes the link to every peer slower and noisier than it is: a rate cap
// (a block leaves no sooner than the link, serialized at that rate, would have carried it) and
// random jitter per block. It emulates slow or congested networks (the KV-Runahead paper's
// 10 GB/s and noisy-link cases) on machines whose links are faster, for benchmarks.
//
// Sends and direct writes alike wait in a queue until their release time, then go to the inner
// plane; a timer descriptor wakes the owner's loop at the next release.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "core/status.h"
#include "net/data/transport.h"

namespace runahead::net {

struct LinkShape {
  double bytes_per_second = 0.0;            // 0: no cap
  std::chrono::microseconds max_jitter{0};  // each block waits a further uniform [0, max_jitter]
  uint64_t seed = 1;

  bool active() const { return bytes_per_second > 0.0 || max_jitter.count() > 0; }
};

[[nodiscard]] Result<std::unique_ptr<Transport>> make_shaped_link_data_plane(
    std::unique_ptr<Transport> inner, LinkShape shape);

}  // namespace runahead::net
