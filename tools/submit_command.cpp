// runahead submit: send one prompt to a coordinator and stream the answer.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include "net/control/control_limits.h"
#include "runahead/client.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace runahead::cli {

void add_submit_command(CLI::App& app) {
  struct Options {
    std::string coordinator;
    std::string client_key_file;
    PromptInput input;
    RequestOptions request;
    bool json = false;
    LogitsOptions logits;
    double timeout_seconds = 600.0;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "submit",
      "Submit a prompt to a coordinator; print the first token as soon as it comes, "
      "the streamed continuation, TTFT and where the time went.");
  command->add_option("--coordinator", options->coordinator, "HOST:PORT of the coordinator")
      ->required();
  add_client_key_option(command, options->client_key_file);
  add_prompt_options(command, options->input, /*with_tokenizer_option=*/true);
  command
      ->add_option("--max-new-tokens", options->request.max_new_tokens,
                   "tokens to generate, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  add_sampling_options(command, options->request.sampling);
  add_logits_options(command, options->logits);
  command->add_flag("--json", options->json, "print one JSON object instead of text");
  command
      ->add_option("--timeout", options->timeout_seconds,
                   "seconds the whole request may take, connecting included; the coordinator "
                   "cancels it when they pass, and submit gives up by itself shortly after if "
                   "the coordinator does not answer (0: no limit of its own)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  command->callback([options] {
    // K against the vocabulary: the workers refuse it naming themselves.
    if (Status valid = check_logits_options(options->logits, options->json, 0,
                                            net::ControlLimits{}.max_top_logprobs);
        !valid.is_ok()) {
      std::cerr << "runahead submit: " << valid.message() << "\n";
      std::exit(1);
    }
    auto prompt = prepare_prompt(options->input, "");
    if (!prompt) {
      std::cerr << "runahead submit: " << prompt.error().message << "\n";
      std::exit(1);
    }
    using namespace std::chrono;
    const auto started = steady_clock::now();
    const auto timeout = milliseconds(std::llround(options->timeout_seconds * 1000.0));
    const bool bounded = timeout.count() > 0;
    ClientConfig connection;
    connection.coordinator_address = options->coordinator;
    connection.client_key_file = options->client_key_file;
    connection.timeout = bounded ? std::min<milliseconds>(timeout, seconds(10)) : seconds(10);
    auto client = Client::connect(connection);
    if (!client) {
      std::cerr << "runahead submit: " << client.error().message << "\n";
      std::exit(1);
    }
    options->request.prompt_tokens = prompt->tokens;
    options->request.top_logprobs = options->logits.top_logprobs();
    options->request.return_logits = options->logits.first_logits();
    options->request.ignore_eos = options->logits.ignore_eos;
    if (bounded) {
      // What connecting left of the timeout, at least a millisecond.
      const auto left = timeout - duration_cast<milliseconds>(steady_clock::now() - started);
      options->request.timeout_ms = std::max<int64_t>(left.count(), 1);
    }
    OutcomePrinter printer(prompt->tokenizer.get(), options->json, !options->input.chat,
                           prompt->text);
    printer.show_logits(options->logits);
    auto handle = (*client)->submit(options->request, printer.callback());
    const int code = printer.finish(
        handle ? handle->result() : Result<RequestResult>(handle.error()), prompt->tokens);
    (*client)->close();
    if (code != 0) std::exit(code);
  });
}

}  // namespace runahead::cli
