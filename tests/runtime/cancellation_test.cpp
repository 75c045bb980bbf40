// Request-scoped cancellation: tokens, undo actions, timers tied to a request.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "runtime/actor.h"
#include "runtime/cancellation.h"
#include "runtime/overloaded.h"

namespace runahead::runtime {
namespace {

using namespace std::chrono_literals;

TEST(RequestScopes, CancelSetsTokenAndRunsUndoActionsOnce) {
  RequestScopes scopes;
  CancellationToken token = scopes.token(7);
  CancellationToken other = scopes.token(8);
  std::vector<std::string> undone;
  scopes.on_cancel(7, [&] { undone.push_back("send"); });
  scopes.on_cancel(7, [&] { undone.push_back("timer"); });
  EXPECT_FALSE(token.cancelled());
  EXPECT_TRUE(token.status().is_ok());

  EXPECT_TRUE(scopes.cancel(7, "worker w2 died"));
  EXPECT_TRUE(token.cancelled());
  EXPECT_FALSE(other.cancelled());
  EXPECT_EQ(undone, (std::vector<std::string>{"send", "timer"}));
  Status status = token.status();
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.code(), ErrorCode::kCancelled);
  EXPECT_NE(status.message().find("request 7"), std::string::npos);
  EXPECT_NE(status.message().find("worker w2 died"), std::string::npos);

  EXPECT_TRUE(scopes.cancel(7, "again"));
  EXPECT_EQ(undone.size(), 2u) << "undo actions run once";
  scopes.on_cancel(7, [&] { undone.push_back("late"); });
  EXPECT_EQ(undone.back(), "late") << "registered after cancel: runs at once";
}

TEST(RequestScopes, FinishDropsUndoActionsAndUnknownRequestsAreNotCancelled) {
  RequestScopes scopes;
  bool undone = false;
  scopes.on_cancel(3, [&] { undone = true; });
  scopes.finish(3);
  EXPECT_FALSE(scopes.cancel(3, "too late"));
  EXPECT_FALSE(undone);
  EXPECT_EQ(scopes.open_scopes(), 0u);
  EXPECT_FALSE(CancellationToken().cancelled());
}

TEST(CancellationToken, VisibleFromAnotherThread) {
  RequestScopes scopes;
  CancellationToken token = scopes.token(1);
  std::thread watcher([token] {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!token.cancelled() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    EXPECT_TRUE(token.cancelled());
  });
  EXPECT_TRUE(scopes.cancel(1, "client went away"));
  watcher.join();
}

struct Timeout {
  RequestId request;
};
struct Begin {
  RequestId request;
};
struct Abort {
  RequestId request;
};
using RequestMessage = std::variant<Timeout, Begin, Abort>;

// Starts a timeout per request; cancelling the request must cancel its timeout.
class RequestOwner : public Actor<RequestMessage> {
 public:
  RequestOwner(std::vector<RequestId>* timed_out, std::vector<CancellationToken>* tokens)
      : timed_out_(timed_out), tokens_(tokens) {}

 protected:
  void on_message(RequestMessage message) override {
    std::visit(Overloaded{
                   [&](Timeout& timeout) { timed_out_->push_back(timeout.request); },
                   [&](Begin& begin) {
                     tokens_->push_back(request_token(begin.request));
                     start_timer(100ms, Timeout{begin.request}, begin.request);
                   },
                   [&](Abort& abort) { cancel_request(abort.request, "client cancelled"); },
               },
               message);
  }

 private:
  std::vector<RequestId>* timed_out_;
  std::vector<CancellationToken>* tokens_;
};

TEST(ActorCancellation, CancellingARequestCancelsItsTimersOnly) {
  ActorSystem system(ActorSystem::deterministic_options());
  std::vector<RequestId> timed_out;
  std::vector<CancellationToken> tokens;
  auto owner = system.spawn<RequestOwner>("owner", &timed_out, &tokens);
  ASSERT_TRUE(owner.is_ok());
  ASSERT_TRUE(owner->tell(Begin{1}).is_ok());
  ASSERT_TRUE(owner->tell(Begin{2}).is_ok());
  ASSERT_TRUE(owner->tell(Abort{1}).is_ok());
  system.poll();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_TRUE(tokens[0].cancelled());
  EXPECT_FALSE(tokens[1].cancelled());
  system.advance(200ms);
  system.poll();
  EXPECT_EQ(timed_out, (std::vector<RequestId>{2}));
  system.stop();
}

}  // namespace
}  // namespace runahead::runtime
