// runahead generate: one process, the prompt prefilled in k slices in turn, then decoding.
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/backend_factory.h"
#include "model/host_model.h"
#include "model/local_generation.h"
#include "model/random_model.h"
#include "tools/commands.h"
#include "tools/progress_bar.h"

namespace runahead::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string device = "cpu";
  std::vector<int32_t> tokens;
  int slices = 1;
  int max_new_tokens = 16;
  bool json = false;
};

std::string join(const std::vector<int32_t>& values) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? " " : "") << values[i];
  return out.str();
}

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "runahead generate: " << message << "\n";
  std::exit(1);
}

void run_generate(const GenerateOptions& options) {
  auto host = is_random_model_path(options.model) ? load_random_model(options.model)
                                                  : load_model(options.model);
  if (!host) fail(host.error().message);
  auto backend = make_backend(options.device);
  if (!backend) fail(backend.error().message);
  ProgressBar bar("loading weights");
  auto weights = upload_weights(*host, **backend,
                                [&](size_t done, size_t total) { bar.update(done, total); });
  bar.finish();
  if (!weights) fail(weights.error().message);
  const Transformer transformer(*weights, **backend);

  LocalGenerationOptions generation;
  generation.slices = options.slices;
  generation.max_new_tokens = options.max_new_tokens;
  auto result = generate_local(transformer, options.tokens, generation);
  if (!result) fail(result.error().message);

  const ModelConfig& c = weights->config;
  if (options.json) {
    nlohmann::json out = {{"model", options.model},
                          {"device", (*backend)->name()},
                          {"prompt_tokens", options.tokens},
                          {"slices", options.slices},
                          {"first_token", result->first_token},
                          {"tokens", result->tokens},
                          {"ttft_ms", result->ttft_seconds * 1e3},
                          {"decode_tokens_per_second", result->decode_tokens_per_second()}};
    std::cout << out.dump() << "\n";
    return;
  }
  std::cout << "model: " << options.model << " (" << c.architecture_name << ", " << c.n_layers
            << " layers, hidden " << c.hidden << ") on " << (*backend)->name() << "\n"
            << "prompt: " << options.tokens.size() << " tokens in " << options.slices
            << " slice(s)\n"
            << "first token: " << result->first_token << "\n"
            << "tokens: " << join(result->tokens) << "\n"
            << "TTFT: " << result->ttft_seconds * 1e3 << " ms, decode: "
            << result->decode_tokens_per_second() << " tokens/s\n";
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* command = app.add_subcommand(
      "generate", "Run a prompt in this process: prefill in --slices slices one after the other "
                  "(the KV-Runahead primitive), then decode greedily.");
  command->add_option("--model", options->model,
                      "Hugging Face checkpoint directory, .gguf file, or random:PRESET "
                      "(tiny-llama, tiny-falcon, llama2-7b, llama3-8b, falcon-7b)")
      ->required();
  command->add_option("--tokens", options->tokens, "prompt token ids, comma-separated")
      ->delimiter(',')
      ->required();
  command->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  command->add_option("--slices", options->slices, "slices the prompt is prefilled in")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  command->add_option("--max-new-tokens", options->max_new_tokens,
                      "tokens to generate, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_flag("--json", options->json, "print one JSON object instead of text");
  command->callback([options] { run_generate(*options); });
}

}  // namespace runahead::cli
