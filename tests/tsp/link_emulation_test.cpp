#include "bench/tsp/link_emulation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace runahead::tsp {
namespace {

TEST(LinkEmulationTest, EachRankReceivesEveryShareButItsOwn) {
  EXPECT_EQ(all_gather_bytes_received(1000, 4), 3000);
  EXPECT_EQ(all_gather_bytes_received(1000, 2), 1000);
  EXPECT_EQ(all_gather_bytes_received(1000, 1), 0);
}

TEST(LinkEmulationTest, RateTimeIsBytesReceivedOverTheRate) {
  // 2 MB at 10 GB/s: 200 microseconds.
  auto ns = emulated_all_gather_ns(2'000'000, 10e9, {});
  ASSERT_TRUE(ns) << ns.error().message;
  EXPECT_EQ(*ns, 200'000);
  // Twice the bytes, twice the time; half the rate, twice the time.
  EXPECT_EQ(*emulated_all_gather_ns(4'000'000, 10e9, {}), 2 * *ns);
  EXPECT_EQ(*emulated_all_gather_ns(2'000'000, 5e9, {}), 2 * *ns);
}

TEST(LinkEmulationTest, JitterDrawsAddUp) {
  const std::vector<double> draws = {0.5, 1.25, 0.0};
  auto jitter_only = emulated_all_gather_ns(2'000'000, 0.0, draws);
  ASSERT_TRUE(jitter_only) << jitter_only.error().message;
  EXPECT_EQ(*jitter_only, 1'750'000);
  auto both = emulated_all_gather_ns(2'000'000, 10e9, draws);
  ASSERT_TRUE(both);
  EXPECT_EQ(*both, 200'000 + 1'750'000);
}

TEST(LinkEmulationTest, NoRateAndNoJitterIsNoDelay) {
  auto ns = emulated_all_gather_ns(123'456'789, 0.0, {});
  ASSERT_TRUE(ns);
  EXPECT_EQ(*ns, 0);
}

TEST(LinkEmulationTest, RefusesNegativeOrNonFiniteInputsAndNamesThem) {
  auto bytes = emulated_all_gather_ns(-1, 10e9, {});
  ASSERT_FALSE(bytes);
  EXPECT_NE(bytes.error().message.find("-1 bytes"), std::string::npos) << bytes.error().message;
  auto rate = emulated_all_gather_ns(1, -5.0, {});
  ASSERT_FALSE(rate);
  EXPECT_NE(rate.error().message.find("link rate"), std::string::npos) << rate.error().message;
  const std::vector<double> bad = {1.0, std::numeric_limits<double>::quiet_NaN()};
  auto draw = emulated_all_gather_ns(1, 10e9, bad);
  ASSERT_FALSE(draw);
  EXPECT_NE(draw.error().message.find("jitter draw 1"), std::string::npos) << draw.error().message;
  EXPECT_FALSE(EmulatedLink::create({.bytes_per_second = 0.0, .max_jitter_ms = -1.0}, 1, 0));
  EXPECT_FALSE(EmulatedLink::create({.bytes_per_second = INFINITY, .max_jitter_ms = 0.0}, 1, 0));
  EXPECT_FALSE(EmulatedLink::create({.bytes_per_second = 1e9, .max_jitter_ms = 0.0}, 1, -1));
}

TEST(LinkEmulationTest, RateOnlyLinkMatchesTheFormula) {
  auto link = EmulatedLink::create({.bytes_per_second = 10e9, .max_jitter_ms = 0.0}, 7, 2);
  ASSERT_TRUE(link) << link.error().message;
  auto ns = link->next_all_gather_ns(1'000'000, 4);
  ASSERT_TRUE(ns);
  EXPECT_EQ(*ns, *emulated_all_gather_ns(all_gather_bytes_received(1'000'000, 4), 10e9, {}));
  EXPECT_EQ(*link->next_all_gather_ns(1'000'000, 4), *ns);  // no jitter: always the same
}

// With jitter J over P ranks a rank waits the sum of P - 1 uniform [0, J] draws: within
// [0, (P - 1) J], (P - 1) J / 2 on average, and different from one all-gather to the next.
TEST(LinkEmulationTest, JitterIsASumOfOneDrawPerRingStep) {
  const double jitter_ms = 2.0;
  const int ranks = 4;
  auto link = EmulatedLink::create({.bytes_per_second = 0.0, .max_jitter_ms = jitter_ms}, 11, 0);
  ASSERT_TRUE(link);
  const int samples = 4000;
  double sum = 0.0;
  int64_t lowest = INT64_MAX;
  int64_t highest = 0;
  for (int i = 0; i < samples; ++i) {
    auto ns = link->next_all_gather_ns(1'000'000, ranks);
    ASSERT_TRUE(ns);
    lowest = std::min(lowest, *ns);
    highest = std::max(highest, *ns);
    sum += static_cast<double>(*ns);
  }
  const double bound_ns = (ranks - 1) * jitter_ms * 1e6;
  EXPECT_GE(lowest, 0);
  EXPECT_LE(highest, static_cast<int64_t>(bound_ns));
  EXPECT_LT(lowest, highest);
  // Standard deviation of the mean: sqrt(3 J^2 / 12 / samples), about 0.016 ms here.
  EXPECT_NEAR(sum / samples / 1e6, bound_ns / 2 / 1e6, 0.1);
  // The spread reaches well past one step's bound, so more than one draw is summed.
  EXPECT_GT(static_cast<double>(highest), 1.5 * jitter_ms * 1e6);
  // One rank: no ring steps, no jitter.
  EXPECT_EQ(*link->next_all_gather_ns(1'000'000, 1), 0);
}

TEST(LinkEmulationTest, DrawsRepeatForASeedAndRankAndDifferAcrossRanks) {
  const LinkShape shape{.bytes_per_second = 10e9, .max_jitter_ms = 2.0};
  auto a = EmulatedLink::create(shape, 5, 1);
  auto b = EmulatedLink::create(shape, 5, 1);
  auto other_rank = EmulatedLink::create(shape, 5, 2);
  auto other_seed = EmulatedLink::create(shape, 6, 1);
  ASSERT_TRUE(a && b && other_rank && other_seed);
  int rank_differs = 0;
  int seed_differs = 0;
  for (int i = 0; i < 16; ++i) {
    const int64_t first = *a->next_all_gather_ns(4096, 8);
    EXPECT_EQ(first, *b->next_all_gather_ns(4096, 8)) << "all-gather " << i;
    rank_differs += first != *other_rank->next_all_gather_ns(4096, 8);
    seed_differs += first != *other_seed->next_all_gather_ns(4096, 8);
  }
  EXPECT_GT(rank_differs, 0);
  EXPECT_GT(seed_differs, 0);
}

}  // namespace
}  // namespace runahead::tsp
