// Reconnect waits: doubling from the initial wait to the cap, shortened by at most the jitter,
// and back to the initial wait after a reset.
#include <gtest/gtest.h>

#include "net/control/reconnect_backoff.h"

namespace runahead::net {
namespace {

using namespace std::chrono_literals;

TEST(ReconnectBackoff, DoublesUpToTheCapWithinTheJitter) {
  ReconnectBackoff backoff({.initial = 100ms, .max = 2000ms, .jitter = 0.25}, 7);
  const std::chrono::milliseconds bases[] = {100ms,  200ms,  400ms,  800ms,
                                             1600ms, 2000ms, 2000ms, 2000ms};
  for (auto base : bases) {
    const auto wait = backoff.next();
    EXPECT_LE(wait, base);
    EXPECT_GE(wait, base * 3 / 4);
  }
  backoff.reset();
  EXPECT_LE(backoff.next(), 100ms);
}

TEST(ReconnectBackoff, WithoutJitterTheWaitsAreExact) {
  ReconnectBackoff backoff({.initial = 50ms, .max = 300ms, .jitter = 0.0}, 1);
  EXPECT_EQ(backoff.next(), 50ms);
  EXPECT_EQ(backoff.next(), 100ms);
  EXPECT_EQ(backoff.next(), 200ms);
  EXPECT_EQ(backoff.next(), 300ms);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(backoff.next(), 300ms);  // no overflow
}

TEST(ReconnectBackoff, SeedsSpreadTheWorkers) {
  ReconnectBackoff a({.initial = 1000ms, .max = 1000ms, .jitter = 0.5}, 1);
  ReconnectBackoff b({.initial = 1000ms, .max = 1000ms, .jitter = 0.5}, 2);
  int differ = 0;
  for (int i = 0; i < 10; ++i) differ += a.next() != b.next() ? 1 : 0;
  EXPECT_GT(differ, 5);
}

}  // namespace
}  // namespace runahead::net
