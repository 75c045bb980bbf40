// runahead calibrate: measures a running cluster and writes a profile for the coordinator's
// load balancing (--profile). Through an ordinary client it submits requests with explicit
// partitions over all workers and reads their timelines:
//  1. each worker's compute time per slice [s, s + n) (the timeline's compute, all layers), at
//     several prompt lengths and partitions (even, front-heavy, back-heavy, last worker nearly
//     idle), fitted to fixed + a n + b n (s + n / 2);
//  2. the link and the per-request overhead, fitted so that the chain model predicts the
//     measured TTFTs of the same requests (with the last worker nearly idle the whole prefix
//     crosses the links on the critical path), then every term refined against the TTFTs;
//  3. with --search-lengths, KVR-S: for each length the model's partition is timed, then a
//     measured hierarchical search refines it; both go into the profile's table, and the gap
//     between them is printed.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "model/host_model.h"
#include "model/random_model.h"
#include "planner/chain_solver.h"
#include "planner/cost_fit.h"
#include "planner/partition_search.h"
#include "planner/profile.h"
#include "runahead/client.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace runahead::cli {
namespace {

struct CalibrateOptions {
  std::string coordinator;
  std::string out;
  std::string model;  // optional: shape, vocabulary, qkv share
  std::vector<int64_t> lengths = {128, 512, 2048};
  std::vector<int64_t> search_lengths;
  int repeat = 3;
  int search_budget = 80;      // partitions timed per searched length
  double qkv_fraction = -1.0;  // < 0: from the model, else 0.25
  int64_t timeout_ms = 600000;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string show(const Partition& cuts) {
  std::string out = "[";
  for (size_t i = 0; i < cuts.size(); ++i) out += (i ? ", " : "") + std::to_string(cuts[i]);
  return out + "]";
}

std::string ms(double seconds) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << seconds * 1e3 << " ms";
  return out.str();
}

std::string percent(double value) {
  std::ostringstream out;
  out << std::showpos << std::fixed << std::setprecision(1) << value * 100.0 << "%";
  return out.str();
}

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

struct ModelFacts {
  int vocab = 32;  // prompts use ids below this
  int layers = 0;
  double qkv_fraction = 0.25;
  int max_positions = 0;
  ProfileModel shape;
};

Result<ModelFacts> model_facts(const std::string& model) {
  ModelFacts facts;
  if (model.empty()) return facts;
  ModelConfig config;
  if (is_random_model_path(model)) {
    RUNAHEAD_ASSIGN_OR_RETURN(config, preset_config(model.substr(model.find(':') + 1)));
  } else {
    RUNAHEAD_ASSIGN_OR_RETURN(HostModel host, load_model(model));
    config = host.config;
  }
  facts.vocab = std::min(config.vocab_size, 32000);
  facts.layers = config.n_layers;
  facts.max_positions = config.max_positions;
  // Multiply-adds per token: Q/K/V projection against output projection and MLP.
  const double hidden = config.hidden;
  const double qkv = hidden * config.qkv_dim();
  const double out = static_cast<double>(config.q_dim()) * hidden;
  const double mlp =
      (config.activation == Activation::kSwiGlu ? 3.0 : 2.0) * hidden * config.ffn_hidden;
  facts.qkv_fraction = qkv / (qkv + out + mlp);
  facts.shape.name = config.architecture_name;
  facts.shape.hidden = config.hidden;
  facts.shape.kv_dim = config.kv_dim();
  facts.shape.ffn_hidden = config.ffn_hidden;
  return facts;
}

// One timed request: its TTFT and, per worker of the chain, its compute time.
struct Measurement {
  double ttft_seconds = 0.0;
  std::vector<double> compute_seconds;  // by chain position
  int layers = 0;
  double first_bytes_out_per_layer = 0.0;  // worker 0's own block, per layer
};

class Calibrator {
 public:
  Calibrator(Client& client, std::vector<WorkerState> workers, const CalibrateOptions& options,
             int vocab)
      : client_(client), workers_(std::move(workers)), options_(options), vocab_(vocab) {}

  size_t workers() const { return workers_.size(); }

