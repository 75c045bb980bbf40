#include "api/request_state.h"

#include <chrono>

#include "api/conversions.h"

namespace runahead {

RequestHandle::RequestHandle(std::shared_ptr<State> state) : state_(std::move(state)) {}

uint64_t RequestHandle::id() const {
  return state_ ? state_->id() : 0;
}

Result<int32_t> RequestHandle::first_token() const {
  if (!state_) return make_error(ErrorCode::kInvalidArgument, "empty request handle");
  return state_->first_token();
}

std::optional<int32_t> RequestHandle::next_token() const {
  return state_ ? state_->next_token() : std::nullopt;
}

Result<RequestResult> RequestHandle::result() const {
  if (!state_) return make_error(ErrorCode::kInvalidArgument, "empty request handle");
  return state_->wait_result(std::nullopt);
}

Result<RequestResult> RequestHandle::result_within(int64_t timeout_ms) const {
  if (!state_) return make_error(ErrorCode::kInvalidArgument, "empty request handle");
  return state_->wait_result(std::chrono::milliseconds(timeout_ms));
}

RequestHandle::State::State(TokenCallback on_token, StreamCallback on_stream)
    : on_token_(std::move(on_token)), on_stream_(std::move(on_stream)) {}

void RequestHandle::State::set_id(uint64_t id) {
  std::lock_guard lock(mutex_);
  id_ = id;
}

uint64_t RequestHandle::State::id() const {
  std::lock_guard lock(mutex_);
  return id_;
}

void RequestHandle::State::token(const net::Token& token) {
  StreamedToken streamed{.request_id = token.request_id,
                         .token = token.token,
                         .index = token.index,
                         .logprobs = std::nullopt};
  {
    std::lock_guard lock(mutex_);
    if (outcome_) return;
    streamed_.push_back(token.token);
    tokens_.push_back(token.token);
    if (!token.logits.empty()) logits_.push_back(token.logits);
    if (!token.top_tokens.empty()) {
      PositionLogprobs position{.token = token.token, .logprob = token.logprob, .top = {}};
      for (size_t i = 0; i < token.top_tokens.size(); ++i) {
        position.top.push_back(TokenLogprob{token.top_tokens[i], token.top_logprobs[i]});
      }
      if (on_stream_) streamed.logprobs = position;
      logprobs_.push_back(std::move(position));
    }
  }
  changed_.notify_all();
  if (on_token_) on_token_(token.request_id, token.token, token.index);
  if (on_stream_) on_stream_(streamed);
}

void RequestHandle::State::result(const net::RequestResult& result) {
  RequestResult out = to_request_result(result);
  {
    std::lock_guard lock(mutex_);
    if (outcome_) return;
    out.logits = std::move(logits_);
    out.logprobs = std::move(logprobs_);
    outcome_ = std::move(out);
  }
  changed_.notify_all();
}

void RequestHandle::State::error(const net::RequestError& error) {
  {
    std::lock_guard lock(mutex_);
    if (outcome_) return;
    outcome_ = Result<RequestResult>(make_error(error.code, error.message));
  }
  changed_.notify_all();
}

Result<int32_t> RequestHandle::State::first_token() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !tokens_.empty() || outcome_.has_value(); });
  if (!tokens_.empty()) return tokens_.front();
  return outcome_->error();
}

std::optional<int32_t> RequestHandle::State::next_token() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !streamed_.empty() || outcome_.has_value(); });
  if (streamed_.empty()) return std::nullopt;
  const int32_t token = streamed_.front();
  streamed_.pop_front();
  return token;
}

Result<RequestResult> RequestHandle::State::wait_result(
    std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock lock(mutex_);
  auto ready = [&] { return outcome_.has_value(); };
  if (timeout) {
    if (!changed_.wait_for(lock, *timeout, ready)) {
      return make_error(ErrorCode::kTimeout, "request " + std::to_string(id_) +
                                                 " still running after " +
                                                 std::to_string(timeout->count()) + " ms");
    }
  } else {
    changed_.wait(lock, ready);
  }
  return *outcome_;
}

}  // namespace runahead
