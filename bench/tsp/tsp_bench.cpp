// Time to first token of tensor/sequence-parallel (TSP) prefill across the GPUs of one host: the
// KV-Runahead paper's baseline (tsp-paper) and a zigzag load-balanced form (tsp-strong), one
// thread per GPU in this process, per-layer K/V all-gathers through NCCL on each GPU's compute
// stream. --check compares the last token's logits with a single-GPU prefill instead of timing.
// --link-gbps and --link-jitter-ms emulate a slow or noisy link under every all-gather
// (bench/tsp/link_emulation.h); --link labels the condition in the CSV.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/tsp/link_emulation.h"
#include "bench/tsp/tsp_plan.h"
#include "bench/tsp/tsp_rank.h"
#include "core/statistics.h"
#include "model/random_model.h"

namespace runahead::tsp {
namespace {

using Clock = std::chrono::steady_clock;

// One prefill that every rank runs in lockstep.
struct Job {
  Plan plan;
  const std::vector<int32_t>* prompt = nullptr;
  int repeat = -1;  // -1: warm-up (untimed)
  bool check = false;
};

struct Options {
  std::vector<std::string> schemes = {"tsp-paper", "tsp-strong"};
  std::string model = "llama2-7b";
  int gpus = 0;
  std::vector<int64_t> lengths = {4096, 16384, 32768};
  int warmup = 1;
  int repeats = 3;
  std::string csv;
  bool check = false;
  int64_t check_tokens = 1024;
  double tolerance = 2e-2;
  uint64_t seed = 1234;
  double link_gbps = 0.0;       // GB/s, 0: the real link only
  double link_jitter_ms = 0.0;  // 0: no jitter
  std::string link = "nvlink";

  LinkShape link_shape() const {
    return {.bytes_per_second = link_gbps * 1e9, .max_jitter_ms = link_jitter_ms};
  }
};

// What the ranks share; written under the barriers' ordering.
struct Shared {
  explicit Shared(int ranks) : sync(ranks) {}
  std::barrier<> sync;
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  std::vector<float> tsp_logits;  // from the rank holding the last token
  int check_failures = 0;

  void fail(const std::string& message) {
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) first_error = message;
    failed = true;
  }
};

// ||got - want|| / ||want|| over the whole vocabulary.
double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size() || want.empty()) return INFINITY;
  double diff = 0.0;
  double norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = double{got[i]} - double{want[i]};
    diff += d * d;
    norm += double{want[i]} * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

std::vector<int32_t> random_prompt(int64_t n, int32_t vocab) {
  std::mt19937_64 rng(static_cast<uint64_t>(n));
  std::uniform_int_distribution<int32_t> id(0, vocab - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(n));
  for (int32_t& t : prompt) t = id(rng);
  return prompt;
}

// Appends rows to a CSV file; an existing file must have this header, so rows of another
// layout never end up under it.
class CsvWriter {
 public:
  static constexpr const char* kHeader = "scheme,model,gpus,tokens,ttft_ms,repeat,link";

  explicit CsvWriter(const std::string& path) : path_(path) {
    if (path_.empty()) return;
    const bool fresh = !std::filesystem::exists(path_) || std::filesystem::file_size(path_) == 0;
    if (!fresh) {
      std::ifstream in(path_);
      std::string header;
      std::getline(in, header);
      if (header != kHeader) {
        error_ = path_ + " has the header '" + header + "', not '" + kHeader +
                 "': write to another file";
        return;
      }
    }
    out_.open(path_, std::ios::app);
    if (!out_.good()) {
      error_ = "cannot append to " + path_;
      return;
    }
    if (fresh) out_ << kHeader << '\n';
  }
  // Empty when the file can take rows.
  const std::string& error() const { return error_; }
  void row(const std::string& scheme, const std::string& model, int gpus, int64_t tokens, double ms,
           int repeat, const std::string& link) {
    if (path_.empty()) return;
    out_ << scheme << ',' << model << ',' << gpus << ',' << tokens << ',' << ms << ',' << repeat
         << ',' << link << '\n';
    out_.flush();
  }

