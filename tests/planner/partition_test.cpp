#include "planner/partition.h"

#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <random>

namespace runahead {
namespace {

void expect_covers(const Partition& cuts, int64_t tokens, size_t workers) {
  ASSERT_EQ(cuts.size(), workers + 1);
  EXPECT_EQ(cuts.front(), 0);
  EXPECT_EQ(cuts.back(), tokens);
  for (size_t i = 0; i + 1 < cuts.size(); ++i) EXPECT_LT(cuts[i], cuts[i + 1]);
}

// The best makespan over every partition (small instances only).
double brute_force_makespan(int64_t tokens, const std::vector<SliceCost>& costs) {
  double best = std::numeric_limits<double>::infinity();
  Partition cuts(costs.size() + 1, 0);
  cuts.back() = tokens;
  std::function<void(size_t)> place = [&](size_t index) {
    if (index == costs.size()) {
      best = std::min(best, predicted_makespan(cuts, costs));
      return;
    }
    for (int64_t cut = cuts[index - 1] + 1;
         cut <= tokens - static_cast<int64_t>(costs.size() - index); ++cut) {
      cuts[index] = cut;
      place(index + 1);
    }
  };
  place(1);
  return best;
}

TEST(PartitionTest, EvenSplitCoversThePrompt) {
  for (int64_t tokens : {4, 7, 100, 4097}) {
    for (int workers : {1, 2, 3, 4}) {
      auto cuts = even_partition(tokens, workers);
      ASSERT_TRUE(cuts);
      expect_covers(*cuts, tokens, static_cast<size_t>(workers));
    }
  }
}

TEST(PartitionTest, RejectsMoreWorkersThanTokens) {
  EXPECT_FALSE(even_partition(2, 3));
  EXPECT_FALSE(balanced_partition(2, std::vector<SliceCost>(3, {1.0, 1.0})));
  EXPECT_FALSE(balanced_partition(10, {}));
  EXPECT_FALSE(balanced_partition(10, {{-1.0, 0.0}}));
}

TEST(PartitionTest, BalancedGivesEarlierWorkersMoreTokens) {
  const std::vector<SliceCost> costs(4, SliceCost{1e-4, 1e-7});
  auto cuts = balanced_partition(16384, costs);
  ASSERT_TRUE(cuts);
  expect_covers(*cuts, 16384, 4);
  for (size_t i = 0; i + 2 < cuts->size(); ++i) {
    EXPECT_GT((*cuts)[i + 1] - (*cuts)[i], (*cuts)[i + 2] - (*cuts)[i + 1]);
  }
  auto even = even_partition(16384, 4);
  ASSERT_TRUE(even);
  EXPECT_LT(predicted_makespan(*cuts, costs), predicted_makespan(*even, costs));
}

TEST(PartitionTest, BalancedMatchesBruteForceOnRandomCostModels) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> per_token(1e-5, 1e-3);
  std::uniform_real_distribution<double> per_key(0.0, 1e-4);
  std::uniform_int_distribution<int64_t> length(3, 40);
  std::uniform_int_distribution<int> worker_count(1, 3);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<SliceCost> costs(static_cast<size_t>(worker_count(rng)));
    for (SliceCost& cost : costs) cost = {per_token(rng), per_key(rng)};
    const int64_t tokens = length(rng);
    auto cuts = balanced_partition(tokens, costs);
    ASSERT_TRUE(cuts);
    expect_covers(*cuts, tokens, costs.size());
    const double best = brute_force_makespan(tokens, costs);
    EXPECT_LE(predicted_makespan(*cuts, costs), best * (1.0 + 1e-9)) << "trial " << trial;
  }
}

}  // namespace
}  // namespace runahead
