// Sampling: greedy, repetition penalty, temperature, top-k, top-p and seeded reproducibility.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "model/sampler.h"

namespace runahead {
namespace {

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

std::map<int32_t, int> histogram(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits, {})];
  return counts;
}

TEST(Sampler, GreedyTakesTheArgmax) {
  Sampler sampler({});
  EXPECT_EQ(sampler.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}, {}), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingOptions options;
  options.repetition_penalty = 1.5f;
  Sampler sampler(options);
  const std::vector<int32_t> seen = {0, 0, 0};
  // 2.0 / 1.5 = 1.33 falls below 1.9.
  EXPECT_EQ(sampler.sample(std::vector<float>{2.0f, 1.9f, -1.0f}, seen), 1);
  // -0.5 * 1.5 = -0.75 falls below -0.6.
  EXPECT_EQ(sampler.sample(std::vector<float>{-0.5f, -0.6f}, seen), 1);
  // Unseen tokens are untouched; ids outside the logits are ignored.
  const std::vector<int32_t> other = {1, 99, -3};
  EXPECT_EQ(sampler.sample(std::vector<float>{2.0f, 1.9f}, other), 0);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingOptions options;
  options.temperature = 1.0f;
  options.seed = 1234;
  const std::vector<float> logits = log_probs({0.25, 0.25, 0.25, 0.25});
  Sampler a(options);
  Sampler b(options);
  options.seed = 4321;
  Sampler c(options);
  int differences = 0;
  for (int i = 0; i < 200; ++i) {
    const int32_t x = a.sample(logits, {});
    EXPECT_EQ(x, b.sample(logits, {}));
    differences += x != c.sample(logits, {});
  }
  EXPECT_GT(differences, 50);
}

TEST(Sampler, TemperatureOneFollowsTheDistribution) {
  SamplingOptions options;
  options.temperature = 1.0f;
  options.seed = 7;
  Sampler sampler(options);
  const std::vector<double> p = {0.6, 0.3, 0.1};
  const int draws = 20000;
  auto counts = histogram(sampler, log_probs(p), draws);
  for (int32_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(counts[i] / static_cast<double>(draws), p[static_cast<size_t>(i)], 0.02) << i;
  }
}

TEST(Sampler, LowTemperatureSharpens) {
  SamplingOptions options;
  options.temperature = 0.1f;
  options.seed = 7;
  Sampler sampler(options);
  auto counts = histogram(sampler, log_probs({0.6, 0.3, 0.1}), 2000);
  EXPECT_GT(counts[0], 1990);  // (0.3/0.6)^10 ~ 1e-3 of the mass goes elsewhere
}

TEST(Sampler, TopKKeepsTheKLikeliest) {
  SamplingOptions options;
  options.temperature = 1.0f;
  options.top_k = 2;
  options.seed = 3;
  Sampler sampler(options);
  auto counts = histogram(sampler, log_probs({0.1, 0.4, 0.2, 0.3}), 5000);
  EXPECT_EQ(counts.count(0) + counts.count(2), 0u);
  EXPECT_NEAR(counts[1] / 5000.0, 0.4 / 0.7, 0.03);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  SamplingOptions options;
  options.temperature = 1.0f;
  options.top_p = 0.75f;
  options.seed = 5;
  Sampler sampler(options);
  // 0.5 < 0.75, 0.5 + 0.3 >= 0.75: tokens 0 and 1 only.
  auto counts = histogram(sampler, log_probs({0.5, 0.3, 0.15, 0.05}), 5000);
  std::set<int32_t> drawn;
  for (const auto& [token, n] : counts) drawn.insert(token);
  EXPECT_EQ(drawn, (std::set<int32_t>{0, 1}));
  EXPECT_NEAR(counts[0] / 5000.0, 0.5 / 0.8, 0.03);
}

TEST(Sampler, ValidationNamesTheOption) {
  SamplingOptions options;
  options.top_p = 0.0f;
  EXPECT_NE(options.validate().message().find("top-p"), std::string::npos);
  options = {};
  options.temperature = -1.0f;
  EXPECT_NE(options.validate().message().find("temperature"), std::string::npos);
  options = {};
  options.top_k = -2;
  EXPECT_NE(options.validate().message().find("top-k"), std::string::npos);
  options = {};
  options.repetition_penalty = 0.0f;
  EXPECT_NE(options.validate().message().find("repetition penalty"), std::string::npos);
  EXPECT_TRUE(SamplingOptions{}.validate().is_ok());
}

}  // namespace
}  // namespace runahead
