// One OpenAI completion or chat request on the coordinator: the prompt through the model's
// tokenizer (and chat template), the generated tokens back as text with stop strings applied,
// log-probabilities and usage, either as server-sent events or as one response.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/api_error.h"
#include "http/metrics.h"
#include "http/openai_request.h"
#include "http/serving_model.h"
#include "http/stop_matcher.h"
#include "runahead/coordinator.h"
#include "text/text_stream.h"

namespace runahead::http {

class CompletionSession {
 public:
  using Clock = std::chrono::steady_clock;

  CompletionSession(Coordinator& coordinator, const ServingModel& model, ServingMetrics& metrics,
                    CompletionRequest request, Clock::time_point arrived);
  // Cancels the request on the workers if it is still running.
  ~CompletionSession();
  CompletionSession(const CompletionSession&) = delete;
  CompletionSession& operator=(const CompletionSession&) = delete;

  // Tokenizes and submits; the error object to answer with when it cannot start (a bad prompt,
  // a full queue, no coordinator).
  [[nodiscard]] std::optional<ApiError> start();

  // Writes server-sent events (`data: {...}\n\n`, then `data: [DONE]\n\n`) until the request
  // ends. `write` answering false means the client went away: the request is cancelled.
  // `stopping` answering true (server shutdown) ends the stream early.
  void stream(const std::function<bool(const std::string&)>& write,
              const std::function<bool()>& stopping);

  // Waits for the end: the response body, or the error object.
  [[nodiscard]] std::variant<nlohmann::json, ApiError> complete();

 private:
  struct Arrival {
    StreamedToken token;
    Clock::time_point at;
  };
  // What a batch of tokens added: text and, when asked for, their log-probabilities.
  struct Delta {
    std::string text;
    nlohmann::json logprobs;  // null, or this batch's entries
  };

  // Waits up to `wait` for tokens or the end; returns what they add. Sets finished_ at the end.
  Delta pump(std::chrono::milliseconds wait);
  void take(const Arrival& arrival, Delta& delta);
  void append_logprobs(const StreamedToken& token, Delta& delta);
  void finish_text(Delta& delta);
  void cancel(const std::string& reason);
  void record_end();

  std::string response_id() const;
  nlohmann::json usage() const;
  nlohmann::json chunk(const Delta& delta, const nlohmann::json& finish_reason) const;
  std::string finish_reason() const;
  std::optional<ApiError> failure() const;

  Coordinator& coordinator_;
  const ServingModel& model_;
  ServingMetrics& metrics_;
  CompletionRequest request_;
  const Clock::time_point arrived_;
  const int64_t created_;
  std::vector<int32_t> prompt_ids_;
  RequestHandle handle_;
  bool started_ = false;

  // Filled by the coordinator's threads.
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Arrival> arrivals_;
  std::optional<Result<RequestResult>> outcome_;
  std::thread waiter_;  // waits for the request's end

  // The consumer's view (one thread).
  text::TextStream text_;
  StopMatcher stops_;
  std::string text_so_far_;
  nlohmann::json all_logprobs_;
  size_t generated_ = 0;
  int32_t last_token_ = -1;
  std::optional<Clock::time_point> last_token_at_;
  bool stopped_by_string_ = false;
  bool client_gone_ = false;
  bool finished_ = false;
  bool recorded_ = false;
  bool role_sent_ = false;
};

}  // namespace runahead::http
