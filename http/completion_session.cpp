#include "http/completion_session.h"

#include <random>

namespace runahead::http {

namespace {

using nlohmann::json;

constexpr auto kKeepAliveEvery = std::chrono::seconds(1);
constexpr auto kPollEvery = std::chrono::milliseconds(200);

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

uint64_t fresh_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

json byte_list(const std::string& bytes) {
  json out = json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

// The error object for a request the coordinator refused or failed.
ApiError coordinator_error(const Error& error) {
  switch (error.code) {
    case ErrorCode::kResourceExhausted:
      return ApiError{.status = 429,
                      .message = error.message,
                      .type = "rate_limit_error",
                      .param = {},
                      .code = "rate_limit_exceeded"};
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kOutOfRange:
      return invalid_request(error.message);
    case ErrorCode::kTimeout:
      return ApiError{.status = 504,
                      .message = error.message,
                      .type = "server_error",
                      .param = {},
                      .code = "timeout"};
    case ErrorCode::kUnavailable:
      return ApiError{.status = 503,
                      .message = error.message,
                      .type = "server_error",
                      .param = {},
                      .code = "unavailable"};
    case ErrorCode::kNotFound:
    case ErrorCode::kCorruptData:
    case ErrorCode::kUnsupported:
    case ErrorCode::kCancelled:
    case ErrorCode::kProtocol:
    case ErrorCode::kInternal:
    case ErrorCode::kDevice:
      break;
  }
  return ApiError{
      .status = 500, .message = error.message, .type = "server_error", .param = {}, .code = {}};
}

}  // namespace

CompletionSession::CompletionSession(Coordinator& coordinator, const ServingModel& model,
                                     ServingMetrics& metrics, CompletionRequest request,
                                     Clock::time_point arrived)
    : coordinator_(coordinator),
      model_(model),
      metrics_(metrics),
      request_(std::move(request)),
      arrived_(arrived),
      created_(std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()),
      text_(*model.tokenizer),
      stops_(request_.stop) {
  metrics_.request_started();
}

CompletionSession::~CompletionSession() {
  if (started_) {
    bool running = false;
    {
      std::lock_guard lock(mutex_);
      running = !outcome_.has_value();
    }
    if (running) cancel("the HTTP request ended");
    if (waiter_.joinable()) waiter_.join();
    record_end();
  }
  metrics_.request_ended();
}

std::optional<ApiError> CompletionSession::start() {
  auto refuse = [&](ApiError error) {
    metrics_.count(error.status == 429   ? Outcome::kRejected
                   : error.status == 400 ? Outcome::kInvalid
                                         : Outcome::kFailed);
    return error;
  };
  std::string text = request_.prompt;
  if (request_.endpoint == Endpoint::kChat) {
    if (!model_.chat) {
      return refuse(invalid_request("chat completions need the model's chat template: " +
                                    model_.chat_unavailable));
    }
    text = model_.chat->apply(request_.messages, true);
  }
  if (!text.empty()) {
    auto encoded = model_.tokenizer->encode(text);
    if (!encoded) {
      return refuse(invalid_request("the prompt cannot be tokenized: " + encoded.error().message,
                                    request_.endpoint == Endpoint::kChat ? "messages" : "prompt"));
    }
    prompt_ids_ = std::move(encoded).value();
  } else {
    prompt_ids_ = request_.prompt_tokens;
    for (int32_t id : prompt_ids_) {
      if (id >= model_.tokenizer->vocab_size()) {
        return refuse(invalid_request("prompt token id " + std::to_string(id) +
                                          " is outside the vocabulary of " +
                                          std::to_string(model_.tokenizer->vocab_size()),
                                      "prompt"));
      }
    }
  }
  RequestOptions options;
  options.prompt_tokens = prompt_ids_;
  options.max_new_tokens = request_.max_tokens;
  options.sampling.temperature = request_.temperature;
  options.sampling.top_p = request_.top_p;
  options.sampling.top_k = request_.top_k;
  options.sampling.repetition_penalty = request_.repetition_penalty;
  options.sampling.seed = request_.seed.value_or(fresh_seed());
  // The chosen token's log-probability comes with the top K; K = 1 when only it is asked for.
  options.top_logprobs = request_.logprobs ? std::max(request_.top_logprobs, 1) : 0;
  options.ignore_eos = request_.ignore_eos;
  auto submitted =
      coordinator_.submit_streaming(std::move(options), [this](const StreamedToken& token) {
        {
          std::lock_guard lock(mutex_);
          arrivals_.push_back(Arrival{token, Clock::now()});
        }
        changed_.notify_all();
      });
  if (!submitted) return refuse(coordinator_error(submitted.error()));
  handle_ = *submitted;
  started_ = true;
  waiter_ = std::thread([this] {
    Result<RequestResult> result = handle_.result();
    {
      std::lock_guard lock(mutex_);
      outcome_ = std::move(result);
    }
    changed_.notify_all();
  });
  return std::nullopt;
}

void CompletionSession::cancel(const std::string& reason) {
  if (started_) (void)coordinator_.cancel(handle_.id(), reason);
}

CompletionSession::Delta CompletionSession::pump(std::chrono::milliseconds wait) {
  std::deque<Arrival> batch;
  bool ended = false;
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, wait, [&] { return !arrivals_.empty() || outcome_.has_value(); });
    batch.swap(arrivals_);
    ended = outcome_.has_value();
  }
  Delta delta;
  for (const Arrival& arrival : batch) {
    if (stopped_by_string_ || finished_) break;
    take(arrival, delta);
  }
  if (stopped_by_string_ && !finished_) {
    cancel("a stop string was generated");
    finished_ = true;
  } else if (ended && !finished_) {
    finish_text(delta);
    finished_ = true;
  }
  text_so_far_ += delta.text;
  if (!delta.logprobs.is_null()) {
    if (all_logprobs_.is_null()) {
      all_logprobs_ = delta.logprobs;
    } else {
      for (auto& [key, entries] : delta.logprobs.items()) {
        for (const json& entry : entries) all_logprobs_[key].push_back(entry);
      }
    }
  }
  return delta;
}

