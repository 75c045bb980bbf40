#include "planner/partition.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace runahead {
namespace {

Status check_shape(int64_t tokens, size_t workers) {
  if (workers == 0) return make_error(ErrorCode::kInvalidArgument, "partition: no workers");
  if (tokens < static_cast<int64_t>(workers)) {
    return make_error(ErrorCode::kInvalidArgument, "partition: " + std::to_string(tokens) +
                                                       " tokens cannot be split over " +
                                                       std::to_string(workers) + " workers");
  }
  return Status::ok();
}

// The most tokens a worker starting at `begin` can take within `budget` seconds (real-valued).
double tokens_within(const SliceCost& cost, double begin, double budget) {
  const double linear = cost.per_token + cost.per_key * begin;
  if (cost.per_key <= 0.0) return linear > 0.0 ? budget / linear : 1e30;
  // (b/2) n^2 + (a + b s) n - T = 0
  const double half_b = cost.per_key / 2.0;
  return (-linear + std::sqrt(linear * linear + 4.0 * half_b * budget)) / (2.0 * half_b);
}

}  // namespace

Result<Partition> even_partition(int64_t tokens, int workers) {
  RUNAHEAD_RETURN_IF_ERROR(check_shape(tokens, static_cast<size_t>(std::max(workers, 0))));
  Partition cuts(static_cast<size_t>(workers) + 1);
  for (int i = 0; i <= workers; ++i) cuts[i] = tokens * i / workers;
  return cuts;
}

Result<Partition> balanced_partition(int64_t tokens, const std::vector<SliceCost>& costs) {
  RUNAHEAD_RETURN_IF_ERROR(check_shape(tokens, costs.size()));
  for (size_t i = 0; i < costs.size(); ++i) {
    if (!(costs[i].per_token >= 0.0) || !(costs[i].per_key >= 0.0) ||
        costs[i].per_token + costs[i].per_key <= 0.0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "partition: worker " + std::to_string(i) + " has an invalid cost model");
    }
  }
  const size_t workers = costs.size();
  // A worker reaching token e from s costs a (e - s) + b (e^2 - s^2) / 2, which only falls as s
  // grows: so for a budget T, letting each worker take all it can in turn is feasible whenever
  // any partition is. Bisect on T with that greedy check.
  Partition cuts(workers + 1, 0);
  auto feasible = [&](double budget) {
    int64_t begin = 0;
    for (size_t i = 0; i < workers; ++i) {
      const int64_t limit = tokens - static_cast<int64_t>(workers - 1 - i) - begin;
      const double estimate = tokens_within(costs[i], static_cast<double>(begin), budget);
      int64_t n =
          static_cast<int64_t>(std::clamp(std::floor(estimate), 0.0, static_cast<double>(limit)));
      while (n < limit && costs[i].seconds(begin, n + 1) <= budget) ++n;
      while (n > 0 && costs[i].seconds(begin, n) > budget) --n;
      if (n < 1 || (i + 1 == workers && n != limit)) return false;
      begin += n;
      cuts[i + 1] = begin;
    }
    return true;
  };
  double low = 0.0;
  double high = 1e-12;
  while (!feasible(high)) high *= 2.0;
  for (int iteration = 0; iteration < 200 && low < high; ++iteration) {
    const double middle = low + (high - low) / 2.0;
    if (middle <= low || middle >= high) break;
    (feasible(middle) ? high : low) = middle;
  }
  feasible(high);
  return cuts;
}

double predicted_makespan(const Partition& cuts, const std::vector<SliceCost>& costs) {
  double worst = 0.0;
  for (size_t i = 0; i + 1 < cuts.size() && i < costs.size(); ++i) {
    worst = std::max(worst, costs[i].seconds(cuts[i], cuts[i + 1] - cuts[i]));
  }
  return worst;
}

std::string cuts_text(const Partition& cuts) {
  std::string out = "[";
  for (size_t i = 0; i < cuts.size(); ++i) out += (i ? ", " : "") + std::to_string(cuts[i]);
  return out + "]";
}

}  // namespace runahead
