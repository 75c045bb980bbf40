// runahead local: a whole cluster on this machine. It starts a coordinator in this process and
// N worker processes (worker i on GPU i with --device cuda), submits the prompt, prints the
// answer as it streams, and stops the workers.
#include <iostream>

#include "net/control/control_limits.h"
#include "runahead/coordinator.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/local_cluster.h"

namespace runahead::cli {
namespace {

struct LocalOptions {
  int workers = 2;
  std::string model;
  std::string device = "cpu";
  std::string transports;
  bool peer_copy = true;
  std::string staging_chunk_mib;  // empty: the workers' default
  PromptInput input;
  RequestOptions request;
  std::string partition = "balanced";
  int64_t min_tokens_per_worker = 1;
  std::string profile;
  int64_t startup_timeout_s = 300;
  bool json = false;
  LogitsOptions logits;
};

int run_local(const LocalOptions& options) {
  auto fail = [](const std::string& message) {
    std::cerr << "runahead local: " << message << "\n";
    return 1;
  };
  if (options.workers < 1) return fail("--workers must be at least 1");
  if (Status valid = check_logits_options(options.logits, options.json, 0,
                                          net::ControlLimits{}.max_top_logprobs);
      !valid.is_ok()) {
    return fail(valid.message());
  }
  if (options.logits.top_logprobs() > 0) {
    // K against the vocabulary before any worker starts (they would refuse it too).
    auto config = model_config(options.model);
    if (!config) return fail(config.error().message);
    if (Status valid = check_logits_options(options.logits, options.json, config->vocab_size, 0);
        !valid.is_ok()) {
      return fail(valid.message());
    }
  }
  auto prompt = prepare_prompt(options.input, options.model);
  if (!prompt) return fail(prompt.error().message);

  LocalClusterOptions cluster_options;
  cluster_options.workers = options.workers;
  cluster_options.model = options.model;
  cluster_options.device = options.device;
  cluster_options.transports = options.transports;
  cluster_options.peer_copy = options.peer_copy;
  if (!options.staging_chunk_mib.empty()) {
    cluster_options.extra_worker_args = {"--staging-chunk-mib", options.staging_chunk_mib};
  }
  cluster_options.startup_timeout_s = options.startup_timeout_s;
  cluster_options.coordinator.balanced_partition = options.partition == "balanced";
  cluster_options.coordinator.min_tokens_per_worker = options.min_tokens_per_worker;
  cluster_options.coordinator.profile_path = options.profile;
  auto cluster = LocalCluster::start(cluster_options);
  if (!cluster) return fail(cluster.error().message);
  Coordinator& coordinator = (*cluster)->coordinator();

  RequestOptions request = options.request;
  request.prompt_tokens = prompt->tokens;
  request.top_logprobs = options.logits.top_logprobs();
  request.return_logits = options.logits.first_logits();
  request.ignore_eos = options.logits.ignore_eos;
  OutcomePrinter printer(prompt->tokenizer.get(), options.json, !options.input.chat,
                         options.input.prompt);
  printer.show_logits(options.logits);
  auto handle = coordinator.submit(request, printer.callback());
  const int code = printer.finish(handle ? handle->result() : Result<RequestResult>(handle.error()),
                                  prompt->tokens);
  (*cluster)->stop();
  return code;
}

}  // namespace

void add_local_command(CLI::App& app) {
  auto options = std::make_shared<LocalOptions>();
  CLI::App* command = app.add_subcommand(
      "local",
      "Run a cluster on this machine: a coordinator here and --workers worker "
      "processes (worker i on GPU i with --device cuda), answer one prompt, stop.");
  command->add_option("--workers", options->workers, "worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  command
      ->add_option("--model", options->model, "checkpoint directory, .gguf file or random:PRESET")
      ->required();
  command->add_option("--device", options->device, "cpu or cuda (worker i on GPU i)")
      ->capture_default_str();
  command->add_option("--transports", options->transports,
                      "UCX transports for K/V (e.g. tcp, or shm,self); empty lets UCX choose");
  command->add_flag_callback(
      "--no-peer-copy", [options] { options->peer_copy = false; },
      "with --device cuda: send K/V between the GPUs through UCX (staged through host memory) "
      "instead of copying it GPU to GPU (CUDA IPC, NVLink)");
  command
      ->add_option("--staging-chunk-mib", options->staging_chunk_mib,
                   "K/V staged through host memory moves in chunks of this many MiB (0: whole "
                   "blocks; default 4)")
      ->check(CLI::Range(0.0, 4096.0));
  add_prompt_options(command, options->input, /*with_tokenizer_option=*/true);
  command
      ->add_option("--max-new-tokens", options->request.max_new_tokens,
                   "tokens to generate, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  add_sampling_options(command, options->request.sampling);
  command->add_option("--partition", options->partition, "balanced or even")
      ->check(CLI::IsMember({"balanced", "even"}))
      ->capture_default_str();
  command
      ->add_option("--min-tokens-per-worker", options->min_tokens_per_worker,
                   "shorter prompts use fewer workers")
      ->capture_default_str();
  command
      ->add_option("--profile", options->profile,
                   "calibration profile (runahead calibrate --out) for the coordinator")
      ->check(CLI::ExistingFile);
  command
      ->add_option("--startup-timeout", options->startup_timeout_s,
                   "seconds the workers have to load the model and join")
      ->capture_default_str();
  add_logits_options(command, options->logits);
  command->add_flag("--json", options->json, "print one JSON object instead of text");
  command->callback([options] {
    block_termination_signals();
    const int code = run_local(*options);
    if (code != 0) std::exit(code);
  });
}

}  // namespace runahead::cli
