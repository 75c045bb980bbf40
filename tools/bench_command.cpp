// runahead bench: time-to-first-token sweeps on a local cluster. It starts the coordinator and
// the workers once, then for each context length and scheme submits random prompts (warm-up
// runs first) and records the TTFT the coordinator measured, as CSV rows and a summary with
// model FLOPs utilization and the speedup over one worker.
//
// Schemes: single (one worker, the whole prompt), kvr-even (equal slices), kvr-balanced (the
// coordinator's cost-model partition), kvr-searched (its measured partition table, from a
// profile), each over all workers unless one. With --profile the coordinator's balanced
// partition is the transfer-aware solver's (docs/load-balancing.md).
#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "core/statistics.h"
#include "model/host_model.h"
#include "model/random_model.h"
#include "runahead/coordinator.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/coordinator_flags.h"
#include "tools/local_cluster.h"

namespace runahead::cli {
namespace {

struct BenchOptions {
  LocalClusterOptions cluster;
  std::vector<int64_t> tokens = {4096};
  std::vector<std::string> schemes = {"single", "kvr-even", "kvr-balanced"};
  int repeat = 3;
  int warmup = 1;
  std::string csv;
  std::string link = "default";  // a label for the CSV: what connects the workers
  double peak_tflops = 989.0;    // dense bf16 of an H100/H200 SXM
  uint64_t seed = 1;
  int verify_tokens = 0;  // > 0: every scheme must generate these tokens as one worker does
};

struct Run {
  std::string scheme;
  int64_t tokens = 0;
  int repeat = 0;
  int workers = 0;
  double ttft_ms = 0.0;
  std::vector<int64_t> cuts;
};

// The request of one run: a random prompt and the scheme's partition.
Result<RequestOptions> make_request(const std::string& scheme, int64_t tokens, int workers,
                                    int vocab, std::mt19937_64& random) {
  RequestOptions request;
  request.max_new_tokens = 1;
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  request.prompt_tokens.resize(static_cast<size_t>(tokens));
  for (int32_t& id : request.prompt_tokens) id = token(random);
  using Scheme = PartitionOptions::Scheme;
  if (scheme == "single") {
    request.partition.scheme = Scheme::kExplicit;
    request.partition.cuts = {0, tokens};
  } else if (scheme == "kvr-even") {
    request.partition.scheme = Scheme::kEven;
    request.partition.workers = workers;
  } else if (scheme == "kvr-balanced") {
    request.partition.scheme = Scheme::kBalanced;
    request.partition.workers = workers;
  } else if (scheme == "kvr-searched") {
    request.partition.scheme = Scheme::kSearched;
    request.partition.workers = workers;
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown scheme '" + scheme +
                          "' (expected single, kvr-even, kvr-balanced or kvr-searched)");
  }
  return request;
}

// " w1 250.1/0.0 w2 240.3/12.5": each worker's compute and prefix-wait time, summed over layers.
std::string describe_timeline(const std::vector<LayerTimeline>& timeline) {
  std::map<uint64_t, std::pair<double, double>> per_worker;
  for (const LayerTimeline& layer : timeline) {
    per_worker[layer.worker_id].first += layer.compute_ms;
    per_worker[layer.worker_id].second += layer.wait_ms;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  for (const auto& [worker, time] : per_worker) {
    out << " w" << worker << " " << time.first << "/" << time.second;
  }
  return out.str();
}

std::string join_cuts(const std::vector<int64_t>& cuts) {
  std::string out;
  for (int64_t cut : cuts) out += (out.empty() ? "" : ":") + std::to_string(cut);
  return out;
}

int run_bench(const BenchOptions& options) {
  auto fail = [](const std::string& message) {
    std::cerr << "runahead bench: " << message << "\n";
    return 1;
  };
  if (options.repeat < 1) return fail("--repeat must be at least 1");
  for (const std::string& scheme : options.schemes) {
    if (scheme == "kvr-searched" && options.cluster.coordinator.profile_path.empty()) {
      return fail(
          "kvr-searched needs --profile (a profile with a measured partition table, "
          "from runahead calibrate --search-lengths)");
    }
  }
  auto config = model_config(options.cluster.worker.model);
  if (!config) return fail(config.error().message);
  for (int64_t tokens : options.tokens) {
    if (tokens < options.cluster.workers || tokens > config->max_positions) {
      return fail("--tokens " + std::to_string(tokens) + ": outside [" +
                  std::to_string(options.cluster.workers) + ", " +
                  std::to_string(config->max_positions) + "] for this model and worker count");
    }
  }
  std::ofstream csv;
  if (!options.csv.empty()) {
    csv.open(options.csv);
    if (!csv) return fail("cannot write " + options.csv);
    csv << "scheme,model,gpus,tokens,ttft_ms,repeat,link,mfu,cuts\n";
  }
  LocalClusterOptions cluster_options = options.cluster;
  cluster_options.coordinator.min_tokens_per_worker = 1;
  auto cluster = LocalCluster::start(cluster_options);
  if (!cluster) return fail(cluster.error().message);
  Coordinator& coordinator = (*cluster)->coordinator();

  const std::string& model = options.cluster.worker.model;
  const std::string model_label =
      is_random_model_path(model) ? model.substr(model.find(':') + 1) : config->architecture_name;
  std::mt19937_64 random(options.seed);
  const int vocab = std::min(config->vocab_size, 32000);
  std::vector<Run> runs;
  for (int64_t tokens : options.tokens) {
    if (options.verify_tokens > 0) {
      // One prompt through every scheme, greedy: the tokens must equal one worker's.
      std::vector<int32_t> reference;
      for (const std::string& scheme : options.schemes) {
        const int workers = scheme == "single" ? 1 : options.cluster.workers;
        auto request = make_request(scheme, tokens, workers, vocab, random);
        if (!request) return fail(request.error().message);
        std::mt19937_64 same_prompt(options.seed + static_cast<uint64_t>(tokens));
        std::uniform_int_distribution<int32_t> token(0, vocab - 1);
        for (int32_t& id : request->prompt_tokens) id = token(same_prompt);
        request->max_new_tokens = options.verify_tokens;
        if (scheme != "single" && reference.empty()) {
          RequestOptions single = *request;
          single.partition = PartitionOptions{PartitionOptions::Scheme::kExplicit, 0, {0, tokens}};
          auto handle = coordinator.submit(single);
          auto result = handle ? handle->result() : Result<RequestResult>(handle.error());
          if (!result) return fail("verification on one worker: " + result.error().message);
          reference = result->tokens;
        }
        auto handle = coordinator.submit(*request);
        auto result = handle ? handle->result() : Result<RequestResult>(handle.error());
        if (!result) return fail("verification of " + scheme + ": " + result.error().message);
        if (scheme == "single") {
          if (reference.empty()) reference = result->tokens;
          continue;
        }
        const bool same = result->tokens == reference;
        std::cout << "verify " << scheme << " at " << tokens << " tokens (cuts "
                  << join_cuts(result->cuts) << "): " << result->tokens.size() << " tokens "
                  << (same ? "equal" : "DIFFERENT from") << " one worker's" << std::endl;
        if (!same)
          return fail(scheme + " at " + std::to_string(tokens) +
                      " tokens generated other tokens than one worker");
      }
    }
    for (const std::string& scheme : options.schemes) {
      const int workers = scheme == "single" ? 1 : options.cluster.workers;
      for (int index = -options.warmup; index < options.repeat; ++index) {
        auto request = make_request(scheme, tokens, workers, vocab, random);
        if (!request) return fail(request.error().message);
        auto handle = coordinator.submit(*request);
        if (!handle) return fail(handle.error().message);
        auto result = handle->result();
        if (!result) {
          return fail(scheme + " at " + std::to_string(tokens) +
                      " tokens: " + result.error().message);
        }
        if (index < 0) continue;  // warm-up
        Run run{scheme, tokens, index, workers, result->ttft_ms, result->cuts};
        const double flops = config->prefill_flops(0, tokens);
        const double mfu = flops / (run.ttft_ms * 1e-3) / (options.peak_tflops * 1e12 * workers);
        std::cout << std::left << std::setw(14) << scheme << std::right << std::setw(8) << tokens
                  << " tokens, " << workers << " worker(s), run " << index << ": TTFT "
                  << std::fixed << std::setprecision(1) << run.ttft_ms << " ms, MFU "
                  << std::setprecision(1) << 100.0 * mfu << "%, cuts " << join_cuts(run.cuts)
                  << ", compute/wait ms per worker" << describe_timeline(result->timeline)
                  << std::endl;
        if (csv) {
          csv << scheme << "," << model_label << "," << workers << "," << tokens << ","
              << std::setprecision(3) << run.ttft_ms << "," << index << "," << options.link << ","
              << std::setprecision(4) << mfu << "," << join_cuts(run.cuts) << "\n";
          csv.flush();
        }
        runs.push_back(std::move(run));
      }
    }
  }
  (*cluster)->stop();

  // Summary: median per scheme and length, with the speedup over one worker.
  std::map<std::pair<int64_t, std::string>, std::vector<double>> by_case;
  for (const Run& run : runs) by_case[{run.tokens, run.scheme}].push_back(run.ttft_ms);
  std::cout << "\n"
            << std::left << std::setw(14) << "scheme" << std::right << std::setw(8) << "tokens"
            << std::setw(12) << "ttft_ms" << std::setw(9) << "mfu" << std::setw(14) << "vs single"
            << "\n";
  for (const auto& [key, values] : by_case) {
    const auto& [tokens, scheme] = key;
    const double ttft = median(values);
    const int workers = scheme == "single" ? 1 : options.cluster.workers;
    const double mfu =
        config->prefill_flops(0, tokens) / (ttft * 1e-3) / (options.peak_tflops * 1e12 * workers);
    std::cout << std::left << std::setw(14) << scheme << std::right << std::setw(8) << tokens
              << std::setw(12) << std::fixed << std::setprecision(1) << ttft << std::setw(8)
              << std::setprecision(1) << 100.0 * mfu << "%";
    auto single = by_case.find({tokens, "single"});
    if (single != by_case.end() && scheme != "single") {
      const double speedup = median(single->second) / ttft;
      std::cout << std::setw(9) << std::setprecision(2) << speedup << "x (" << std::setprecision(0)
                << 100.0 * speedup / workers << "% scaling)";
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* command = app.add_subcommand(
      "bench",
      "Time-to-first-token sweeps on a cluster on this machine (worker i on GPU i with "
      "--device cuda): context lengths x schemes, warm-up runs first; CSV rows and a summary "
      "with model FLOPs utilization and the speedup over one worker.");
  add_local_cluster_flags(command, options->cluster);
  command->add_option("--tokens", options->tokens, "context lengths, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  command
      ->add_option("--schemes", options->schemes,
                   "single, kvr-even, kvr-balanced, kvr-searched (needs --profile); "
                   "comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  command->add_option("--repeat", options->repeat, "timed runs per case")->capture_default_str();
  command->add_option("--warmup", options->warmup, "untimed runs before them")
      ->capture_default_str();
  command->add_option("--csv", options->csv, "write one row per timed run to this file");
  command->add_option("--link", options->link, "label of the link condition in the CSV")
      ->capture_default_str();
  command
      ->add_option("--peak-tflops", options->peak_tflops,
                   "peak dense TFLOP/s of one device, for utilization")
      ->capture_default_str();
  command->add_option("--seed", options->seed, "seed of the random prompts")->capture_default_str();
  command
      ->add_option("--verify", options->verify_tokens,
                   "before timing each length, generate this many tokens greedily from one "
                   "prompt with every scheme and fail unless they equal one worker's")
      ->check(CLI::NonNegativeNumber);
  add_coordinator_flags(command, options->cluster.coordinator, CoordinatorFlagScope::kProfile);
  command->callback([options] {
    block_termination_signals();
    const int code = run_bench(*options);
    if (code != 0) std::exit(code);
  });
}

}  // namespace runahead::cli
