#include "http/openai_request.h"

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

namespace runahead::http {

namespace {

using nlohmann::json;

const std::set<std::string>& known_fields(Endpoint endpoint) {
  static const std::set<std::string> completions = {"model",
                                                    "prompt",
                                                    "max_tokens",
                                                    "temperature",
                                                    "top_p",
                                                    "seed",
                                                    "stop",
                                                    "stream",
                                                    "stream_options",
                                                    "logprobs",
                                                    "n",
                                                    "user",
                                                    "presence_penalty",
                                                    "frequency_penalty",
                                                    "logit_bias",
                                                    "echo",
                                                    "suffix",
                                                    "best_of",
                                                    "top_k",
                                                    "repetition_penalty",
                                                    "ignore_eos"};
  static const std::set<std::string> chat = {"model",
                                             "messages",
                                             "max_tokens",
                                             "max_completion_tokens",
                                             "temperature",
                                             "top_p",
                                             "seed",
                                             "stop",
                                             "stream",
                                             "stream_options",
                                             "logprobs",
                                             "top_logprobs",
                                             "n",
                                             "user",
                                             "presence_penalty",
                                             "frequency_penalty",
                                             "logit_bias",
                                             "response_format",
                                             "tools",
                                             "tool_choice",
                                             "parallel_tool_calls",
                                             "top_k",
                                             "repetition_penalty",
                                             "ignore_eos"};
  return endpoint == Endpoint::kChat ? chat : completions;
}

// A present, non-null field; null counts as absent, as in OpenAI's API.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<ApiError> read_number(const json& body, const char* name, double low, double high,
                                    float& out) {
  const json* value = field(body, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) return invalid_request(std::string(name) + " must be a number", name);
  const double number = value->get<double>();
  if (!std::isfinite(number) || number < low || number > high) {
    return invalid_request(std::string(name) + " is " + value->dump() + "; it must lie in [" +
                               json(low).dump() + ", " + json(high).dump() + "]",
                           name, "invalid_value");
  }
  out = static_cast<float>(number);
  return std::nullopt;
}

std::optional<ApiError> read_integer(const json& body, const char* name, int64_t low, int64_t high,
                                     int& out, const char* too_high = nullptr) {
  const json* value = field(body, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_integer()) {
    return invalid_request(std::string(name) + " must be an integer", name);
  }
  if (value->is_number_unsigned() ? value->get<uint64_t>() > static_cast<uint64_t>(high)
                                  : value->get<int64_t>() > high) {
    return invalid_request(too_high != nullptr ? std::string(too_high)
                                               : std::string(name) + " is " + value->dump() +
                                                     "; at most " + std::to_string(high),
                           name, "invalid_value");
  }
  if (!value->is_number_unsigned() && value->get<int64_t>() < low) {
    return invalid_request(
        std::string(name) + " is " + value->dump() + "; at least " + std::to_string(low), name,
        "invalid_value");
  }
  out = static_cast<int>(value->get<int64_t>());
  return std::nullopt;
}

std::optional<ApiError> read_bool(const json& body, const char* name, bool& out) {
  const json* value = field(body, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) return invalid_request(std::string(name) + " must be a boolean", name);
  out = value->get<bool>();
  return std::nullopt;
}

// A field we accept only with the value that means "off".
std::optional<ApiError> only_default(const json& body, const char* name, const json& off) {
  const json* value = field(body, name);
  if (value == nullptr || *value == off) return std::nullopt;
  if (value->is_object() && value->empty() && off.is_object()) return std::nullopt;
  if (value->is_array() && value->empty()) return std::nullopt;
  return invalid_request(std::string(name) + " = " + value->dump() +
                             " is not supported; leave it " + off.dump() + " or out",
                         name, "unsupported_value");
}

std::optional<ApiError> read_messages(const json& body, CompletionRequest& out) {
  const json* messages = field(body, "messages");
  if (messages == nullptr) return invalid_request("messages is required", "messages");
  if (!messages->is_array() || messages->empty()) {
    return invalid_request("messages must be a non-empty array of {role, content}", "messages");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& message = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!message.is_object()) return invalid_request(where + " must be an object", where);
    const json* role = field(message, "role");
    if (role == nullptr || !role->is_string()) {
      return invalid_request(where + ".role must be a string", where + ".role");
    }
    std::string role_name = role->get<std::string>();
    if (role_name == "developer") role_name = "system";
    if (role_name != "system" && role_name != "user" && role_name != "assistant") {
      return invalid_request(where + ".role \"" + role->get<std::string>() +
                                 "\" is not one of system, developer, user, assistant",
                             where + ".role");
    }
    const json* content = field(message, "content");
    std::string text;
    if (content == nullptr) {
      return invalid_request(where + ".content is required", where + ".content");
    } else if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      for (const json& part : *content) {
        const json* type = part.is_object() ? field(part, "type") : nullptr;
        const json* part_text = part.is_object() ? field(part, "text") : nullptr;
        if (type == nullptr || *type != "text" || part_text == nullptr || !part_text->is_string()) {
          return invalid_request(where + ".content: only parts of type \"text\" are supported",
                                 where + ".content");
        }
        text += part_text->get<std::string>();
      }
    } else {
      return invalid_request(where + ".content must be a string or an array of text parts",
                             where + ".content");
    }
    out.messages.push_back({role_name, std::move(text)});
  }
  return std::nullopt;
}

