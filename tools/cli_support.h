// What several subcommands share: prompt input (text through the model's tokenizer, or ids),
// sampling flags, waiting for a termination signal, and printing a request's outcome.
#pragma once

#include <limits>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/config.h"
#include "runahead/request.h"
#include "text/tokenizer.h"

namespace runahead::cli {

struct PromptInput {
  std::string prompt;           // text; needs a tokenizer
  std::vector<int32_t> tokens;  // or ids
  std::string prompt_file;      // or text from a file ("-": standard input)
  std::string tokens_file;      // or ids from a file ("-": standard input)
  std::string tokenizer;        // a tokenizer file or model path
  bool chat = false;            // apply the model's chat template
  std::string system;           // system message for --chat
};

struct PreparedPrompt {
  std::vector<int32_t> tokens;
  std::string text;                            // the prompt text as given (empty for ids)
  std::unique_ptr<text::Tokenizer> tokenizer;  // null when the ids came without one
};

// --prompt, --prompt-file, --tokens, --tokens-file, --chat, --system; --tokenizer when
// `with_tokenizer_option`.
void add_prompt_options(CLI::App* command, PromptInput& input, bool with_tokenizer_option);
// Turns the input (exactly one of the four sources) into ids: `model` supplies the tokenizer
// unless input.tokenizer names one.
[[nodiscard]] Result<PreparedPrompt> prepare_prompt(const PromptInput& input,
                                                    const std::string& model);

void add_sampling_options(CLI::App* command, Sampling& sampling);

// --client-key-file, for the commands that connect to a coordinator as a client.
void add_client_key_option(CLI::App* command, std::string& key_file);

// The configuration of a checkpoint, a .gguf file or a random:PRESET.
[[nodiscard]] Result<ModelConfig> model_config(const std::string& model);

// --logits K and --ignore-eos (generate, local, submit).
struct LogitsOptions {
  static constexpr int kNotGiven = std::numeric_limits<int>::min();
  int logits = kNotGiven;  // K >= 1: top-K log-probabilities per position; 0: first logits
  bool ignore_eos = false;

  bool given() const { return logits != kNotGiven; }
  int top_logprobs() const { return given() && logits > 0 ? logits : 0; }
  bool first_logits() const { return logits == 0; }
};
void add_logits_options(CLI::App* command, LogitsOptions& options);
// One message naming what is wrong: a negative K, --logits 0 without --json, or K above the
// vocabulary (`vocab` > 0) or above what a request may carry (`max_k` > 0).
[[nodiscard]] Status check_logits_options(const LogitsOptions& options, bool json, int64_t vocab,
                                          int64_t max_k);
// The "logprobs" array of --json: [{"token", "logprob", "top": [{"token", "logprob"}, ...]}].
nlohmann::json logprobs_json(std::span<const PositionLogprobs> positions);
// One line per position: the chosen token and its log-probability, then the top K.
void print_logprobs(std::ostream& out, std::span<const PositionLogprobs> positions);

// Blocks SIGINT and SIGTERM in this thread and the threads it starts later, so that
// wait_for_termination() can take them; call first thing in a long-running command.
void block_termination_signals();
// Waits for SIGINT or SIGTERM; returns its number.
int wait_for_termination();

// Streams tokens as text (when a tokenizer is there) and prints the result: text, or one JSON
// object with tokens, text, TTFT and the per-worker, per-layer timeline.
class OutcomePrinter {
 public:
  OutcomePrinter(const text::Tokenizer* tokenizer, bool json, bool echo_prompt_text,
                 std::string prompt_text);
  TokenCallback callback();
  // --logits: the top-K log-probabilities (K >= 1) or the first position's logits (0).
  void show_logits(const LogitsOptions& options);
  // Returns the process exit code.
  int finish(const Result<RequestResult>& result, const std::vector<int32_t>& prompt,
             const std::string& extra_json_key = "", const std::string& extra_json = "");

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace runahead::cli
