// The shared state behind a RequestHandle: the sink the coordinator (or a remote client's
// connection) answers into, and what the handle's blocking calls wait on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "actors/request_sink.h"
#include "runahead/request.h"

namespace runahead {

class RequestHandle::State final : public RequestSink {
 public:
  explicit State(TokenCallback on_token, StreamCallback on_stream = {});

  void set_id(uint64_t id);
  uint64_t id() const;

  void token(const net::Token& token) override;
  void result(const net::RequestResult& result) override;
  void error(const net::RequestError& error) override;

  Result<int32_t> first_token();
  std::optional<int32_t> next_token();
  Result<RequestResult> wait_result(std::optional<std::chrono::milliseconds> timeout);

 private:
  const TokenCallback on_token_;
  const StreamCallback on_stream_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t id_ = 0;
  std::vector<int32_t> tokens_;
  std::deque<int32_t> streamed_;
  std::vector<std::vector<float>> logits_;
  std::vector<PositionLogprobs> logprobs_;
  std::optional<Result<RequestResult>> outcome_;
};

}  // namespace runahead