std::optional<ApiError> read_prompt(const json& body, CompletionRequest& out) {
  const json* prompt = field(body, "prompt");
  if (prompt == nullptr) return invalid_request("prompt is required", "prompt");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) prompt = &(*prompt)[0];
  if (prompt->is_string()) {
    out.prompt = prompt->get<std::string>();
    if (out.prompt.empty()) return invalid_request("prompt is empty", "prompt");
    return std::nullopt;
  }
  if (prompt->is_array() && !prompt->empty()) {
    for (const json& id : *prompt) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        return invalid_request(
            "prompt must be a string, or one list of token ids (several prompts in one request "
            "are not supported)",
            "prompt");
      }
      out.prompt_tokens.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    return std::nullopt;
  }
  return invalid_request("prompt must be a non-empty string or list of token ids", "prompt");
}

}  // namespace

std::variant<CompletionRequest, ApiError> parse_completion_request(std::string_view body_text,
                                                                   Endpoint endpoint,
                                                                   const RequestLimits& limits) {
  const json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return invalid_request("the request body is not valid JSON", {}, "invalid_json");
  }
  if (!body.is_object()) return invalid_request("the request body must be a JSON object");
  const auto& known = known_fields(endpoint);
  for (const auto& [name, value] : body.items()) {
    if (known.count(name) == 0) {
      return invalid_request("Unrecognized request argument supplied: " + name, name,
                             "unknown_parameter");
    }
  }
  CompletionRequest out;
  out.endpoint = endpoint;
  const json* model = field(body, "model");
  if (model == nullptr || !model->is_string()) {
    return invalid_request("model is required (a string; GET /v1/models lists it)", "model");
  }
  out.model = model->get<std::string>();
  if (endpoint == Endpoint::kChat) {
    if (auto error = read_messages(body, out)) return *error;
    out.max_tokens = limits.max_tokens;
  } else {
    if (auto error = read_prompt(body, out)) return *error;
  }
  const std::string too_many = "is more than this server generates for one request (" +
                               std::to_string(limits.max_tokens) + ")";
  const std::string max_tokens_message = "max_tokens " + too_many;
  if (auto e = read_integer(body, "max_tokens", 1, limits.max_tokens, out.max_tokens,
                            max_tokens_message.c_str())) {
    return *e;
  }
  if (endpoint == Endpoint::kChat) {
    const std::string message = "max_completion_tokens " + too_many;
    if (auto e = read_integer(body, "max_completion_tokens", 1, limits.max_tokens, out.max_tokens,
                              message.c_str())) {
      return *e;
    }
  }
  if (auto e = read_number(body, "temperature", 0.0, 2.0, out.temperature)) return *e;
  if (auto e = read_number(body, "top_p", 0.0, 1.0, out.top_p)) return *e;
  if (out.top_p <= 0.0f) return invalid_request("top_p must be above 0", "top_p", "invalid_value");
  if (auto e = read_integer(body, "top_k", -1, 1 << 20, out.top_k)) return *e;
  if (out.top_k < 0) out.top_k = 0;
  if (auto e = read_number(body, "repetition_penalty", 0.01, 10.0, out.repetition_penalty)) {
    return *e;
  }
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) return invalid_request("seed must be an integer", "seed");
    out.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                          : static_cast<uint64_t>(seed->get<int64_t>());
  }
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      out.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= limits.max_stop_strings) {
      for (const json& entry : *stop) {
        if (!entry.is_string()) return invalid_request("stop must hold strings", "stop");
        out.stop.push_back(entry.get<std::string>());
      }
    } else {
      return invalid_request("stop must be a string or an array of at most " +
                                 std::to_string(limits.max_stop_strings) + " strings",
                             "stop");
    }
    for (const std::string& entry : out.stop) {
      if (entry.empty()) return invalid_request("stop strings may not be empty", "stop");
    }
  }
  if (auto e = read_bool(body, "stream", out.stream)) return *e;
  if (const json* options = field(body, "stream_options")) {
    if (!out.stream) {
      return invalid_request("stream_options is only allowed with stream: true", "stream_options");
    }
    if (!options->is_object()) {
      return invalid_request("stream_options must be an object", "stream_options");
    }
    for (const auto& [name, value] : options->items()) {
      if (name != "include_usage") {
        return invalid_request("Unrecognized stream option: " + name, "stream_options." + name,
                               "unknown_parameter");
      }
    }
    if (auto e = read_bool(*options, "include_usage", out.include_usage)) return *e;
  }
  if (endpoint == Endpoint::kChat) {
    if (auto e = read_bool(body, "logprobs", out.logprobs)) return *e;
    if (auto e = read_integer(body, "top_logprobs", 0, limits.max_top_logprobs, out.top_logprobs)) {
      return *e;
    }
    if (out.top_logprobs > 0 && !out.logprobs) {
      return invalid_request("top_logprobs needs logprobs: true", "top_logprobs");
    }
    if (auto e = only_default(body, "response_format", json{{"type", "text"}})) return *e;
    if (auto e = only_default(body, "tools", json::array())) return *e;
    if (auto e = only_default(body, "tool_choice", "none")) return *e;
  } else {
    // Completions: logprobs is the number of alternatives (0 still reports the chosen tokens).
    int k = -1;
    if (auto e = read_integer(body, "logprobs", 0, limits.max_top_logprobs, k)) return *e;
    out.logprobs = k >= 0;
    out.top_logprobs = std::max(k, 0);
    if (auto e = only_default(body, "echo", false)) return *e;
    if (auto e = only_default(body, "suffix", "")) return *e;
    if (auto e = only_default(body, "best_of", 1)) return *e;
  }
  if (auto e = only_default(body, "n", 1)) return *e;
  if (auto e = only_default(body, "presence_penalty", 0)) return *e;
  if (auto e = only_default(body, "frequency_penalty", 0)) return *e;
  if (auto e = only_default(body, "logit_bias", json::object())) return *e;
  if (auto e = read_bool(body, "ignore_eos", out.ignore_eos)) return *e;
  return out;
}

}  // namespace runahead::http