  Result<Measurement> once(const Partition& cuts) {
    RequestOptions request;
    request.max_new_tokens = 1;
    const int64_t tokens = cuts.back();
    request.prompt_tokens.resize(static_cast<size_t>(tokens));
    for (int64_t i = 0; i < tokens; ++i) {
      request.prompt_tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % vocab_);
    }
    request.partition.scheme = PartitionOptions::Scheme::kExplicit;
    request.partition.cuts.assign(cuts.begin(), cuts.end());
    RUNAHEAD_ASSIGN_OR_RETURN(RequestHandle handle, client_.submit(request));
    RUNAHEAD_ASSIGN_OR_RETURN(RequestResult result, handle.result_within(options_.timeout_ms));
    Measurement m;
    m.ttft_seconds = result.ttft_ms / 1e3;
    m.compute_seconds.assign(workers_.size(), 0.0);
    std::vector<int> layers(workers_.size(), 0);
    double first_bytes = 0.0;
    for (const LayerTimeline& layer : result.timeline) {
      auto it = std::find_if(workers_.begin(), workers_.end(),
                             [&](const WorkerState& w) { return w.id == layer.worker_id; });
      if (it == workers_.end()) {
        return make_error(ErrorCode::kUnavailable,
                          "worker id " + std::to_string(layer.worker_id) +
                              " ran a calibration request but was not in the cluster at the "
                              "start; did a worker join or restart?");
      }
      const auto position = static_cast<size_t>(it - workers_.begin());
      m.compute_seconds[position] += layer.compute_ms / 1e3;
      ++layers[position];
      if (position == 0) first_bytes += static_cast<double>(layer.bytes_out);
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (layers[i] == 0 || layers[i] != layers[0]) {
        return make_error(ErrorCode::kUnavailable,
                          "the timeline of a request over " + show(cuts) + " has " +
                              std::to_string(layers[i]) + " layers from worker " +
                              workers_[i].name + " (" + std::to_string(layers[0]) +
                              " from the first); were all workers in the chain?");
      }
    }
    m.layers = layers[0];
    m.first_bytes_out_per_layer = first_bytes / m.layers;
    return m;
  }

  // Medians of `repeats` runs.
  Result<Measurement> median_of(const Partition& cuts, int repeats) {
    std::vector<Measurement> runs;
    for (int r = 0; r < repeats; ++r) {
      RUNAHEAD_ASSIGN_OR_RETURN(Measurement m, once(cuts));
      runs.push_back(std::move(m));
    }
    Measurement out = runs.front();
    std::vector<double> values;
    for (const Measurement& m : runs) values.push_back(m.ttft_seconds);
    out.ttft_seconds = median(values);
    for (size_t i = 0; i < workers_.size(); ++i) {
      values.clear();
      for (const Measurement& m : runs) values.push_back(m.compute_seconds[i]);
      out.compute_seconds[i] = median(values);
    }
    return out;
  }

 private:
  Client& client_;
  std::vector<WorkerState> workers_;
  const CalibrateOptions& options_;
  int vocab_;
};

Status check_lengths(const std::vector<int64_t>& lengths, const char* flag, size_t workers,
                     int max_positions) {
  for (int64_t tokens : lengths) {
    if (tokens < static_cast<int64_t>(workers) || (max_positions > 0 && tokens > max_positions)) {
      return make_error(ErrorCode::kInvalidArgument,
                        std::string(flag) + " " + std::to_string(tokens) + ": outside [" +
                            std::to_string(workers) + ", " +
                            (max_positions > 0 ? std::to_string(max_positions) : "...") + "] for " +
                            std::to_string(workers) + " workers and this model");
    }
  }
  return Status::ok();
}

