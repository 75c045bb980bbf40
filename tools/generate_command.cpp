// runahead generate: one process, the prompt prefilled in k slices in turn, then decoding.
// With a trained model and --prompt, text goes in and the continuation streams out.
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/backend_factory.h"
#include "model/host_model.h"
#include "model/local_generation.h"
#include "model/random_model.h"
#include "model/sampler.h"
#include "text/text_stream.h"
#include "text/tokenizer.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/progress_bar.h"

namespace runahead::cli {
namespace {

struct GenerateOptions {
  std::string model;
  PromptInput input;  // the tokenizer defaults to the model's own
  std::string device = "cpu";
  int slices = 1;
  int max_new_tokens = 16;
  SamplingOptions sampling;
  std::vector<std::string> stop;
  bool json = false;
  LogitsOptions logits;
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

// Tokens that end generation: EOS and the end-of-turn markers the vocabulary has.
std::vector<int32_t> stop_tokens(const text::Tokenizer* tokenizer, int32_t eos) {
  std::vector<int32_t> ids;
  if (eos >= 0) ids.push_back(eos);
  if (tokenizer == nullptr) return ids;
  for (const char* marker : {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>"}) {
    if (auto id = tokenizer->token_id(marker); id && tokenizer->is_special(*id)) {
      ids.push_back(*id);
    }
  }
  return ids;
}

void run_generate(const GenerateOptions& options) {
  Status sampling_ok = options.sampling.validate();
  if (!sampling_ok) fail(sampling_ok.message());
  Status logits_ok = check_logits_options(options.logits, options.json, 0, 0);
  if (!logits_ok) fail(logits_ok.message());
  auto prepared = prepare_prompt(options.input, options.model);
  if (!prepared) fail(prepared.error().message);
  const std::vector<int32_t> prompt = std::move(prepared->tokens);
  const std::unique_ptr<text::Tokenizer> tokenizer = std::move(prepared->tokenizer);
  const std::string prompt_text = std::move(prepared->text);

  // A random model's weights are generated on the backend below (on the GPU itself with CUDA).
  const bool random = is_random_model_path(options.model);
  Result<HostModel> host = Error{ErrorCode::kCancelled, "no host copy"};
  if (!random) host = load_model(options.model);
  if (!host && !random) fail(host.error().message);
  auto model_config = random ? preset_config(options.model.substr(7)) : host->config;
  if (!model_config) fail(model_config.error().message);
  logits_ok = check_logits_options(options.logits, options.json, model_config->vocab_size, 0);
  if (!logits_ok) fail(logits_ok.message());
  if (tokenizer != nullptr && tokenizer->vocab_size() > model_config->vocab_size) {
    fail("the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
         " tokens but the model only " + std::to_string(model_config->vocab_size));
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= model_config->vocab_size) {
      fail("prompt token " + std::to_string(id) + " is outside the vocabulary of " +
           std::to_string(model_config->vocab_size));
    }
  }
  auto backend = make_backend(options.device);
  if (!backend) fail(backend.error().message);
  std::unique_ptr<ProgressBar> bar = std::make_unique<ProgressBar>("loading weights");
  const UploadProgress progress = [&](size_t done, size_t total) { bar->update(done, total); };
  Result<ModelWeights> weights = Error{ErrorCode::kCancelled, "not loaded"};
  if (random) {
    auto generated = load_random_weights(options.model, **backend, 1, progress);
    if (!generated) fail(generated.error().message);
    weights = std::move(generated->weights);
  } else {
    weights = upload_weights(*host, **backend, progress);
  }
  bar.reset();
  if (!weights) fail(weights.error().message);
  host = Error{ErrorCode::kCancelled, "released"};  // the backend holds the weights now
  const Transformer transformer(*weights, **backend);
  const ModelConfig& c = weights->config;

  // Stopping: a stop token (EOS, end of turn) or a stop string in the streamed text ends the
  // generation; neither is shown. --ignore-eos keeps only the stop strings.
  const std::vector<int32_t> stops = options.logits.ignore_eos
                                         ? std::vector<int32_t>{}
                                         : stop_tokens(tokenizer.get(), c.eos_token);
  const int32_t stop_marker = stops.empty() ? -1 : stops.front();
  Sampler sampler(options.sampling);
  std::vector<int32_t> history = prompt;
  std::optional<text::TextStream> stream;
  if (tokenizer != nullptr) stream.emplace(*tokenizer);
  std::string text;
  std::string stop_reason = "length";
  bool stopped = false;
  const bool print_stream = !options.json && stream.has_value();

  LocalGenerationOptions generation;
  generation.slices = options.slices;
  generation.max_new_tokens = options.max_new_tokens;
  generation.stop_token = stop_marker;
  generation.top_logprobs = options.logits.top_logprobs();
  generation.choose = [&](std::span<const float> logits) -> int32_t {
    const int32_t token = sampler.sample(logits, history);
    for (int32_t stop : stops) {
      if (token == stop) return stop_marker;
    }
    return token;
  };
  generation.on_token = [&](int32_t token) -> bool {
    if (!stops.empty() && token == stop_marker) {
      stopped = true;
      stop_reason = "eos";
      return false;
    }
    history.push_back(token);
    if (!stream) return true;
    auto piece = stream->push(token);
    if (!piece) fail(piece.error().message);
    std::string fresh = std::move(piece).value();
    for (const std::string& stop : options.stop) {
      // Only the new text and the tail it may complete need searching.
      const size_t from = text.size() >= stop.size() ? text.size() - stop.size() + 1 : 0;
      const size_t at = (text + fresh).find(stop, from);
      if (at != std::string::npos) {
        fresh = (text + fresh).substr(text.size(), at > text.size() ? at - text.size() : 0);
        if (at < text.size()) fresh.clear();
        stopped = true;
        stop_reason = "stop string";
        break;
      }
    }
    text += fresh;
    if (print_stream) {
      std::cout << fresh << std::flush;
    }
    return !stopped;
  };
  // A completion continues the prompt on screen; a chat reply stands on its own.
  if (print_stream && !options.input.chat) std::cout << prompt_text << std::flush;
  auto result = generate_local(transformer, prompt, generation);
  if (!result) fail(result.error().message);
  if (stream && !stopped) {
    auto rest = stream->finish();
    if (rest) {
      text += *rest;
      if (print_stream) std::cout << *rest;
    }
  }
  std::vector<int32_t> generated(history.begin() + static_cast<std::ptrdiff_t>(prompt.size()),
                                 history.end());
  // One entry per token shown: a stop token that ended the generation is not one.
  std::vector<PositionLogprobs> logprobs = std::move(result->logprobs);
  if (logprobs.size() > generated.size()) logprobs.resize(generated.size());

  if (options.json) {
    nlohmann::json out = {{"model", options.model},
                          {"device", (*backend)->name()},
                          {"prompt_tokens", prompt},
                          {"prompt_token_count", prompt.size()},
                          {"slices", options.slices},
                          {"first_token", result->first_token},
                          {"tokens", generated},
                          {"ttft_ms", result->ttft_seconds * 1e3},
                          {"decode_tokens_per_second", result->decode_tokens_per_second()},
                          {"tokens_per_second", result->decode_tokens_per_second()},
                          {"stop_reason", stop_reason}};
    if (options.logits.top_logprobs() > 0) out["logprobs"] = logprobs_json(logprobs);
    if (options.logits.first_logits()) out["logits"] = result->first_logits;
    if (tokenizer != nullptr) {
      auto first = tokenizer->decode(std::span<const int32_t>(&result->first_token, 1));
      out["first_token_text"] = first ? *first : "";
      out["text"] = text;
    }
    std::cout << out.dump() << "\n";
    return;
  }
  if (print_stream) std::cout << "\n\n";
  std::cout << "model: " << options.model << " (" << c.architecture_name << ", " << c.n_layers
            << " layers, hidden " << c.hidden << ") on " << (*backend)->name() << "\n"
            << "prompt: " << prompt.size() << " tokens in " << options.slices << " slice(s)\n"
            << "first token: " << result->first_token << "\n";
  if (!stream) std::cout << "tokens: " << join(generated) << "\n";
  std::cout << "generated: " << generated.size() << " tokens (stop: " << stop_reason << ")\n"
            << "TTFT: " << result->ttft_seconds * 1e3
            << " ms, decode: " << result->decode_tokens_per_second() << " tokens/s\n";
  if (options.logits.top_logprobs() > 0) print_logprobs(std::cout, logprobs);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* command = app.add_subcommand(
      "generate",
      "Run a prompt in this process: prefill in --slices slices one after the other "
      "(the KV-Runahead primitive), then decode, streaming the text.");
  command
      ->add_option("--model", options->model,
                   "Hugging Face checkpoint directory, .gguf file, or random:PRESET "
                   "(tiny-llama, tiny-falcon, mini-llama, long-tiny-llama, llama2-7b, llama3-8b, "
                   "falcon-7b)")
      ->required();
  add_prompt_options(command, options->input, /*with_tokenizer_option=*/true);
  command->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  command->add_option("--slices", options->slices, "slices the prompt is prefilled in")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  command
      ->add_option("--max-new-tokens", options->max_new_tokens,
                   "tokens to generate, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command
      ->add_option("--temperature", options->sampling.temperature,
                   "sampling temperature; 0 is greedy")
      ->capture_default_str();
  command->add_option("--top-k", options->sampling.top_k, "keep the k likeliest tokens (0: all)")
      ->capture_default_str();
  command
      ->add_option("--top-p", options->sampling.top_p,
                   "keep the likeliest tokens up to this probability mass")
      ->capture_default_str();
  command
      ->add_option("--repetition-penalty", options->sampling.repetition_penalty,
                   "penalty for tokens already in the context (1: off)")
      ->capture_default_str();
  command->add_option("--seed", options->sampling.seed, "seed of the sampler")
      ->capture_default_str();
  command->add_option("--stop", options->stop, "stop when the text contains this (repeatable)");
  add_logits_options(command, options->logits);
  command->add_flag("--json", options->json,
                    "print one JSON object (prompt tokens, first token, TTFT, tokens/s, text)");
  command->callback([options] { run_generate(*options); });
}

}  // namespace runahead::cli