void CompletionSession::take(const Arrival& arrival, Delta& delta) {
  ++generated_;
  last_token_ = arrival.token.token;
  if (!last_token_at_) {
    metrics_.observe_ttft(std::chrono::duration<double>(arrival.at - arrived_).count());
  } else {
    metrics_.observe_inter_token(
        std::chrono::duration<double>(arrival.at - *last_token_at_).count());
  }
  last_token_at_ = arrival.at;
  if (request_.logprobs && arrival.token.logprobs) append_logprobs(arrival.token, delta);
  if (auto piece = text_.push(arrival.token.token)) delta.text += stops_.push(*piece);
  if (stops_.stopped()) stopped_by_string_ = true;
}

void CompletionSession::append_logprobs(const StreamedToken& token, Delta& delta) {
  const PositionLogprobs& position = *token.logprobs;
  auto piece = [&](int32_t id) {
    const int32_t ids[] = {id};
    auto text = model_.tokenizer->decode(ids);
    auto bytes = model_.tokenizer->decode_bytes(ids);
    return std::make_pair(text ? *text : std::string(), bytes ? *bytes : std::string());
  };
  const size_t alternatives =
      std::min(position.top.size(), static_cast<size_t>(request_.top_logprobs));
  const auto [token_text, token_bytes] = piece(position.token);
  if (request_.endpoint == Endpoint::kChat) {
    json top = json::array();
    for (size_t i = 0; i < alternatives; ++i) {
      const auto [text, bytes] = piece(position.top[i].token);
      top.push_back(
          {{"token", text}, {"logprob", position.top[i].logprob}, {"bytes", byte_list(bytes)}});
    }
    if (delta.logprobs.is_null()) delta.logprobs = {{"content", json::array()}};
    delta.logprobs["content"].push_back({{"token", token_text},
                                         {"logprob", position.logprob},
                                         {"bytes", byte_list(token_bytes)},
                                         {"top_logprobs", top}});
    return;
  }
  json top = json::object();
  for (size_t i = 0; i < alternatives; ++i) {
    top[piece(position.top[i].token).first] = position.top[i].logprob;
  }
  if (delta.logprobs.is_null()) {
    delta.logprobs = {{"tokens", json::array()},
                      {"token_logprobs", json::array()},
                      {"top_logprobs", json::array()},
                      {"text_offset", json::array()}};
  }
  delta.logprobs["tokens"].push_back(token_text);
  delta.logprobs["token_logprobs"].push_back(position.logprob);
  delta.logprobs["top_logprobs"].push_back(top);
  delta.logprobs["text_offset"].push_back(text_so_far_.size() + delta.text.size());
}

void CompletionSession::finish_text(Delta& delta) {
  if (stops_.stopped()) return;
  if (auto rest = text_.finish()) delta.text += stops_.push(*rest);
  if (stops_.stopped()) {
    stopped_by_string_ = true;
    return;
  }
  delta.text += stops_.finish();
}

void CompletionSession::record_end() {
  if (recorded_ || !started_) return;
  recorded_ = true;
  std::optional<Result<RequestResult>> outcome;
  {
    std::lock_guard lock(mutex_);
    outcome = outcome_;
  }
  if (client_gone_) {
    metrics_.count(Outcome::kCancelled);
  } else if (failure()) {
    metrics_.count(Outcome::kFailed);
  } else {
    metrics_.count(Outcome::kSuccess);
  }
  metrics_.add_tokens(prompt_ids_.size(), generated_);
  if (outcome && outcome->is_ok()) metrics_.add_timeline(outcome->value());
}

