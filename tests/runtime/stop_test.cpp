// Stopping: drain handles what was accepted, drop discards it, on_stop runs once, and nothing
// is accepted afterwards; the threaded system joins cleanly.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <variant>

#include "runtime/actor.h"
#include "runtime/overloaded.h"

namespace runahead::runtime {
namespace {

using namespace std::chrono_literals;

struct Work {
  std::shared_ptr<int> payload;  // counts live messages through its use count
};
using WorkMessage = std::variant<Work>;

struct Counts {
  int handled = 0;
  int stopped = 0;
};

class Worker : public Actor<WorkMessage> {
 public:
  explicit Worker(Counts* counts) : counts_(counts) {}

 protected:
  void on_message(WorkMessage message) override {
    std::visit(Overloaded{[&](Work&) { ++counts_->handled; }}, message);
  }
  void on_stop() override { ++counts_->stopped; }

 private:
  Counts* counts_;
};

TEST(Stop, DrainHandlesEveryAcceptedMessage) {
  ActorSystem system(ActorSystem::deterministic_options());
  Counts counts;
  auto worker = system.spawn<Worker>("worker", &counts);
  ASSERT_TRUE(worker.is_ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(worker->tell(Work{}).is_ok());
  system.stop(StopMode::kDrain);
  EXPECT_EQ(counts.handled, 10);
  EXPECT_EQ(counts.stopped, 1);
  Status after = worker->tell(Work{});
  EXPECT_FALSE(after.is_ok());
  EXPECT_EQ(after.code(), ErrorCode::kUnavailable);
  system.stop();
  EXPECT_EQ(counts.stopped, 1) << "stop is idempotent";
}

TEST(Stop, DropDestroysQueuedMessagesUnhandled) {
  ActorSystem system(ActorSystem::deterministic_options());
  Counts counts;
  auto worker = system.spawn<Worker>("worker", &counts);
  ASSERT_TRUE(worker.is_ok());
  auto payload = std::make_shared<int>(0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(worker->tell(Work{payload}).is_ok());
  system.poll_one();
  EXPECT_EQ(counts.handled, 1);
  EXPECT_EQ(payload.use_count(), 10);
  system.stop(StopMode::kDrop);
  EXPECT_EQ(counts.handled, 1);
  EXPECT_EQ(counts.stopped, 1);
  EXPECT_EQ(payload.use_count(), 1) << "dropped messages are destroyed";
}

TEST(Stop, ThreadedDrainAndRestartlessShutdown) {
  for (int round = 0; round < 20; ++round) {
    ActorSystemOptions options;
    options.threads = 3;
    ActorSystem system(options);
    Counts counts;
    auto worker = system.spawn<Worker>("worker", &counts);
    ASSERT_TRUE(worker.is_ok());
    system.start();
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(worker->tell(Work{}).is_ok());
    system.stop(StopMode::kDrain);
    EXPECT_EQ(counts.handled, 500);
    EXPECT_EQ(counts.stopped, 1);
  }
}

TEST(Stop, DestructorStopsARunningSystem) {
  Counts counts;
  {
    ActorSystem system;
    system.start();
    auto worker = system.spawn<Worker>("worker", &counts);
    ASSERT_TRUE(worker.is_ok());
    ASSERT_TRUE(worker->tell(Work{}).is_ok());
  }
  EXPECT_EQ(counts.stopped, 1);
}

TEST(Stop, SpawnAfterStopFails) {
  ActorSystem system(ActorSystem::deterministic_options());
  system.stop();
  Counts counts;
  auto late = system.spawn<Worker>("late", &counts);
  ASSERT_FALSE(late.is_ok());
  EXPECT_EQ(late.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace runahead::runtime
