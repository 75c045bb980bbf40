// Rate-limited logging: a key's lines beyond its allowance are counted and reported with the
// next line written; keys are independent; peer-derived keys cannot grow the limiter.
#include <gtest/gtest.h>

#include "core/log_limiter.h"
#include "core/token_bucket.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;

TEST(LogLimiter, WritesTheAllowanceThenCountsAndReportsTheRest) {
  LogLimiter limiter(LogLimiter::Options{.lines_per_window = 3, .window = 1000ms});
  const auto start = LogLimiter::Clock::now();
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.admit("cannot send", start, &suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.admit("cannot send", start + 10ms, nullptr));
  // Another key has its own allowance.
  EXPECT_TRUE(limiter.admit("refused", start + 10ms, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  // The next window writes again and says how many lines were dropped.
  ASSERT_TRUE(limiter.admit("cannot send", start + 1001ms, &suppressed));
  EXPECT_EQ(suppressed, 1000u);
  ASSERT_TRUE(limiter.admit("cannot send", start + 1002ms, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_EQ(limiter.total_suppressed(), 1000u);
}

TEST(LogLimiter, ManyKeysShareOneOverflowKey) {
  LogLimiter limiter(LogLimiter::Options{.lines_per_window = 1, .window = 1000ms, .max_keys = 4});
  const auto now = LogLimiter::Clock::now();
  int written = 0;
  for (int i = 0; i < 100; ++i) {
    if (limiter.admit("peer " + std::to_string(i), now, nullptr)) ++written;
  }
  // Four keys of their own, then one line for all the others.
  EXPECT_EQ(written, 4 + 1);
}

TEST(TokenBucket, AllowsTheBurstThenTheRate) {
  TokenBucket bucket(10, 5);
  const auto start = TokenBucket::Clock::now();
  int taken = 0;
  for (int i = 0; i < 100; ++i) taken += bucket.take(start) ? 1 : 0;
  EXPECT_EQ(taken, 5);
  // One second later: ten more (capped by the burst of five).
  taken = 0;
  for (int i = 0; i < 100; ++i) taken += bucket.take(start + 1s) ? 1 : 0;
  EXPECT_EQ(taken, 5);
  EXPECT_FALSE(bucket.take(start + 1s + 50ms));
  EXPECT_TRUE(bucket.take(start + 1s + 150ms));
}

}  // namespace
}  // namespace runahead