 private:
  std::string path_;
  std::string error_;
  std::ofstream out_;
};

// Rank 0's report after a job: timing rows and summaries, or the correctness check.
class Reporter {
 public:
  Reporter(const Options& options, const ModelConfig& config, int gpus, CsvWriter& csv)
      : options_(options), config_(config), gpus_(gpus), csv_(csv) {}

  void timed(const Job& job, double ms) {
    const std::string scheme = scheme_name(job.plan.scheme);
    csv_.row(scheme, options_.model, gpus_, job.plan.context, ms, job.repeat, options_.link);
    times_.push_back(ms);
    if (job.repeat + 1 < options_.repeats) return;
    int64_t most = 0;
    int64_t least = INT64_MAX;
    for (int r = 0; r < job.plan.ranks; ++r) {
      most = std::max(most, attention_pairs(job.plan, r));
      least = std::min(least, attention_pairs(job.plan, r));
    }
    const double ttft = median(times_);
    const double flops = config_.prefill_flops(0, job.plan.context);
    std::printf("%-11s %-10s %4d %8lld %10.1f %10.1f %12.1f %10.3f  %s\n", scheme.c_str(),
                options_.model.c_str(), gpus_, static_cast<long long>(job.plan.context), ttft,
                *std::min_element(times_.begin(), times_.end()),
                flops / (ttft * 1e-3) / gpus_ / 1e12,
                static_cast<double>(most) / static_cast<double>(least), options_.link.c_str());
    std::fflush(stdout);
    times_.clear();
  }

  // Returns whether the TSP logits match the single-GPU prefill's.
  bool check(const Job& job, const std::vector<float>& tsp, const std::vector<float>& single) {
    const double error = relative_error(tsp, single);
    const bool same_token = !tsp.empty() && !single.empty() && argmax(tsp) == argmax(single);
    const bool pass = error <= options_.tolerance && same_token;
    std::printf(
        "check %-10s %s, %lld tokens on %d GPUs: last-token logits rel. error %.3e "
        "(tolerance %.1e), argmax %s: %s\n",
        scheme_name(job.plan.scheme).c_str(), options_.model.c_str(),
        static_cast<long long>(job.plan.context), gpus_, error, options_.tolerance,
        same_token ? "equal" : "DIFFERENT", pass ? "PASS" : "FAIL");
    std::fflush(stdout);
    return pass;
  }

 private:
  const Options& options_;
  const ModelConfig& config_;
  int gpus_;
  CsvWriter& csv_;
  std::vector<double> times_;
};

void run_rank(int rank, const ModelConfig& config, const Options& options,
              const std::vector<Job>& jobs, int64_t max_context, int64_t max_tokens,
              const RankComms& comms, Shared& shared, Reporter& reporter) {
  if (cudaSetDevice(rank) != cudaSuccess) shared.fail("cannot select GPU " + std::to_string(rank));
  auto created = TspRank::create(rank, config, options.seed, max_context, max_tokens);
  if (!created) shared.fail("GPU " + std::to_string(rank) + ": " + created.error().message);
  auto link = EmulatedLink::create(options.link_shape(), options.seed, rank);
  if (!link) shared.fail("GPU " + std::to_string(rank) + ": " + link.error().message);
  shared.sync.arrive_and_wait();
  if (shared.failed) return;
  TspRank& me = **created;
  me.emulate_link(std::move(link).value());
  std::vector<float> logits;
  for (const Job& job : jobs) {
    const bool holder = rank == job.plan.last_token_rank();
    shared.sync.arrive_and_wait();
    const Clock::time_point start = Clock::now();
    Status status = me.prefill(job.plan, rank, *job.prompt, comms);
    if (status && holder) status = me.last_token_logits(logits);
    if (status) status = me.synchronize();
    if (!status) {
      shared.fail(scheme_name(job.plan.scheme) + " prefill of " + std::to_string(job.plan.context) +
                  " tokens on GPU " + std::to_string(rank) + ": " + status.to_string());
    }
    if (holder && job.check) shared.tsp_logits = logits;
    shared.sync.arrive_and_wait();
    if (shared.failed) return;
    if (rank != 0) continue;
    // Every rank has synchronized its device: this is the last rank's finish.
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (job.check) {
      std::vector<float> single;
      const Status reference = me.single_gpu_logits(*job.prompt, single);
      if (!reference) {
        shared.fail("single-GPU reference prefill: " + reference.to_string());
        continue;
      }
      if (!reporter.check(job, shared.tsp_logits, single)) ++shared.check_failures;
    } else if (job.repeat >= 0) {
      reporter.timed(job, ms);
    }
  }
}

