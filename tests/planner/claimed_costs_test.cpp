// Workers' claimed costs: impossible figures are refused at join, and a claim far faster than
// the others' (or than a profile's measurements) is bounded before it decides a partition.
#include "planner/claimed_costs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "planner/plan.h"

namespace runahead {
namespace {

PlanRequest balanced(int64_t tokens) {
  PlanRequest request;
  request.prompt_tokens = tokens;
  request.scheme = PartitionScheme::kBalanced;
  return request;
}

TEST(ClaimedCostsTest, ImpossibleFiguresAreRefusedNamingTheWorker) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const SliceCost& claim : std::vector<SliceCost>{
           {nan, 0.0}, {1e-4, nan}, {inf, 0.0}, {-1e-4, 0.0}, {1e-4, -1e-9}, {61.0, 0.0}}) {
    const Status checked = check_claimed_cost(claim, "w7");
    ASSERT_FALSE(checked.is_ok()) << claim.per_token << " " << claim.per_key;
    EXPECT_NE(checked.message().find("w7"), std::string::npos) << checked.message();
  }
  EXPECT_TRUE(check_claimed_cost({0.0, 0.0}, "w").is_ok());  // not measured
  EXPECT_TRUE(check_claimed_cost({1e-4, 1e-8}, "w").is_ok());
  EXPECT_TRUE(check_claimed_cost({60.0, 1.0}, "w").is_ok());
}

TEST(ClaimedCostsTest, AClaimFarFasterThanTheOthersIsRaisedToTheBound) {
  const std::vector<SliceCost> claims = {{1e-3, 1e-6}, {1e-12, 1e-15}, {1.2e-3, 1.1e-6}};
  const std::vector<SliceCost> trusted = trusted_costs(claims);
  // The median of the others (upper of two): 1.2e-3 and 1.1e-6.
  EXPECT_DOUBLE_EQ(trusted[1].per_token, 1.2e-3 / kClaimTrustFactor);
  EXPECT_DOUBLE_EQ(trusted[1].per_key, 1.1e-6 / kClaimTrustFactor);
  // Plausible claims, slower ones included, stand.
  EXPECT_DOUBLE_EQ(trusted[0].per_token, 1e-3);
  EXPECT_DOUBLE_EQ(trusted[2].per_token, 1.2e-3);
  const std::vector<SliceCost> slow = trusted_costs(std::vector<SliceCost>{{1e-3, 0}, {1.0, 0}});
  EXPECT_DOUBLE_EQ(slow[1].per_token, 1.0);
  // Within the factor: as claimed.
  const std::vector<SliceCost> close = trusted_costs(std::vector<SliceCost>{{1e-3, 0}, {3e-4, 0}});
  EXPECT_DOUBLE_EQ(close[1].per_token, 3e-4);
  // Unmeasured workers neither change nor count.
  const std::vector<SliceCost> unmeasured =
      trusted_costs(std::vector<SliceCost>{{0.0, 0.0}, {1e-9, 0.0}});
  EXPECT_DOUBLE_EQ(unmeasured[0].per_token, 0.0);
  EXPECT_DOUBLE_EQ(unmeasured[1].per_token, 1e-9);
}

// The report: a worker claiming a tiny per-token cost was handed 98 of 100 prompt tokens.
TEST(ClaimedCostsTest, ATinyClaimDoesNotWinNearlyAllOfThePrompt) {
  std::vector<PlanWorker> workers = {
      {.chain = {"honest", "cpu", {1e-3, 1e-7}}, .active_requests = 0},
      {.chain = {"liar", "cpu", {1e-12, 1e-16}}, .active_requests = 0},
  };
  auto planned = plan(balanced(100), workers, nullptr, {.min_tokens_per_worker = 1});
  ASSERT_TRUE(planned) << planned.error().to_string();
  ASSERT_EQ(planned->chain.size(), 2u);
  ASSERT_EQ(planned->method, PlanMethod::kProbedCosts);
  const int64_t liar =
      planned->chain[0] == 1 ? planned->cuts[1] : planned->cuts[2] - planned->cuts[1];
  EXPECT_LE(liar, 80) << "the liar's slice";

  // A profile that does not know the liar bounds it by the profile's measurements.
  Profile profile;
  profile.model.hash = "model";
  profile.model.layers = 2;
  profile.model.kv_bytes_per_token = 64;
  profile.workers.push_back({"honest", "cuda:0 H100", {{1e-3, 1e-7}, 0.0, 0.25}, 0.0});
  const ChainModel model = profile.chain_model(std::vector<ChainWorker>{
      {"honest", "cuda:0 H100", {1e-3, 1e-7}}, {"liar", "other", {1e-12, 1e-16}}});
  ASSERT_EQ(model.workers.size(), 2u);
  EXPECT_DOUBLE_EQ(model.workers[1].slice.per_token, 1e-3 / kClaimTrustFactor);
}

}  // namespace
}  // namespace runahead
