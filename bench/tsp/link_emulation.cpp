#include "bench/tsp/link_emulation.h"

#include <cmath>
#include <string>

namespace runahead::tsp {
namespace {

bool non_negative(double value) {
  return std::isfinite(value) && value >= 0.0;
}

Status check_rate(double bytes_per_second) {
  if (non_negative(bytes_per_second)) return Status::ok();
  return make_error(ErrorCode::kInvalidArgument, "link rate " + std::to_string(bytes_per_second) +
                                                     " bytes/s: must be finite and at least 0 "
                                                     "(0: no cap)");
}

Status check_shape(const LinkShape& shape) {
  RUNAHEAD_RETURN_IF_ERROR(check_rate(shape.bytes_per_second));
  if (!non_negative(shape.max_jitter_ms)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "link jitter " + std::to_string(shape.max_jitter_ms) +
                          " ms: must be finite and at least 0 (0: no jitter)");
  }
  return Status::ok();
}

}  // namespace

int64_t all_gather_bytes_received(int64_t bytes_per_rank, int ranks) {
  return ranks > 1 ? bytes_per_rank * (ranks - 1) : 0;
}

Result<int64_t> emulated_all_gather_ns(int64_t bytes_received, double bytes_per_second,
                                       std::span<const double> jitter_ms) {
  if (bytes_received < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "all-gather of " + std::to_string(bytes_received) + " bytes received");
  }
  RUNAHEAD_RETURN_IF_ERROR(check_rate(bytes_per_second));
  double ns = 0.0;
  if (bytes_per_second > 0.0) ns = static_cast<double>(bytes_received) / bytes_per_second * 1e9;
  for (size_t i = 0; i < jitter_ms.size(); ++i) {
    if (!non_negative(jitter_ms[i])) {
      return make_error(ErrorCode::kInvalidArgument, "jitter draw " + std::to_string(i) + " of " +
                                                         std::to_string(jitter_ms[i]) +
                                                         " ms: must be finite and at least 0");
    }
    ns += jitter_ms[i] * 1e6;
  }
  return static_cast<int64_t>(std::llround(ns));
}

Result<EmulatedLink> EmulatedLink::create(LinkShape shape, uint64_t seed, int rank) {
  RUNAHEAD_RETURN_IF_ERROR(check_shape(shape));
  if (rank < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "emulated link of rank " + std::to_string(rank) + ": rank must be >= 0");
  }
  return EmulatedLink(shape, seed, rank);
}

EmulatedLink::EmulatedLink(LinkShape shape, uint64_t seed, int rank) : shape_(shape) {
  // Seed and rank both feed the stream, so rank r's draws differ from rank r+1's under any seed.
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(rank)};
  rng_.seed(sequence);
}

Result<int64_t> EmulatedLink::next_all_gather_ns(int64_t bytes_per_rank, int ranks) {
  draws_.clear();
  if (shape_.max_jitter_ms > 0.0) {
    std::uniform_real_distribution<double> jitter(0.0, shape_.max_jitter_ms);
    for (int step = 1; step < ranks; ++step) draws_.push_back(jitter(rng_));
  }
  return emulated_all_gather_ns(all_gather_bytes_received(bytes_per_rank, ranks),
                                shape_.bytes_per_second, draws_);
}

}  // namespace runahead::tsp
