#include "tools/cli_support.h"

#include <pthread.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "model/gguf.h"
#include "model/host_model.h"
#include "model/random_model.h"
#include "text/chat_template.h"
#include "text/model_chat_template.h"
#include "text/text_stream.h"
#include "tools/prompt_files.h"

namespace runahead::cli {

void add_prompt_options(CLI::App* command, PromptInput& input, bool with_tokenizer_option) {
  command->add_option("--prompt", input.prompt, "prompt text (through the model's tokenizer)");
  command->add_option("--prompt-file", input.prompt_file,
                      "prompt text from a file, - for standard input (no 128 KiB argument cap)");
  command->add_option("--tokens", input.tokens, "prompt token ids, comma-separated")
      ->delimiter(',');
  command->add_option("--tokens-file", input.tokens_file,
                      "prompt token ids from a file (separated by commas or white space), - for "
                      "standard input");
  if (with_tokenizer_option) {
    command->add_option("--tokenizer", input.tokenizer,
                        "where the tokenizer comes from: a .gguf, tokenizer.json, "
                        "tokenizer.model or checkpoint directory");
  }
  command->add_flag("--chat", input.chat, "wrap --prompt in the model's chat template");
  command->add_option("--system", input.system, "system message for --chat");
}

Result<PreparedPrompt> prepare_prompt(const PromptInput& input, const std::string& model) {
  const int sources = int{!input.prompt.empty()} + int{!input.prompt_file.empty()} +
                      int{!input.tokens.empty()} + int{!input.tokens_file.empty()};
  if (sources != 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give the prompt one way: --prompt TEXT, --prompt-file PATH, --tokens IDS or "
                      "--tokens-file PATH");
  }
  PreparedPrompt prepared;
  std::string prompt_text = input.prompt;
  if (!input.prompt_file.empty()) {
    RUNAHEAD_ASSIGN_OR_RETURN(prompt_text, read_prompt_text(input.prompt_file));
    if (prompt_text.empty()) {
      return make_error(ErrorCode::kInvalidArgument, input.prompt_file + ": the prompt is empty");
    }
  }
  std::vector<int32_t> ids = input.tokens;
  if (!input.tokens_file.empty()) {
    RUNAHEAD_ASSIGN_OR_RETURN(ids, read_token_ids(input.tokens_file));
  }
  if (input.chat && prompt_text.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--chat needs --prompt or --prompt-file");
  }
  const bool has_model = !model.empty() && model.rfind("random:", 0) != 0;
  if (!input.tokenizer.empty() || (has_model && !prompt_text.empty())) {
    RUNAHEAD_ASSIGN_OR_RETURN(
        prepared.tokenizer,
        text::load_tokenizer(input.tokenizer.empty() ? model : input.tokenizer));
  } else if (has_model) {
    // Token ids in, text out when the model carries a tokenizer; ids only otherwise.
    if (auto loaded = text::load_tokenizer(model)) prepared.tokenizer = std::move(loaded).value();
  }
  if (prompt_text.empty()) {
    prepared.tokens = std::move(ids);
    return prepared;
  }
  if (!prepared.tokenizer) {
    return make_error(ErrorCode::kInvalidArgument,
                      model.empty()
                          ? "--prompt needs a tokenizer: name one with --tokenizer PATH"
                          : "--prompt needs a tokenizer: " + model + " has none (use --tokens)");
  }
  std::string text = prompt_text;
  if (input.chat) {
    const std::string source = has_model ? model : input.tokenizer;
    auto jinja_source = text::load_chat_template_source(source);
    if (!jinja_source) {
      return make_error(jinja_source.error().code,
                        jinja_source.error().message + "; --chat needs a chat template");
    }
    const std::string& jinja = *jinja_source;
    RUNAHEAD_ASSIGN_OR_RETURN(auto chat,
                              text::ChatTemplate::parse(jinja, source + ": chat template"));
    std::vector<text::ChatMessage> messages;
    if (!input.system.empty()) messages.push_back({"system", input.system});
    messages.push_back({"user", prompt_text});
    text = chat.apply(messages, true);
  }
  auto encoded = prepared.tokenizer->encode(text);
  if (!encoded) return make_error(encoded.error().code, "the prompt: " + encoded.error().message);
  prepared.tokens = std::move(encoded).value();
  prepared.text = std::move(prompt_text);
  return prepared;
}

