// Timers on the manual clock: one-shot, periodic, cancellation (also of a queued tick), order.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/actor.h"
#include "runtime/overloaded.h"

namespace runahead::runtime {
namespace {

using namespace std::chrono_literals;

struct Fired {
  std::string label;
};
struct StartOnce {
  Duration delay;
  std::string label;
  TimerId* id;
};
struct StartEvery {
  Duration period;
  std::string label;
  TimerId* id;
};
struct Cancel {
  TimerId id;
};
// When the timer labelled `label` fires, cancel `victim`.
struct CancelWhenFired {
  std::string label;
  TimerId* victim;
};
using TimerMessage = std::variant<Fired, StartOnce, StartEvery, Cancel, CancelWhenFired>;

class TimerUser : public Actor<TimerMessage> {
 public:
  explicit TimerUser(std::vector<std::string>* fired, std::promise<void>* first_fire = nullptr)
      : fired_(fired), first_fire_(first_fire) {}

 protected:
  void on_message(TimerMessage message) override {
    std::visit(
        Overloaded{
            [&](Fired& fired) {
              fired_->push_back(fired.label);
              if (fired.label == cancel_label_) cancel_timer(*victim_);
              if (first_fire_ != nullptr) std::exchange(first_fire_, nullptr)->set_value();
            },
            [&](StartOnce& start) { *start.id = start_timer(start.delay, Fired{start.label}); },
            [&](StartEvery& start) {
              std::string label = start.label;
              *start.id = start_periodic(start.period, [label] { return Fired{label}; });
            },
            [&](Cancel& cancel) { cancel_timer(cancel.id); },
            [&](CancelWhenFired& rule) {
              cancel_label_ = rule.label;
              victim_ = rule.victim;
            },
        },
        message);
  }

 private:
  std::vector<std::string>* fired_;
  std::promise<void>* first_fire_;
  std::string cancel_label_;
  TimerId* victim_ = nullptr;
};

class TimerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spawned = system_.spawn<TimerUser>("timers", &fired_);
    ASSERT_TRUE(spawned.is_ok());
    user_ = *spawned;
  }
  void send(TimerMessage message) {
    ASSERT_TRUE(user_.tell(std::move(message)).is_ok());
    system_.poll();
  }

  ActorSystem system_{ActorSystem::deterministic_options()};
  std::vector<std::string> fired_;
  ActorRef<TimerMessage> user_;
};

TEST_F(TimerTest, OneShotFiresOnlyWhenTheClockReachesItsDeadline) {
  TimerId id = 0;
  send(StartOnce{100ms, "once", &id});
  ASSERT_NE(id, 0u);
  system_.advance(99ms);
  system_.poll();
  EXPECT_TRUE(fired_.empty());
  system_.advance(1ms);
  system_.poll();
  EXPECT_EQ(fired_, (std::vector<std::string>{"once"}));
  system_.advance(1s);
  system_.poll();
  EXPECT_EQ(fired_.size(), 1u) << "a one-shot timer fires once";
}

TEST_F(TimerTest, TimersFireInDeadlineOrder) {
  TimerId late = 0, early = 0, middle = 0;
  send(StartOnce{30ms, "late", &late});
  send(StartOnce{10ms, "early", &early});
  send(StartOnce{20ms, "middle", &middle});
  system_.advance(1s);
  system_.poll();
  EXPECT_EQ(fired_, (std::vector<std::string>{"early", "middle", "late"}));
}

TEST_F(TimerTest, PeriodicFiresOncePerPeriodUntilCancelled) {
  TimerId id = 0;
  send(StartEvery{10ms, "tick", &id});
  system_.advance(35ms);  // periods end at 10, 20, 30
  system_.poll();
  EXPECT_EQ(fired_.size(), 3u);
  send(Cancel{id});
  system_.advance(100ms);
  system_.poll();
  EXPECT_EQ(fired_.size(), 3u);
}

TEST_F(TimerTest, CancelledBeforeDeadlineNeverFires) {
  TimerId id = 0;
  send(StartOnce{50ms, "cancelled", &id});
  send(Cancel{id});
  system_.advance(1s);
  system_.poll();
  EXPECT_TRUE(fired_.empty());
}

TEST_F(TimerTest, CancelAfterFiringDropsTheQueuedMessage) {
  TimerId fast = 0, slow = 0;
  send(StartOnce{10ms, "fast", &fast});
  send(StartOnce{20ms, "slow", &slow});
  send(CancelWhenFired{"fast", &slow});
  system_.advance(20ms);  // both fire: the mailbox holds Fired{fast}, Fired{slow}
  system_.poll();         // fast's handler cancels slow, whose message is already queued
  EXPECT_EQ(fired_, (std::vector<std::string>{"fast"}));
}

TEST(RealTimeTimer, FiresOnTheSteadyClock) {
  ActorSystem system;
  system.start();
  std::vector<std::string> fired;
  std::promise<void> first_fire;
  auto fired_future = first_fire.get_future();
  auto user = system.spawn<TimerUser>("timers", &fired, &first_fire);
  ASSERT_TRUE(user.is_ok());
  TimerId id = 0;
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(user->tell(StartOnce{20ms, "real", &id}).is_ok());
  ASSERT_EQ(fired_future.wait_for(5s), std::future_status::ready);
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 20ms);
  system.stop(StopMode::kDrain);
  EXPECT_EQ(fired, (std::vector<std::string>{"real"}));
}

}  // namespace
}  // namespace runahead::runtime
