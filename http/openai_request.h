// The body of POST /v1/completions and /v1/chat/completions, parsed and checked. Unknown fields
// are refused (400), as OpenAI's API does; fields we know but do not implement are accepted
// only with their default value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "http/api_error.h"
#include "text/chat_template.h"

namespace runahead::http {

enum class Endpoint { kCompletions, kChat };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  std::string prompt;                  // completions: text
  std::vector<int32_t> prompt_tokens;  // completions: ids given as a list
  std::vector<text::ChatMessage> messages;
  int max_tokens = 16;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;  // extension (as vLLM): 0 keeps all
  float repetition_penalty = 1.0f;
  std::optional<uint64_t> seed;  // none: a fresh one per request
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;    // report the chosen tokens' log-probabilities
  int top_logprobs = 0;     // and the K likeliest alternatives
  bool ignore_eos = false;  // extension (as vLLM): decode max_tokens tokens
};

struct RequestLimits {
  int max_tokens = 4096;
  int max_top_logprobs = 20;
  size_t max_stop_strings = 4;
};

// `body` as one request to `endpoint`, or the error object to answer with.
[[nodiscard]] std::variant<CompletionRequest, ApiError> parse_completion_request(
    std::string_view body, Endpoint endpoint, const RequestLimits& limits);

}  // namespace runahead::http