void add_sampling_options(CLI::App* command, Sampling& sampling) {
  command->add_option("--temperature", sampling.temperature, "0 picks the likeliest token")
      ->capture_default_str();
  command->add_option("--top-k", sampling.top_k, "keep the k likeliest tokens (0: all)")
      ->capture_default_str();
  command->add_option("--top-p", sampling.top_p, "nucleus: keep tokens up to this mass")
      ->capture_default_str();
  command->add_option("--repetition-penalty", sampling.repetition_penalty, "1: off")
      ->capture_default_str();
  command->add_option("--seed", sampling.seed, "seed of the sampler")->capture_default_str();
}

void add_client_key_option(CLI::App* command, std::string& key_file) {
  command
      ->add_option("--client-key-file", key_file,
                   "key file (runahead keygen) of the client key, where the coordinator has one; "
                   "the coordinator must prove it back (empty: none)")
      ->capture_default_str();
}

Result<ModelConfig> model_config(const std::string& model) {
  if (is_random_model_path(model)) return preset_config(model.substr(model.find(':') + 1));
  RUNAHEAD_ASSIGN_OR_RETURN(HostModel host, load_model(model));
  return host.config;
}

void add_logits_options(CLI::App* command, LogitsOptions& options) {
  // Not bound with a CLI11 range check: a bad K gets one line naming it, like every other error.
  command->add_option("--logits", options.logits,
                      "K >= 1: the top-K log-probabilities (log-softmax of the raw logits over the "
                      "whole vocabulary) of every generated position and of the token chosen, as "
                      "\"logprobs\" with --json, one line per position without; 0: the raw "
                      "logits of the first position as \"logits\" (needs --json)");
  command->add_flag("--ignore-eos", options.ignore_eos,
                    "do not stop at EOS or end-of-turn tokens: generate --max-new-tokens");
}

Status check_logits_options(const LogitsOptions& options, bool json, int64_t vocab, int64_t max_k) {
  if (!options.given()) return Status::ok();
  const std::string k = std::to_string(options.logits);
  if (options.logits < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--logits " + k +
                          " is negative; give K >= 1 for the top-K log-probabilities "
                          "or 0 for the first position's logits");
  }
  if (options.logits == 0 && !json) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--logits 0 prints the full logits of the first position only with --json");
  }
  if (vocab > 0 && options.logits > vocab) {
    return make_error(ErrorCode::kInvalidArgument, "--logits " + k + " is more than the " +
                                                       std::to_string(vocab) +
                                                       " tokens of the model's vocabulary");
  }
  if (max_k > 0 && options.logits > max_k) {
    return make_error(ErrorCode::kInvalidArgument, "--logits " + k +
                                                       " is more than a request may carry (" +
                                                       std::to_string(max_k) + " per token)");
  }
  return Status::ok();
}

nlohmann::json logprobs_json(std::span<const PositionLogprobs> positions) {
  nlohmann::json out = nlohmann::json::array();
  for (const PositionLogprobs& position : positions) {
    nlohmann::json top = nlohmann::json::array();
    for (const TokenLogprob& entry : position.top) {
      top.push_back({{"token", entry.token}, {"logprob", entry.logprob}});
    }
    out.push_back({{"token", position.token}, {"logprob", position.logprob}, {"top", top}});
  }
  return out;
}

void print_logprobs(std::ostream& out, std::span<const PositionLogprobs> positions) {
  out << "log-probabilities (token: its log-probability | top K):\n";
  for (size_t i = 0; i < positions.size(); ++i) {
    const PositionLogprobs& position = positions[i];
    out << "  " << i << ": " << position.token << " " << position.logprob << " |";
    for (const TokenLogprob& entry : position.top)
      out << " " << entry.token << " " << entry.logprob;
    out << "\n";
  }
}

void block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_termination() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal_number = 0;
  sigwait(&set, &signal_number);
  return signal_number;
}

struct OutcomePrinter::State {
  const text::Tokenizer* tokenizer = nullptr;
  bool json = false;
  std::string echo;      // the prompt text, printed with the first token
  bool printed = false;  // anything on stdout yet: a request that fails before prints nothing
  LogitsOptions logits;
  std::unique_ptr<text::TextStream> stream;
  std::mutex mutex;
  std::string text;
};

