#include "planner/calibration.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "core/statistics.h"
#include "planner/cost_fit.h"

namespace runahead {
namespace {

// `tokens` split in proportion to `weights`, each slice at least one token.
Partition weighted_cuts(int64_t tokens, const std::vector<double>& weights) {
  double total = 0.0;
  for (double w : weights) total += w;
  Partition cuts(weights.size() + 1, 0);
  double sum = 0.0;
  for (size_t i = 0; i + 1 < weights.size(); ++i) {
    sum += weights[i];
    const auto cut = static_cast<int64_t>(std::llround(sum / total * static_cast<double>(tokens)));
    cuts[i + 1] =
        std::clamp(cut, cuts[i] + 1, tokens - static_cast<int64_t>(weights.size() - 1 - i));
  }
  cuts.back() = tokens;
  return cuts;
}

Partition equal_cuts(int64_t tokens, size_t workers) {
  return weighted_cuts(tokens, std::vector<double>(workers, 1.0));
}

// Each measurement the median of `repeats` runs; the layers and bytes are the first run's.
Result<TimedRequest> median_of(const TimeRequest& time_request, const Partition& cuts,
                               size_t workers, int repeats) {
  std::vector<TimedRequest> runs;
  for (int r = 0; r < repeats; ++r) {
    RUNAHEAD_ASSIGN_OR_RETURN(TimedRequest run, time_request(cuts));
    if (run.compute_seconds.size() != workers) {
      return make_error(ErrorCode::kInternal,
                        "a timed request reports " + std::to_string(run.compute_seconds.size()) +
                            " workers' compute, not " + std::to_string(workers));
    }
    runs.push_back(std::move(run));
  }
  TimedRequest out = runs.front();
  std::vector<double> values;
  for (const TimedRequest& run : runs) values.push_back(run.ttft_seconds);
  out.ttft_seconds = median(values);
  for (size_t i = 0; i < workers; ++i) {
    values.clear();
    for (const TimedRequest& run : runs) values.push_back(run.compute_seconds[i]);
    out.compute_seconds[i] = median(values);
  }
  return out;
}

Status check_options(const CalibrationOptions& options, size_t workers) {
  if (workers == 0) return make_error(ErrorCode::kInvalidArgument, "calibration: no workers");
  if (options.repeat < 1) {
    return make_error(ErrorCode::kInvalidArgument, "calibration: repeat must be at least 1");
  }
  if (options.lengths.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "calibration: needs at least one length");
  }
  for (const std::vector<int64_t>* lengths : {&options.lengths, &options.search_lengths}) {
    for (int64_t tokens : *lengths) {
      if (tokens < static_cast<int64_t>(workers)) {
        return make_error(ErrorCode::kInvalidArgument, "calibration: " + std::to_string(tokens) +
                                                           " tokens cannot be split over " +
                                                           std::to_string(workers) + " workers");
      }
    }
  }
  return Status::ok();
}

// Step 4: the searched table (KVR-S), from the fitted profile's model partitions.
Result<std::vector<SearchedPartition>> search_lengths(const Profile& fitted,
                                                      std::span<const ChainWorker> workers,
                                                      const TimeRequest& time_request,
                                                      const CalibrationOptions& options,
                                                      CalibrationObserver* observer) {
  const ChainModel model = fitted.chain_model(workers);
  std::vector<SearchedPartition> table;
  for (int64_t tokens : options.search_lengths) {
    RUNAHEAD_ASSIGN_OR_RETURN(ChainPlan plan, fastest_partition(model, tokens));
    std::map<Partition, double> timed;
    auto measure = [&](const Partition& cuts) -> Result<double> {
      if (auto it = timed.find(cuts); it != timed.end()) return it->second;
      RUNAHEAD_ASSIGN_OR_RETURN(TimedRequest m,
                                median_of(time_request, cuts, workers.size(), options.repeat));
      timed[cuts] = m.ttft_seconds;
      return m.ttft_seconds;
    };
    CalibrationSearch search;
    search.tokens = tokens;
    RUNAHEAD_ASSIGN_OR_RETURN(search.model_measured_seconds, measure(plan.cuts));
    search.even = equal_cuts(tokens, workers.size());
    RUNAHEAD_ASSIGN_OR_RETURN(search.even_measured_seconds, measure(search.even));
    PartitionSearchOptions search_options;
    search_options.min_step = std::max<int64_t>(1, tokens / 64);
    search_options.max_measurements = static_cast<size_t>(std::max(1, options.search_budget));
    RUNAHEAD_ASSIGN_OR_RETURN(search.searched,
                              search_partition(tokens, plan.cuts, measure, search_options));
    search.model_plan = std::move(plan);
    SearchedPartition row;
    row.tokens = tokens;
    const Partition& found = search.searched.cuts;
    for (size_t i = 1; i + 1 < found.size(); ++i) {
      row.fractions.push_back(static_cast<double>(found[i]) / static_cast<double>(tokens));
    }
    row.measured_ttft_ms = search.searched.seconds * 1e3;
    row.model_ttft_ms = search.model_measured_seconds * 1e3;
    table.push_back(std::move(row));
    if (observer != nullptr) observer->searched(search);
  }
  return table;
}

}  // namespace

