// The liveness clock counts real time between checks, but a pause (a gap between two checks
// longer than the step) only up to the step.
#include <gtest/gtest.h>

#include "runtime/liveness_clock.h"

namespace runahead::runtime {
namespace {

using namespace std::chrono_literals;

TEST(LivenessClock, CountsRealTimeBetweenRegularChecks) {
  const auto start = std::chrono::steady_clock::time_point{};
  LivenessClock clock(1s, start);
  for (int i = 1; i <= 30; ++i) EXPECT_EQ(clock.check(start + i * 100ms), 0ms);
  EXPECT_EQ(clock.now(start + 3s), 3s);
  EXPECT_EQ(clock.now(start + 3s + 50ms), 3s + 50ms);
}

TEST(LivenessClock, APauseCountsOnlyOneStep) {
  const auto start = std::chrono::steady_clock::time_point{};
  LivenessClock clock(1s, start);
  EXPECT_EQ(clock.check(start + 100ms), 0ms);
  const auto heard = clock.now(start + 100ms);
  // Paused for 8 s: the check after it counts 1 s and reports the rest as a stall.
  EXPECT_EQ(clock.check(start + 8100ms), 7s);
  EXPECT_EQ(clock.now(start + 8100ms) - heard, 1s);
  // Between checks, now() is capped the same way.
  EXPECT_EQ(clock.now(start + 20s) - heard, 2s);
  // Regular checks afterwards count fully again.
  EXPECT_EQ(clock.check(start + 8200ms), 0ms);
  EXPECT_EQ(clock.now(start + 8200ms) - heard, 1100ms);
}

TEST(LivenessClock, ABurstOfLateChecksAddsNothing) {
  const auto start = std::chrono::steady_clock::time_point{};
  LivenessClock clock(500ms, start);
  (void)clock.check(start + 5s);  // the first check after a pause
  for (int i = 0; i < 50; ++i) EXPECT_EQ(clock.check(start + 5s), 0ms);
  EXPECT_EQ(clock.now(start + 5s), 500ms);
}

TEST(LivenessClock, TimeGoingBackwardsCountsAsNothing) {
  const auto start = std::chrono::steady_clock::time_point{} + 10s;
  LivenessClock clock(1s, start);
  EXPECT_EQ(clock.check(start - 1s), 0ms);
  EXPECT_EQ(clock.now(start - 1s), 0ms);
}

}  // namespace
}  // namespace runahead::runtime