// The partitions timed for the fit at one length: even; the first or the last worker with
// three quarters; the first or the last with one token (the rest even). Each worker so sees
// slices of several lengths after several prefixes, and with the last worker nearly idle the
// whole prefix crosses the links on the critical path.
std::vector<Partition> calibration_partitions(int64_t tokens, size_t workers) {
  std::vector<Partition> out;
  out.push_back(weighted_cuts(tokens, std::vector<double>(workers, 1.0)));
  if (workers >= 2) {
    const auto heavy = static_cast<double>(3 * (workers - 1));
    std::vector<double> front(workers, 1.0);
    front.front() = heavy;
    out.push_back(weighted_cuts(tokens, front));
    std::vector<double> back(workers, 1.0);
    back.back() = heavy;
    out.push_back(weighted_cuts(tokens, back));
    if (tokens - 1 >= static_cast<int64_t>(workers - 1)) {
      Partition idle_last = weighted_cuts(tokens - 1, std::vector<double>(workers - 1, 1.0));
      idle_last.push_back(tokens);
      out.push_back(idle_last);
      Partition idle_first = weighted_cuts(tokens - 1, std::vector<double>(workers - 1, 1.0));
      for (int64_t& cut : idle_first) cut += 1;
      idle_first.insert(idle_first.begin(), 0);
      out.push_back(idle_first);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

int run_calibrate(const CalibrateOptions& options) {
  auto fail = [](const std::string& message) {
    std::cerr << "runahead calibrate: " << message << "\n";
    return 1;
  };
  if (options.repeat < 1) return fail("--repeat must be at least 1");
  if (options.lengths.empty()) return fail("--lengths needs at least one length");
  auto facts = model_facts(options.model);
  if (!facts) return fail(facts.error().message);
  auto client = Client::connect(options.coordinator);
  if (!client) return fail(client.error().message);
  auto status = (*client)->status();
  if (!status) return fail(status.error().message);
  std::vector<WorkerState> workers = status->workers;
  if (workers.empty()) return fail("the coordinator at " + options.coordinator + " has no workers");
  // Requests over every worker run in the order the workers joined.
  std::sort(workers.begin(), workers.end(),
            [](const WorkerState& a, const WorkerState& b) { return a.id < b.id; });
  for (const WorkerState& w : workers) {
    if (w.model_hash != workers.front().model_hash) {
      return fail("workers " + workers.front().name + " and " + w.name + " run different models");
    }
    if (!w.healthy) return fail("worker " + w.name + " is not healthy");
  }
  for (auto [list, flag] : {std::pair{&options.lengths, "--lengths"},
                            std::pair{&options.search_lengths, "--search-lengths"}}) {
    if (Status ok = check_lengths(*list, flag, workers.size(), facts->max_positions); !ok.is_ok()) {
      return fail(ok.message());
    }
  }
  const double qkv_fraction =
      options.qkv_fraction >= 0.0 ? options.qkv_fraction : facts->qkv_fraction;
  std::cout << "calibrating " << workers.size() << " worker(s) at " << options.coordinator
            << " (model " << workers.front().model_hash << ")\n";
  Calibrator calibrator(**client, workers, options, facts->vocab);

  // 1. Compute costs.
  auto warm = calibrator.once(
      weighted_cuts(options.lengths.front(), std::vector<double>(workers.size(), 1.0)));
  if (!warm) return fail(warm.error().message);
  std::vector<std::vector<ComputeSample>> compute(workers.size());
  std::vector<TtftSample> ttfts;
  int layers = warm->layers;
  double kv_bytes_per_token = 0.0;
  for (int64_t tokens : options.lengths) {
    for (const Partition& cuts : calibration_partitions(tokens, workers.size())) {
      auto m = calibrator.median_of(cuts, options.repeat);
      if (!m) return fail(m.error().message);
      for (size_t i = 0; i < workers.size(); ++i) {
        compute[i].push_back(
            {cuts[i], cuts[i + 1] - cuts[i], m->compute_seconds[i], i + 1 < workers.size()});
      }
      ttfts.push_back({{}, cuts, m->ttft_seconds});
      if (workers.size() >= 2) {
        kv_bytes_per_token = m->first_bytes_out_per_layer / static_cast<double>(cuts[1]);
      }
      std::cout << "  " << tokens << " tokens over " << show(cuts) << ": TTFT "
                << ms(m->ttft_seconds) << "; compute";
      for (size_t i = 0; i < workers.size(); ++i) {
        std::cout << (i ? ", " : " ") << workers[i].name << " " << ms(m->compute_seconds[i]);
      }
      std::cout << "\n";
    }
  }
  if (facts->layers > 0 && facts->layers != layers) {
    return fail("--model " + options.model + " has " + std::to_string(facts->layers) +
                " layers, the workers ran " + std::to_string(layers));
  }

  Profile profile;
  profile.model = facts->shape;
  profile.model.hash = workers.front().model_hash;
  profile.model.layers = layers;
  profile.model.kv_bytes_per_token = kv_bytes_per_token;
  profile.model.qkv_fraction = qkv_fraction;
  std::vector<WorkerCost> costs;
  for (size_t i = 0; i < workers.size(); ++i) {
    auto fit = fit_compute(compute[i], qkv_fraction);
    if (!fit) return fail("worker " + workers[i].name + ": " + fit.error().message);
    profile.workers.push_back({workers[i].name, workers[i].backend, fit->cost, fit->relative_rms});
    costs.push_back(fit->cost);
  }

  // 2. Link and overhead, given the compute costs.
  const ChainModel compute_only = ChainModel::uniform(costs, {}, layers, kv_bytes_per_token, 0.0);
  auto link = fit_link_and_overhead(compute_only, ttfts);
  if (!link) return fail(link.error().message);
  // 3. The last worker's terms, the link and the overhead refined against the TTFTs: a worker
  // with a successor waits for its device every layer (its block must be complete before it
  // is sent), so its compute times are whole; the last one's can miss work still queued on an
  // asynchronous device.
  ChainModel refined =
      ChainModel::uniform(costs, link->link, layers, kv_bytes_per_token, link->overhead_seconds);
  const std::vector<size_t> last = {workers.size() - 1};
  auto refined_error = refine_to_ttft(refined, ttfts, last);
  if (!refined_error) return fail(refined_error.error().message);
  for (size_t i = 0; i < workers.size(); ++i) profile.workers[i].cost = refined.workers[i];
  if (workers.size() > 1) profile.default_link = refined.links[0][1];
  profile.overhead_seconds = refined.overhead_seconds;

  std::cout << "model: " << layers << " layers, " << kv_bytes_per_token
            << " K/V bytes per token and layer, Q/K/V share " << qkv_fraction << "\n";
  for (size_t i = 0; i < workers.size(); ++i) {
    const ProfileWorker& w = profile.workers[i];
    std::cout << "worker " << w.name << " (" << w.backend << "): from its compute times a "
              << costs[i].slice.per_token << " s/token, b " << costs[i].slice.per_key
              << " s/(token x key), c " << costs[i].per_prefix_token << " s/forwarded token, fixed "
              << ms(costs[i].fixed_seconds) << " (fit error " << percent(w.fit_error) << ")";
    if (i + 1 == workers.size()) {
      std::cout << "; refined to TTFTs a " << w.cost.slice.per_token << ", b "
                << w.cost.slice.per_key << ", fixed " << ms(w.cost.fixed_seconds);
    }
    std::cout << "\n";
  }
  const LinkCost& fitted = profile.default_link;
  std::cout << "link: latency " << ms(fitted.latency_seconds) << ", bandwidth "
            << (fitted.bytes_per_second > 0.0
                    ? std::to_string(fitted.bytes_per_second / 1e9) + " GB/s"
                    : std::string("no limit seen"))
            << "; overhead " << ms(profile.overhead_seconds) << "\n"
            << "TTFT prediction error (RMS over " << ttfts.size()
            << " requests): " << percent(link->relative_rms)
            << " with the compute times and the fitted link, " << percent(*refined_error)
            << " with the last worker's terms refined\n";

  // 4. KVR-S.
  if (!options.search_lengths.empty() && workers.size() < 2) {
    std::cout << "one worker: nothing to search\n";
  } else if (!options.search_lengths.empty()) {
    std::vector<ChainWorker> chain;
    for (const WorkerState& w : workers) chain.push_back({w.name, w.backend, {}});
    const ChainModel model = profile.chain_model(chain);
    for (int64_t tokens : options.search_lengths) {
      auto plan = fastest_partition(model, tokens);
      if (!plan) return fail(plan.error().message);
      std::map<Partition, double> timed;
      auto measure = [&](const Partition& cuts) -> Result<double> {
        if (auto it = timed.find(cuts); it != timed.end()) return it->second;
        RUNAHEAD_ASSIGN_OR_RETURN(Measurement m, calibrator.median_of(cuts, options.repeat));
        timed[cuts] = m.ttft_seconds;
        return m.ttft_seconds;
      };
      auto model_measured = measure(plan->cuts);
      if (!model_measured) return fail(model_measured.error().message);
      const Partition even = weighted_cuts(tokens, std::vector<double>(workers.size(), 1.0));
      auto even_measured = measure(even);
      if (!even_measured) return fail(even_measured.error().message);
      PartitionSearchOptions search_options;
      search_options.min_step = std::max<int64_t>(1, tokens / 64);
      search_options.max_measurements = static_cast<size_t>(std::max(1, options.search_budget));
      auto found = search_partition(tokens, plan->cuts, measure, search_options);
      if (!found) return fail(found.error().message);
      SearchedPartition row;
      row.tokens = tokens;
      for (size_t i = 1; i + 1 < found->cuts.size(); ++i) {
        row.fractions.push_back(static_cast<double>(found->cuts[i]) / static_cast<double>(tokens));
      }
      row.measured_ttft_ms = found->seconds * 1e3;
      row.model_ttft_ms = *model_measured * 1e3;
      profile.searched.push_back(row);
      std::cout << "search " << tokens << " tokens:\n"
                << "  model    " << show(plan->cuts) << " predicted " << ms(plan->predicted_seconds)
                << ", measured " << ms(*model_measured) << " (prediction "
                << percent(plan->predicted_seconds / *model_measured - 1.0) << ")\n"
                << "  searched " << show(found->cuts) << " measured " << ms(found->seconds) << " ("
                << found->measurements << " partitions timed)\n"
                << "  even     " << show(even) << " measured " << ms(*even_measured) << "\n"
                << "  model partition vs searched: "
                << percent(*model_measured / found->seconds - 1.0)
                << " TTFT, vs even: " << percent(*model_measured / *even_measured - 1.0) << "\n";
    }
  }

  if (Status saved = profile.save(options.out); !saved.is_ok()) return fail(saved.message());
  std::cout << "profile written to " << options.out << "\n";
  (*client)->close();
  return 0;
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto options = std::make_shared<CalibrateOptions>();
  CLI::App* command = app.add_subcommand(
      "calibrate",
      "Measure a running cluster (compute cost of each worker, links, overhead; optionally the "
      "best partitions per length by measured search) and write a profile for "
      "`runahead coordinator --profile`.");
  command->add_option("--coordinator", options->coordinator, "HOST:PORT of the coordinator")
      ->required();
  command->add_option("--out", options->out, "profile file to write (JSON)")->required();
  command
      ->add_option("--lengths", options->lengths,
                   "prompt lengths of the timed requests the cost model is fitted to")
      ->delimiter(',')
      ->capture_default_str();
  command
      ->add_option("--search-lengths", options->search_lengths,
                   "prompt lengths to search the best partition for by timing (KVR-S)")
      ->delimiter(',');
  command->add_option("--repeat", options->repeat, "runs per timed partition (the median counts)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  command
      ->add_option("--search-budget", options->search_budget,
                   "partitions timed at most per searched length")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  command->add_option("--model", options->model,
                      "the workers' model (checkpoint, .gguf or random:PRESET): its shape, "
                      "vocabulary and Q/K/V share of the per-token cost");
  command
      ->add_option("--qkv-fraction", options->qkv_fraction,
                   "share of the per-token cost spent before the prefix is needed (default: "
                   "from --model, else 0.25)")
      ->check(CLI::Range(0.0, 1.0));
  command->add_option("--timeout-ms", options->timeout_ms, "longest wait for one request")
      ->capture_default_str();
  command->callback([options] {
    const int code = run_calibrate(*options);
    if (code != 0) std::exit(code);
  });
}

}  // namespace runahead::cli
