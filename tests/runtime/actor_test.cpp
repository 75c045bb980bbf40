// Actors: typed dispatch, per-actor order, one message at a time, mailbox limits.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <variant>
#include <vector>

#include "runtime/actor.h"
#include "runtime/overloaded.h"

namespace runahead::runtime {
namespace {

struct Append {
  int value;
};
struct Report {
  std::promise<std::vector<int>>* reply;
};
using RecorderMessage = std::variant<Append, Report>;

// Records the values it receives, and how many handlers ever ran at once.
class Recorder : public Actor<RecorderMessage> {
 public:
  explicit Recorder(std::atomic<int>* max_concurrent) : max_concurrent_(max_concurrent) {}

 protected:
  void on_message(RecorderMessage message) override {
    const int running = ++running_;
    int seen = max_concurrent_->load();
    while (running > seen && !max_concurrent_->compare_exchange_weak(seen, running)) {
    }
    std::visit(Overloaded{
                   [&](Append& append) {
                     values_.push_back(append.value);
                     if (values_.size() % 64 == 0) std::this_thread::yield();
                   },
                   [&](Report& report) { report.reply->set_value(values_); },
               },
               message);
    --running_;
  }

 private:
  std::atomic<int>* max_concurrent_;
  std::atomic<int> running_{0};
  std::vector<int> values_;
};

TEST(Actor, HandlesMessagesInOrderOneAtATimeAcrossThreads) {
  ActorSystemOptions options;
  options.threads = 4;
  ActorSystem system(options);
  system.start();
  std::atomic<int> max_concurrent{0};
  auto recorder = system.spawn<Recorder>("recorder", &max_concurrent);
  ASSERT_TRUE(recorder.is_ok()) << recorder.error().to_string();

  // Four senders, each with its own increasing sequence: per-sender order must survive.
  constexpr int kPerSender = 2000;
  std::vector<std::thread> senders;
  for (int sender = 0; sender < 4; ++sender) {
    senders.emplace_back([&, sender] {
      for (int i = 0; i < kPerSender; ++i) {
        ASSERT_TRUE(recorder->tell(Append{sender * kPerSender + i}).is_ok());
      }
    });
  }
  for (auto& thread : senders) thread.join();
  std::promise<std::vector<int>> reply;
  auto values_future = reply.get_future();
  ASSERT_TRUE(recorder->tell(Report{&reply}).is_ok());
  ASSERT_EQ(values_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::vector<int> values = values_future.get();

  ASSERT_EQ(values.size(), 4u * kPerSender);
  std::vector<int> last(4, -1);
  for (int value : values) {
    const int sender = value / kPerSender;
    EXPECT_GT(value, last[sender]) << "sender " << sender << " reordered";
    last[sender] = value;
  }
  EXPECT_EQ(max_concurrent.load(), 1);
  system.stop();
}

struct Hop {
  int remaining;
};
using RelayMessage = std::variant<Hop>;

// Passes a counter to its peer until it reaches zero.
class Relay : public Actor<RelayMessage> {
 public:
  Relay(std::vector<std::string>* trace, ActorRef<RelayMessage>* peer)
      : trace_(trace), peer_(peer) {}

 protected:
  void on_message(RelayMessage message) override {
    std::visit(Overloaded{[&](Hop& hop) {
                 trace_->push_back(name() + ":" + std::to_string(hop.remaining));
                 if (hop.remaining > 0) {
                   EXPECT_TRUE(peer_->tell(Hop{hop.remaining - 1}).is_ok());
                 }
               }},
               message);
  }

 private:
  std::vector<std::string>* trace_;
  ActorRef<RelayMessage>* peer_;
};

TEST(Actor, DeterministicModeStepsOneMessagePerPoll) {
  ActorSystem system(ActorSystem::deterministic_options());
  std::vector<std::string> trace;
  ActorRef<RelayMessage> a_ref, b_ref;
  auto a = system.spawn<Relay>("a", &trace, &b_ref);
  auto b = system.spawn<Relay>("b", &trace, &a_ref);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  a_ref = *a;
  b_ref = *b;

  ASSERT_TRUE(a_ref.tell(Hop{3}).is_ok());
  EXPECT_TRUE(trace.empty()) << "nothing runs until the test steps the system";
  EXPECT_EQ(system.poll_one(), 1u);
  EXPECT_EQ(trace, (std::vector<std::string>{"a:3"}));
  EXPECT_EQ(system.poll_one(), 1u);
  EXPECT_EQ(trace, (std::vector<std::string>{"a:3", "b:2"}));
  system.poll();
  EXPECT_EQ(trace, (std::vector<std::string>{"a:3", "b:2", "a:1", "b:0"}));
  EXPECT_EQ(system.poll_one(), 0u);
  system.stop();
}

TEST(Actor, FullMailboxRefusesWithResourceExhausted) {
  ActorSystem system(ActorSystem::deterministic_options());
  std::vector<std::string> trace;
  ActorRef<RelayMessage> none;
  SpawnOptions options;
  options.mailbox_capacity = 2;
  auto relay = system.spawn<Relay>("small", options, &trace, &none);
  ASSERT_TRUE(relay.is_ok());
  EXPECT_TRUE(relay->tell(Hop{0}).is_ok());
  EXPECT_TRUE(relay->tell(Hop{0}).is_ok());
  Status third = relay->tell(Hop{0});
  ASSERT_FALSE(third.is_ok());
  EXPECT_EQ(third.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(third.message().find("small"), std::string::npos) << third.message();
  system.poll();
  EXPECT_EQ(trace.size(), 2u);
  EXPECT_TRUE(relay->tell(Hop{0}).is_ok()) << "room again once handled";
  system.stop();
}

class FailsToStart : public Actor<RelayMessage> {
 protected:
  Status on_start() override {
    return make_error(ErrorCode::kInvalidArgument, "port 99999 is not a port");
  }
  void on_message(RelayMessage) override {}
};

TEST(Actor, SpawnReportsOnStartError) {
  ActorSystem system(ActorSystem::deterministic_options());
  auto failed = system.spawn<FailsToStart>("listener");
  ASSERT_FALSE(failed.is_ok());
  EXPECT_NE(failed.error().message.find("listener"), std::string::npos);
  EXPECT_NE(failed.error().message.find("port 99999"), std::string::npos);
}

}  // namespace
}  // namespace runahead::runtime
