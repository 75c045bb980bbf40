// runahead calibrate: measures a running cluster and writes a profile for the coordinator's
// load balancing (--profile): the procedure of planner/calibration.h, its requests submitted
// through an ordinary client with explicit partitions over all workers (calibration_requests.h).
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <span>
#include <sstream>
#include <utility>

#include "model/host_model.h"
#include "model/random_model.h"
#include "planner/calibration.h"
#include "runahead/client.h"
#include "tools/calibration_requests.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace runahead::cli {
namespace {

struct CalibrateOptions {
  std::string coordinator;
  std::string client_key_file;
  std::string out;
  std::string model;  // optional: shape, vocabulary, qkv share
  std::vector<int64_t> lengths = {128, 512, 2048};
  std::vector<int64_t> search_lengths;
  int repeat = 3;
  int search_budget = 80;      // partitions timed per searched length
  double qkv_fraction = -1.0;  // < 0: from the model, else 0.25
  int64_t timeout_ms = 600000;
};

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

struct ModelFacts {
  int vocab = 32;  // prompts use ids below this
  int max_positions = 0;
  ProfileModel model;  // its shape, layers and Q/K/V share
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
  facts.max_positions = config.max_positions;
  facts.model = profile_model_of(config);
  return facts;
}

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

// Prints the calibration as it runs: each timed partition, the fit, each searched length.
class ConsoleReport final : public CalibrationObserver {
 public:
  explicit ConsoleReport(std::span<const ChainWorker> workers) : workers_(workers) {}

  void timed(int64_t tokens, const Partition& cuts, const TimedRequest& median) override {
    std::cout << "  " << tokens << " tokens over " << cuts_text(cuts) << ": TTFT "
              << ms(median.ttft_seconds) << "; compute";
    for (size_t i = 0; i < workers_.size(); ++i) {
      std::cout << (i ? ", " : " ") << workers_[i].name << " " << ms(median.compute_seconds[i]);
    }
    std::cout << "\n";
  }

  void fitted(const CalibrationFit& fit) override {
    const Profile& profile = fit.profile;
    std::cout << "model: " << profile.model.layers << " layers, "
              << profile.model.kv_bytes_per_token << " K/V bytes per token and layer, Q/K/V share "
              << profile.model.qkv_fraction << "\n";
    for (size_t i = 0; i < profile.workers.size(); ++i) {
      const ProfileWorker& w = profile.workers[i];
      const WorkerCost& measured = fit.compute_costs[i];
      std::cout << "worker " << w.name << " (" << w.backend << "): from its compute times a "
                << measured.slice.per_token << " s/token, b " << measured.slice.per_key
                << " s/(token x key), c " << measured.per_prefix_token
                << " s/forwarded token, fixed " << ms(measured.fixed_seconds) << " (fit error "
                << percent(w.fit_error) << ")";
      if (i + 1 == profile.workers.size()) {
        std::cout << "; refined to TTFTs a " << w.cost.slice.per_token << ", b "
                  << w.cost.slice.per_key << ", fixed " << ms(w.cost.fixed_seconds);
      }
      std::cout << "\n";
    }
    const LinkCost& link = profile.default_link;
    std::cout << "link: latency " << ms(link.latency_seconds) << ", bandwidth "
              << (link.bytes_per_second > 0.0
                      ? std::to_string(link.bytes_per_second / 1e9) + " GB/s"
                      : std::string("no limit seen"))
              << "; overhead " << ms(profile.overhead_seconds) << "\n"
              << "TTFT prediction error (RMS over " << fit.requests
              << " requests): " << percent(fit.link_fit_error)
              << " with the compute times and the fitted link, " << percent(fit.refined_error)
              << " with the last worker's terms refined\n";
  }

  void searched(const CalibrationSearch& search) override {
    const ChainPlan& plan = search.model_plan;
    const PartitionSearchResult& found = search.searched;
    const double model_measured = search.model_measured_seconds;
    std::cout << "search " << search.tokens << " tokens:\n"
              << "  model    " << cuts_text(plan.cuts) << " predicted "
              << ms(plan.predicted_seconds) << ", measured " << ms(model_measured)
              << " (prediction " << percent(plan.predicted_seconds / model_measured - 1.0) << ")\n"
              << "  searched " << cuts_text(found.cuts) << " measured " << ms(found.seconds) << " ("
              << found.measurements << " partitions timed)\n"
              << "  even     " << cuts_text(search.even) << " measured "
              << ms(search.even_measured_seconds) << "\n"
              << "  model partition vs searched: " << percent(model_measured / found.seconds - 1.0)
              << " TTFT, vs even: " << percent(model_measured / search.even_measured_seconds - 1.0)
              << "\n";
  }

 private:
  std::span<const ChainWorker> workers_;
};

int run_calibrate(const CalibrateOptions& options) {
  auto fail = [](const std::string& message) {
    std::cerr << "runahead calibrate: " << message << "\n";
    return 1;
  };
  if (options.repeat < 1) return fail("--repeat must be at least 1");
  if (options.lengths.empty()) return fail("--lengths needs at least one length");
  auto facts = model_facts(options.model);
  if (!facts) return fail(facts.error().message);
  ClientConfig connection;
  connection.coordinator_address = options.coordinator;
  connection.client_key_file = options.client_key_file;
  auto client = Client::connect(connection);
  if (!client) return fail(client.error().message);
  auto workers = calibration_workers(**client, options.coordinator);
  if (!workers) return fail(workers.error().message);
  for (auto [list, flag] : {std::pair{&options.lengths, "--lengths"},
                            std::pair{&options.search_lengths, "--search-lengths"}}) {
    if (Status ok = check_lengths(*list, flag, workers->size(), facts->max_positions);
        !ok.is_ok()) {
      return fail(ok.message());
    }
  }
  CalibrationOptions calibration;
  calibration.lengths = options.lengths;
  calibration.search_lengths = options.search_lengths;
  calibration.repeat = options.repeat;
  calibration.search_budget = options.search_budget;
  calibration.model = facts->model;
  calibration.model.hash = workers->front().model_hash;
  if (options.qkv_fraction >= 0.0) calibration.model.qkv_fraction = options.qkv_fraction;
  std::vector<ChainWorker> chain;
  for (const WorkerState& w : *workers) chain.push_back({w.name, w.backend, {}});
  std::cout << "calibrating " << chain.size() << " worker(s) at " << options.coordinator
            << " (model " << calibration.model.hash << ")\n";

  ConsoleReport report(chain);
  auto profile =
      calibrate(chain, client_request_timer(**client, *workers, facts->vocab, options.timeout_ms),
                calibration, &report);
  if (!profile) return fail(profile.error().message);
  if (!options.search_lengths.empty() && chain.size() < 2) {
    std::cout << "one worker: nothing to search\n";
  }
  if (Status saved = profile->save(options.out); !saved.is_ok()) return fail(saved.message());
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
  add_client_key_option(command, options->client_key_file);
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
