// Request-scoped cancellation: a token per request that any thread may check, and the
// operations (timers, sends, computations) an actor registered under that request, which
// cancel() undoes in one place.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace runahead::runtime {

using RequestId = uint64_t;

// A view of one request's cancellation state; cheap to copy. A default token never cancels.
class CancellationToken {
 public:
  CancellationToken() = default;

  bool cancelled() const { return state_ && state_->cancelled.load(std::memory_order_acquire); }
  // ok while not cancelled; kCancelled naming the request and the reason afterwards.
  Status status() const;

 private:
  friend class RequestScopes;
  struct State {
    RequestId request = 0;
    std::atomic<bool> cancelled{false};
    std::mutex mutex;
    std::string reason;
  };
  explicit CancellationToken(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// The requests one actor works on. Not thread-safe: used from the owning actor's handlers only
// (the tokens it hands out are thread-safe).
class RequestScopes {
 public:
  RequestScopes() = default;
  RequestScopes(const RequestScopes&) = delete;
  RequestScopes& operator=(const RequestScopes&) = delete;

  // The token of `request`, opening its scope on first use.
  CancellationToken token(RequestId request);
  // Runs `undo` when `request` is cancelled; at once if it already was.
  void on_cancel(RequestId request, std::function<void()> undo);
  // Marks the request cancelled and runs its registered undo actions in registration order.
  // Returns false if the request had no open scope (nothing to cancel).
  bool cancel(RequestId request, const std::string& reason);
  bool is_cancelled(RequestId request) const;
  // Closes the scope of a finished request: its undo actions are dropped, not run.
  void finish(RequestId request);
  size_t open_scopes() const { return scopes_.size(); }

 private:
  struct Scope {
    std::shared_ptr<CancellationToken::State> state;
    std::vector<std::function<void()>> undo;
  };
  Scope& open(RequestId request);
  std::unordered_map<RequestId, Scope> scopes_;
};

}  // namespace runahead::runtime