std::vector<Partition> calibration_partitions(int64_t tokens, size_t workers) {
  std::vector<Partition> out;
  out.push_back(equal_cuts(tokens, workers));
  if (workers >= 2) {
    const auto heavy = static_cast<double>(3 * (workers - 1));
    std::vector<double> front(workers, 1.0);
    front.front() = heavy;
    out.push_back(weighted_cuts(tokens, front));
    std::vector<double> back(workers, 1.0);
    back.back() = heavy;
    out.push_back(weighted_cuts(tokens, back));
    if (tokens - 1 >= static_cast<int64_t>(workers - 1)) {
      Partition idle_last = equal_cuts(tokens - 1, workers - 1);
      idle_last.push_back(tokens);
      out.push_back(idle_last);
      Partition idle_first = equal_cuts(tokens - 1, workers - 1);
      for (int64_t& cut : idle_first) cut += 1;
      idle_first.insert(idle_first.begin(), 0);
      out.push_back(idle_first);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

ProfileModel profile_model_of(const ModelConfig& config) {
  ProfileModel model;
  model.layers = config.n_layers;
  // Multiply-adds per token: Q/K/V projection against output projection and MLP.
  const double hidden = config.hidden;
  const double qkv = hidden * config.qkv_dim();
  const double out = static_cast<double>(config.q_dim()) * hidden;
  const double mlp =
      (config.activation == Activation::kSwiGlu ? 3.0 : 2.0) * hidden * config.ffn_hidden;
  model.qkv_fraction = qkv / (qkv + out + mlp);
  model.name = config.architecture_name;
  model.hidden = config.hidden;
  model.kv_dim = config.kv_dim();
  model.ffn_hidden = config.ffn_hidden;
  return model;
}

Result<Profile> calibrate(std::span<const ChainWorker> workers, const TimeRequest& time_request,
                          const CalibrationOptions& options, CalibrationObserver* observer) {
  RUNAHEAD_RETURN_IF_ERROR(check_options(options, workers.size()));
  const size_t count = workers.size();
  const double qkv_fraction = options.model.qkv_fraction;

  // 1. Compute costs.
  RUNAHEAD_ASSIGN_OR_RETURN(TimedRequest warm,
                            time_request(equal_cuts(options.lengths.front(), count)));
  std::vector<std::vector<ComputeSample>> compute(count);
  std::vector<TtftSample> ttfts;
  const int layers = warm.layers;
  double kv_bytes_per_token = 0.0;
  for (int64_t tokens : options.lengths) {
    for (const Partition& cuts : calibration_partitions(tokens, count)) {
      RUNAHEAD_ASSIGN_OR_RETURN(TimedRequest m,
                                median_of(time_request, cuts, count, options.repeat));
      for (size_t i = 0; i < count; ++i) {
        compute[i].push_back({cuts[i], cuts[i + 1] - cuts[i], m.compute_seconds[i], i + 1 < count});
      }
      ttfts.push_back({{}, cuts, m.ttft_seconds});
      if (count >= 2)
        kv_bytes_per_token = m.first_bytes_out_per_layer / static_cast<double>(cuts[1]);
      if (observer != nullptr) observer->timed(tokens, cuts, m);
    }
  }
  if (options.model.layers > 0 && options.model.layers != layers) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the model has " + std::to_string(options.model.layers) +
                          " layers, the workers ran " + std::to_string(layers));
  }

  Profile profile;
  profile.model = options.model;
  profile.model.layers = layers;
  profile.model.kv_bytes_per_token = kv_bytes_per_token;
  std::vector<WorkerCost> costs;
  for (size_t i = 0; i < count; ++i) {
    auto fit = fit_compute(compute[i], qkv_fraction);
    if (!fit) {
      return make_error(fit.error().code, "worker " + workers[i].name + ": " + fit.error().message);
    }
    profile.workers.push_back({workers[i].name, workers[i].backend, fit->cost, fit->relative_rms});
    costs.push_back(fit->cost);
  }

  // 2. Link and overhead, given the compute costs.
  const ChainModel compute_only = ChainModel::uniform(costs, {}, layers, kv_bytes_per_token, 0.0);
  RUNAHEAD_ASSIGN_OR_RETURN(LinkFit link, fit_link_and_overhead(compute_only, ttfts));
  // 3. The last worker's terms, the link and the overhead refined against the TTFTs: a worker
  // with a successor waits for its device every layer (its block must be complete before it
  // is sent), so its compute times are whole; the last one's can miss work still queued on an
  // asynchronous device.
  ChainModel refined =
      ChainModel::uniform(costs, link.link, layers, kv_bytes_per_token, link.overhead_seconds);
  const std::vector<size_t> last = {count - 1};
  RUNAHEAD_ASSIGN_OR_RETURN(double refined_error, refine_to_ttft(refined, ttfts, last));
  for (size_t i = 0; i < count; ++i) profile.workers[i].cost = refined.workers[i];
  if (count > 1) profile.default_link = refined.links[0][1];
  profile.overhead_seconds = refined.overhead_seconds;
  if (observer != nullptr) {
    observer->fitted({.profile = profile,
                      .compute_costs = costs,
                      .requests = ttfts.size(),
                      .link_fit_error = link.relative_rms,
                      .refined_error = refined_error});
  }

  // 4. KVR-S.
  if (count >= 2) {
    RUNAHEAD_ASSIGN_OR_RETURN(profile.searched,
                              search_lengths(profile, workers, time_request, options, observer));
  }
  return profile;
}

}  // namespace runahead