std::optional<ApiError> CompletionSession::failure() const {
  if (stopped_by_string_ || !finished_) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (!outcome_ || outcome_->is_ok()) return std::nullopt;
  return coordinator_error(outcome_->error());
}

std::string CompletionSession::response_id() const {
  return (request_.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") +
         std::to_string(handle_.id());
}

json CompletionSession::usage() const {
  return {{"prompt_tokens", prompt_ids_.size()},
          {"completion_tokens", generated_},
          {"total_tokens", prompt_ids_.size() + generated_}};
}

std::string CompletionSession::finish_reason() const {
  if (stopped_by_string_) return "stop";
  const bool ended_turn = last_token_ >= 0 && (last_token_ == model_.tokenizer->eos_token() ||
                                               model_.tokenizer->is_special(last_token_));
  return generated_ >= static_cast<size_t>(request_.max_tokens) && !ended_turn ? "length" : "stop";
}

json CompletionSession::chunk(const Delta& delta, const json& finish_reason) const {
  json choice = {{"index", 0},
                 {"logprobs", delta.logprobs.is_null() ? json(nullptr) : delta.logprobs},
                 {"finish_reason", finish_reason}};
  json out = {{"id", response_id()}, {"created", created_}, {"model", model_.name}};
  if (request_.endpoint == Endpoint::kChat) {
    out["object"] = "chat.completion.chunk";
    json content = json::object();
    if (!role_sent_) content["role"] = "assistant";
    if (!delta.text.empty() || !role_sent_) content["content"] = delta.text;
    choice["delta"] = content;
  } else {
    out["object"] = "text_completion";
    choice["text"] = delta.text;
  }
  out["choices"] = json::array({choice});
  if (request_.include_usage) out["usage"] = nullptr;
  return out;
}

void CompletionSession::stream(const std::function<bool(const std::string&)>& write,
                               const std::function<bool()>& stopping) {
  auto send_text = [&](const std::string& text) {
    if (client_gone_) return false;
    if (!write(text)) {
      client_gone_ = true;
      cancel("the HTTP client disconnected");
      return false;
    }
    return true;
  };
  auto send = [&](const json& event) { return send_text("data: " + dump(event) + "\n\n"); };
  if (request_.endpoint == Endpoint::kChat) {
    if (!send(chunk(Delta{}, nullptr))) return;
    role_sent_ = true;
  }
  auto quiet_since = Clock::now();
  while (!finished_) {
    if (stopping()) {
      cancel("the HTTP server is shutting down");
      client_gone_ = true;
      return;
    }
    Delta delta = pump(kPollEvery);
    if (!delta.text.empty() || !delta.logprobs.is_null()) {
      if (!send(chunk(delta, nullptr))) return;
      quiet_since = Clock::now();
    } else if (Clock::now() - quiet_since >= kKeepAliveEvery) {
      // A comment line: ignored by clients, and a write that finds a closed connection.
      if (!send_text(": keep-alive\n\n")) return;
      quiet_since = Clock::now();
    }
  }
  if (waiter_.joinable() && !stopped_by_string_) waiter_.join();
  if (auto error = failure()) {
    record_end();
    send(error_json(*error));
    send_text("data: [DONE]\n\n");
    return;
  }
  if (!send(chunk(Delta{}, finish_reason()))) return;
  if (request_.include_usage) {
    json last = {{"id", response_id()},
                 {"object", request_.endpoint == Endpoint::kChat ? "chat.completion.chunk"
                                                                 : "text_completion"},
                 {"created", created_},
                 {"model", model_.name},
                 {"choices", json::array()},
                 {"usage", usage()}};
    if (!send(last)) return;
  }
  send_text("data: [DONE]\n\n");
}

std::variant<json, ApiError> CompletionSession::complete() {
  while (!finished_) pump(std::chrono::seconds(1));
  if (waiter_.joinable() && !stopped_by_string_) waiter_.join();
  if (auto error = failure()) return *error;
  json choice = {{"index", 0},
                 {"logprobs", all_logprobs_.is_null() ? json(nullptr) : all_logprobs_},
                 {"finish_reason", finish_reason()}};
  json out = {{"id", response_id()}, {"created", created_}, {"model", model_.name}};
  if (request_.endpoint == Endpoint::kChat) {
    out["object"] = "chat.completion";
    choice["message"] = {{"role", "assistant"}, {"content", text_so_far_}};
  } else {
    out["object"] = "text_completion";
    choice["text"] = text_so_far_;
  }
  out["choices"] = json::array({choice});
  out["usage"] = usage();
  return out;
}

}  // namespace runahead::http
