// runahead local: a whole cluster on this machine. It starts a coordinator in this process and
// N worker processes (worker i on GPU i with --device cuda), submits the prompt, prints the
// answer as it streams, and stops the workers.
#include <iostream>

#include "net/control/control_limits.h"
#include "runahead/coordinator.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/coordinator_flags.h"
#include "tools/local_cluster.h"

namespace runahead::cli {
namespace {

struct LocalOptions {
  LocalClusterOptions cluster;
  PromptInput input;
  RequestOptions request;
  bool json = false;
  LogitsOptions logits;
};

int run_local(const LocalOptions& options) {
  auto fail = [](const std::string& message) {
    std::cerr << "runahead local: " << message << "\n";
    return 1;
  };
  if (options.cluster.workers < 1) return fail("--workers must be at least 1");
  if (Status valid = check_logits_options(options.logits, options.json, 0,
                                          net::ControlLimits{}.max_top_logprobs);
      !valid.is_ok()) {
    return fail(valid.message());
  }
  if (options.logits.top_logprobs() > 0) {
    // K against the vocabulary before any worker starts (they would refuse it too).
    auto config = model_config(options.cluster.worker.model);
    if (!config) return fail(config.error().message);
    if (Status valid = check_logits_options(options.logits, options.json, config->vocab_size, 0);
        !valid.is_ok()) {
      return fail(valid.message());
    }
  }
  auto prompt = prepare_prompt(options.input, options.cluster.worker.model);
  if (!prompt) return fail(prompt.error().message);

  auto cluster = LocalCluster::start(options.cluster);
  if (!cluster) return fail(cluster.error().message);
  Coordinator& coordinator = (*cluster)->coordinator();

  RequestOptions request = options.request;
  request.prompt_tokens = prompt->tokens;
  request.top_logprobs = options.logits.top_logprobs();
  request.return_logits = options.logits.first_logits();
  request.ignore_eos = options.logits.ignore_eos;
  OutcomePrinter printer(prompt->tokenizer.get(), options.json, !options.input.chat, prompt->text);
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
  add_local_cluster_flags(command, options->cluster);
  add_prompt_options(command, options->input, /*with_tokenizer_option=*/true);
  command
      ->add_option("--max-new-tokens", options->request.max_new_tokens,
                   "tokens to generate, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  add_sampling_options(command, options->request.sampling);
  // Here every worker takes part, however short the prompt, unless the flag says otherwise.
  options->cluster.coordinator.min_tokens_per_worker = 1;
  add_coordinator_flags(command, options->cluster.coordinator, CoordinatorFlagScope::kPlanning);
  add_logits_options(command, options->logits);
  command->add_flag("--json", options->json, "print one JSON object instead of text");
  command->callback([options] {
    block_termination_signals();
    const int code = run_local(*options);
    if (code != 0) std::exit(code);
  });
}

}  // namespace runahead::cli
