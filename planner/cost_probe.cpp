#include "planner/cost_probe.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "core/statistics.h"

namespace runahead {
namespace {

Result<double> median_seconds(const Transformer& transformer, std::span<const int32_t> tokens,
                              int64_t begin, Workspace& ws, KvCache& cache, int repeats) {
  std::vector<double> times;
  // The backend runs asynchronously (a GPU): time the work, not its launch.
  RUNAHEAD_RETURN_IF_ERROR(transformer.backend().synchronize());
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    RUNAHEAD_RETURN_IF_ERROR(transformer.prefill_slice(tokens, begin, ws, cache));
    RUNAHEAD_RETURN_IF_ERROR(transformer.backend().synchronize());
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return median(std::move(times));
}

}  // namespace

Result<SliceCost> measure_slice_cost(const Transformer& transformer, int64_t tokens, int repeats) {
  const ModelConfig& c = transformer.config();
  // The second slice follows a prefix three times its length, so that the attention part
  // stands out of the noise.
  tokens = std::min<int64_t>(tokens, c.max_positions / 4);
  const int64_t prefix = 3 * tokens;
  if (tokens < 1 || repeats < 1) {
    return make_error(ErrorCode::kInvalidArgument, "cost probe: needs at least one token and run");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(KvCache cache,
                            KvCache::create(transformer.backend(), c, prefix + tokens));
  RUNAHEAD_ASSIGN_OR_RETURN(Workspace ws, transformer.make_workspace(tokens));
  std::vector<int32_t> ids(static_cast<size_t>(tokens));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i % c.vocab_size);
  // Warm-up (first-touch of memory, library start-up), then the two shapes.
  RUNAHEAD_RETURN_IF_ERROR(transformer.prefill_slice(ids, 0, ws, cache));
  RUNAHEAD_ASSIGN_OR_RETURN(const double alone,
                            median_seconds(transformer, ids, 0, ws, cache, repeats));
  RUNAHEAD_ASSIGN_OR_RETURN(const double after_prefix,
                            median_seconds(transformer, ids, prefix, ws, cache, repeats));
  const auto n = static_cast<double>(tokens);
  SliceCost cost;
  cost.per_key = std::max(0.0, (after_prefix - alone) / (n * static_cast<double>(prefix)));
  cost.per_token = std::max(1e-12, (alone - cost.per_key * n * n / 2.0) / n);
  return cost;
}

}  // namespace runahead
