#include "planner/plan.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <utility>

#include "planner/chain_solver.h"
#include "planner/claimed_costs.h"

namespace runahead {
namespace {

// The coordinator validates a request's cuts when it accepts it; a plan never trusts them.
Status check_explicit_cuts(const Partition& cuts, int64_t prompt_tokens) {
  bool increasing = cuts.size() >= 2 && cuts.front() == 0 && cuts.back() == prompt_tokens;
  for (size_t i = 1; increasing && i < cuts.size(); ++i) increasing = cuts[i] > cuts[i - 1];
  if (!increasing) {
    return make_error(ErrorCode::kInvalidArgument,
                      "explicit cut points must rise strictly from 0 to the prompt length " +
                          std::to_string(prompt_tokens));
  }
  return Status::ok();
}

// How many workers the request runs on: its explicit slices, else the count it asks for, else
// as many as the prompt keeps busy (within the configured maximum).
size_t worker_count(const PlanRequest& request, size_t available, const PlannerOptions& options) {
  if (request.scheme == PartitionScheme::kExplicit) return request.cuts.size() - 1;
  if (request.workers > 0) return std::min(available, request.workers);
  size_t count = available;
  if (options.max_workers_per_request > 0) {
    count = std::min(count, options.max_workers_per_request);
  }
  return std::min<size_t>(
      count, static_cast<size_t>(std::max<int64_t>(
                 1, request.prompt_tokens / std::max<int64_t>(1, options.min_tokens_per_worker))));
}

// The `count` least busy workers, in chain order.
std::vector<size_t> least_busy(std::span<const PlanWorker> workers, size_t count) {
  std::vector<size_t> chosen(workers.size());
  std::iota(chosen.begin(), chosen.end(), size_t{0});
  if (count < workers.size()) {
    std::stable_sort(chosen.begin(), chosen.end(), [&](size_t a, size_t b) {
      return workers[a].active_requests < workers[b].active_requests;
    });
    chosen.resize(count);
    std::sort(chosen.begin(), chosen.end());
  }
  return chosen;
}

}  // namespace

Result<Plan> plan(const PlanRequest& request, std::span<const PlanWorker> workers,
                  const Profile* profile, const PlannerOptions& options) {
  if (workers.empty()) return make_error(ErrorCode::kUnavailable, "no workers");
  const int64_t tokens = request.prompt_tokens;
  if (request.scheme == PartitionScheme::kExplicit) {
    RUNAHEAD_RETURN_IF_ERROR(check_explicit_cuts(request.cuts, tokens));
  }
  const size_t count = worker_count(request, workers.size(), options);
  if (count > workers.size()) {
    return make_error(ErrorCode::kUnavailable, "the partition asks for " + std::to_string(count) +
                                                   " workers, " + std::to_string(workers.size()) +
                                                   " are connected");
  }
  Plan planned;
  planned.chain = least_busy(workers, count);
  std::vector<SliceCost> costs;
  std::vector<ChainWorker> chain_workers;
  bool measured = true;
  for (size_t index : planned.chain) {
    const ChainWorker& worker = workers[index].chain;
    costs.push_back(worker.measured);
    chain_workers.push_back(worker);
    measured = measured && worker.measured.per_token > 0.0;
  }
  const bool searched = request.scheme == PartitionScheme::kSearched;
  const bool balanced = searched || request.scheme == PartitionScheme::kBalanced;
  std::optional<Partition> table =
      searched && profile != nullptr ? profile->searched_cuts(tokens, count) : std::nullopt;
  if (searched && !table) {
    planned.fallback = "no searched partition for " + std::to_string(count) + " worker(s)" +
                       (profile != nullptr ? " in the profile" : " (no profile)") +
                       "; balanced instead";
  }
  Result<Partition> cuts = make_error(ErrorCode::kInternal, "no partition");
  if (request.scheme == PartitionScheme::kExplicit) {
    planned.method = PlanMethod::kExplicit;
    cuts = request.cuts;
  } else if (table) {
    planned.method = PlanMethod::kSearched;
    cuts = std::move(*table);
  } else if (balanced && profile != nullptr) {
    // The profile's transfer-aware model; it may leave workers out when the request did not
    // fix their number and fewer predict a faster first token.
    planned.method = PlanMethod::kChainModel;
    SolverOptions solver;
    solver.allow_fewer_workers = request.workers == 0;
    Result<ChainPlan> best = fastest_partition(profile->chain_model(chain_workers), tokens, solver);
    if (!best) return best.status();
    std::vector<size_t> chosen;
    for (size_t index : best->chain) chosen.push_back(planned.chain[index]);
    planned.chain = std::move(chosen);
    cuts = std::move(best->cuts);
  } else if (balanced && measured) {
    planned.method = PlanMethod::kProbedCosts;
    cuts = balanced_partition(tokens, trusted_costs(costs));
  } else {
    planned.method = PlanMethod::kEven;
    cuts = even_partition(tokens, static_cast<int>(count));
  }
  if (!cuts) return cuts.status();
  planned.cuts = std::move(cuts).value();
  return planned;
}

}  // namespace runahead