int run(int argc, char** argv) {
  CLI::App app{"Tensor/sequence-parallel prefill (the KV-Runahead paper's TSP baseline) over NCCL"};
  Options o;
  app.add_option("--scheme", o.schemes, "tsp-paper, tsp-strong (comma-separated)")->delimiter(',');
  app.add_option("--model", o.model, "model preset (model/random_model.h)");
  app.add_option("--gpus", o.gpus, "GPUs to use, 0..gpus-1 (default: all)");
  app.add_option("--tokens", o.lengths, "prompt lengths")->delimiter(',');
  app.add_option("--warmup", o.warmup, "untimed runs per scheme and length");
  app.add_option("--repeat", o.repeats, "timed runs per scheme and length (median reported)");
  app.add_option("--csv", o.csv, "append rows scheme,model,gpus,tokens,ttft_ms,repeat,link");
  app.add_flag("--check", o.check,
               "compare the last token's logits with a single-GPU prefill (no timing)");
  app.add_option("--check-tokens", o.check_tokens, "prompt length of --check");
  app.add_option("--tolerance", o.tolerance, "largest relative error --check accepts");
  app.add_option("--seed", o.seed,
                 "seed of the weights (the same on every GPU) and of the link jitter draws");
  app.add_option("--link-gbps", o.link_gbps,
                 "emulate a slower link: after each all-gather the GPU also waits the time the "
                 "bytes a rank receives take at this many GB/s (0: off)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--link-jitter-ms", o.link_jitter_ms,
                 "emulate a noisy link: each all-gather step delayed by a random time up to this "
                 "many ms per rank (0: none)")
      ->check(CLI::NonNegativeNumber);
  CLI::Option* link_label =
      app.add_option("--link", o.link, "label of the link condition in the CSV column link")
          ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // NVLink multicast (NVLS) stays off unless the caller chose otherwise.
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  auto config = preset_config(o.model);
  if (!config) {
    std::cerr << config.error().message << "\n";
    return 2;
  }
  if (o.repeats < 1 || o.warmup < 0) {
    std::cerr << "--repeat must be at least 1 and --warmup at least 0\n";
    return 2;
  }
  if (o.link_shape().active() && link_label->count() == 0 && !o.csv.empty()) {
    std::cerr << "--link-gbps/--link-jitter-ms: name the emulated link with --link (the default '"
              << o.link << "' is the unshaped one)\n";
    return 2;
  }
  if (o.link.empty() || o.link.find_first_of(",\"\n") != std::string::npos) {
    std::cerr << "--link '" << o.link << "': must be non-empty, without commas or quotes\n";
    return 2;
  }

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::cerr << "tsp_bench: no CUDA device\n";
    return 1;
  }
  const int gpus = o.gpus == 0 ? devices : o.gpus;
  if (gpus < 1 || gpus > devices) {
    std::cerr << "--gpus " << gpus << ": this machine has " << devices << " GPUs\n";
    return 2;
  }
  // Every plan is made, and refused, before anything is allocated.
  std::vector<Scheme> schemes;
  for (const auto& name : o.schemes) {
    auto scheme = parse_scheme(name);
    if (!scheme) {
      std::cerr << scheme.error().message << "\n";
      return 2;
    }
    schemes.push_back(*scheme);
  }
  const std::vector<int64_t> lengths = o.check ? std::vector<int64_t>{o.check_tokens} : o.lengths;
  std::vector<std::vector<int32_t>> prompts;
  prompts.reserve(lengths.size());
  for (int64_t n : lengths) prompts.push_back(random_prompt(n, config->vocab_size));
  std::vector<Job> jobs;
  int64_t max_context = 0;
  int64_t max_tokens = 0;
  for (Scheme scheme : schemes) {
    for (size_t i = 0; i < lengths.size(); ++i) {
      auto plan = make_plan(scheme, lengths[i], gpus);
      if (!plan) {
        std::cerr << plan.error().message << "\n";
        return 2;
      }
      if (lengths[i] > config->max_positions) {
        std::cerr << lengths[i] << " tokens exceed " << o.model << "'s " << config->max_positions
                  << " positions\n";
        return 2;
      }
      max_context = std::max(max_context, lengths[i]);
      for (int r = 0; r < gpus; ++r) max_tokens = std::max(max_tokens, plan->tokens_of(r));
      if (o.check) {
        jobs.push_back({*plan, &prompts[i], -1, true});
        continue;
      }
      for (int w = 0; w < o.warmup; ++w) jobs.push_back({*plan, &prompts[i], -1, false});
      for (int r = 0; r < o.repeats; ++r) jobs.push_back({*plan, &prompts[i], r, false});
    }
  }

  CsvWriter csv(o.check ? std::string() : o.csv);
  if (!csv.error().empty()) {
    std::cerr << csv.error() << "\n";
    return 1;
  }

  std::vector<int> forward_devices(static_cast<size_t>(gpus));
  std::vector<int> reversed_devices(static_cast<size_t>(gpus));
  for (int d = 0; d < gpus; ++d) {
    forward_devices[static_cast<size_t>(d)] = d;
    reversed_devices[static_cast<size_t>(d)] = gpus - 1 - d;
  }
  std::vector<ncclComm_t> forward(static_cast<size_t>(gpus));
  std::vector<ncclComm_t> reversed(static_cast<size_t>(gpus));
  for (auto [comms, devs] :
       {std::pair{&forward, &forward_devices}, std::pair{&reversed, &reversed_devices}}) {
    const ncclResult_t result = ncclCommInitAll(comms->data(), gpus, devs->data());
    if (result != ncclSuccess) {
      std::cerr << "ncclCommInitAll over " << gpus << " GPUs: " << ncclGetErrorString(result)
                << "\n";
      return 1;
    }
  }
  int nccl_version = 0;
  ncclGetVersion(&nccl_version);
  std::printf("tsp_bench: %s on %d GPUs, NCCL %d, NCCL_NVLS_ENABLE=%s, link %s", o.model.c_str(),
              gpus, nccl_version, std::getenv("NCCL_NVLS_ENABLE"), o.link.c_str());
  if (o.link_shape().active()) {
    std::printf(
        " (emulated: %g GB/s cap, %g ms jitter per all-gather step, on top of the real "
        "link)",
        o.link_gbps, o.link_jitter_ms);
  }
  std::printf("\n");
  if (!o.check) {
    std::printf("%-11s %-10s %4s %8s %10s %10s %12s %10s  %s\n", "scheme", "model", "gpus",
                "tokens", "ttft_ms", "min_ms", "TF/s/GPU", "attn_imbal", "link");
  }

  Reporter reporter(o, *config, gpus, csv);
  Shared shared(gpus);
  std::vector<std::thread> threads;
  for (int r = 0; r < gpus; ++r) {
    // Rank r is rank gpus-1-r on the reversed communicator.
    const RankComms comms{forward[static_cast<size_t>(r)],
                          reversed[static_cast<size_t>(gpus - 1 - r)]};
    threads.emplace_back(run_rank, r, std::cref(*config), std::cref(o), std::cref(jobs),
                         max_context, max_tokens, comms, std::ref(shared), std::ref(reporter));
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < forward.size(); ++i) {
    ncclCommDestroy(forward[i]);
    ncclCommDestroy(reversed[i]);
  }
  if (shared.failed) {
    std::cerr << "tsp_bench: " << shared.first_error << "\n";
    return 1;
  }
  if (shared.check_failures > 0) {
    std::cerr << "tsp_bench: " << shared.check_failures << " check(s) failed\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace runahead::tsp

int main(int argc, char** argv) {
  return runahead::tsp::run(argc, argv);
}