OutcomePrinter::OutcomePrinter(const text::Tokenizer* tokenizer, bool json, bool echo_prompt_text,
                               std::string prompt_text)
    : state_(std::make_shared<State>()) {
  state_->tokenizer = tokenizer;
  state_->json = json;
  if (tokenizer != nullptr) state_->stream = std::make_unique<text::TextStream>(*tokenizer);
  if (!json && tokenizer != nullptr && echo_prompt_text) state_->echo = std::move(prompt_text);
}

void OutcomePrinter::show_logits(const LogitsOptions& options) {
  std::lock_guard lock(state_->mutex);
  state_->logits = options;
}

TokenCallback OutcomePrinter::callback() {
  return [state = state_](uint64_t, int32_t token, uint32_t) {
    std::lock_guard lock(state->mutex);
    if (!state->stream) return;
    auto piece = state->stream->push(token);
    if (!piece) return;
    state->text += *piece;
    if (!state->json) {
      if (!state->printed) std::cout << state->echo;
      state->printed = true;
      std::cout << *piece << std::flush;
    }
  };
}

int OutcomePrinter::finish(const Result<RequestResult>& result, const std::vector<int32_t>& prompt,
                           const std::string& extra_json_key, const std::string& extra_json) {
  std::lock_guard lock(state_->mutex);
  if (state_->stream) {
    if (auto rest = state_->stream->finish()) {
      state_->text += *rest;
      if (!state_->json && state_->printed) std::cout << *rest;
    }
    if (!state_->json && state_->printed) std::cout << "\n";
  }
  if (!result) {
    std::cerr << "runahead: request failed: " << result.error().message << "\n";
    return 1;
  }
  const RequestResult& r = *result;
  if (state_->json) {
    nlohmann::json timeline = nlohmann::json::array();
    for (const LayerTimeline& layer : r.timeline) {
      timeline.push_back({{"worker", layer.worker_id},
                          {"layer", layer.layer},
                          {"compute_ms", layer.compute_ms},
                          {"wait_ms", layer.wait_ms},
                          {"bytes_in", layer.bytes_in},
                          {"bytes_out", layer.bytes_out}});
    }
    const double decode_ms = r.total_ms - r.ttft_ms;
    nlohmann::json out = {
        {"request_id", r.request_id},
        {"prompt_tokens", prompt},
        {"prompt_token_count", prompt.size()},
        {"first_token", r.tokens.empty() ? -1 : r.tokens.front()},
        {"tokens", r.tokens},
        {"ttft_ms", r.ttft_ms},
        {"total_ms", r.total_ms},
        {"tokens_per_second", decode_ms > 0 && r.tokens.size() > 1
                                  ? static_cast<double>(r.tokens.size() - 1) / (decode_ms / 1e3)
                                  : 0.0},
        {"timeline", timeline}};
    if (state_->tokenizer != nullptr) out["text"] = state_->text;
    if (state_->logits.top_logprobs() > 0) out["logprobs"] = logprobs_json(r.logprobs);
    if (state_->logits.first_logits() && !r.logits.empty()) out["logits"] = r.logits.front();
    if (!extra_json_key.empty()) out[extra_json_key] = nlohmann::json::parse(extra_json);
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::map<uint64_t, std::pair<double, double>> per_worker;  // compute, wait
  for (const LayerTimeline& layer : r.timeline) {
    per_worker[layer.worker_id].first += layer.compute_ms;
    per_worker[layer.worker_id].second += layer.wait_ms;
  }
  std::cout << "prompt: " << prompt.size() << " tokens\n"
            << "first token: " << (r.tokens.empty() ? -1 : r.tokens.front()) << "\n";
  if (!state_->stream) {
    std::cout << "tokens:";
    for (int32_t token : r.tokens) std::cout << " " << token;
    std::cout << "\n";
  }
  std::cout << "TTFT: " << r.ttft_ms << " ms, total " << r.total_ms << " ms, " << r.tokens.size()
            << " tokens\n";
  for (const auto& [worker, times] : per_worker) {
    std::cout << "  worker " << worker << ": compute " << times.first << " ms, waiting for prefix "
              << times.second << " ms\n";
  }
  if (state_->logits.top_logprobs() > 0) print_logprobs(std::cout, r.logprobs);
  return 0;
}

}  // namespace runahead::cli
