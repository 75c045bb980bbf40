#include "runtime/cancellation.h"

#include <fmt/format.h>

namespace runahead::runtime {

Status CancellationToken::status() const {
  if (!cancelled()) return Status::ok();
  std::lock_guard lock(state_->mutex);
  return make_error(ErrorCode::kCancelled,
                    fmt::format("request {} cancelled: {}", state_->request, state_->reason));
}

RequestScopes::Scope& RequestScopes::open(RequestId request) {
  auto [it, inserted] = scopes_.try_emplace(request);
  if (inserted) {
    it->second.state = std::make_shared<CancellationToken::State>();
    it->second.state->request = request;
  }
  return it->second;
}

CancellationToken RequestScopes::token(RequestId request) {
  return CancellationToken(open(request).state);
}

void RequestScopes::on_cancel(RequestId request, std::function<void()> undo) {
  Scope& scope = open(request);
  if (scope.state->cancelled.load(std::memory_order_acquire)) {
    undo();
    return;
  }
  scope.undo.push_back(std::move(undo));
}

bool RequestScopes::cancel(RequestId request, const std::string& reason) {
  auto it = scopes_.find(request);
  if (it == scopes_.end()) return false;
  auto state = it->second.state;
  if (state->cancelled.load(std::memory_order_acquire)) return true;
  {
    std::lock_guard lock(state->mutex);
    state->reason = reason;
  }
  state->cancelled.store(true, std::memory_order_release);
  // An undo action may register further ones or finish the scope: take the list first.
  std::vector<std::function<void()>> undo = std::move(it->second.undo);
  it->second.undo.clear();
  for (auto& action : undo) action();
  return true;
}

bool RequestScopes::is_cancelled(RequestId request) const {
  auto it = scopes_.find(request);
  return it != scopes_.end() && it->second.state->cancelled.load(std::memory_order_acquire);
}

void RequestScopes::finish(RequestId request) {
  scopes_.erase(request);
}

}  // namespace runahead::runtime
