// Log-softmax and top-K of one position (model/logprobs.h): the values against a direct
// computation, ties by lower id, -inf and NaN logits, K equal to the vocabulary, large logits.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "model/logprobs.h"

namespace runahead {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// log_softmax in long double, the plain formula on shifted values.
std::vector<double> reference(const std::vector<float>& logits) {
  long double largest = -INFINITY;
  for (float x : logits) largest = std::max<long double>(largest, x);
  long double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<long double>(x) - largest);
  std::vector<double> out;
  for (float x : logits) {
    out.push_back(static_cast<double>(static_cast<long double>(x) - largest - std::log(sum)));
  }
  return out;
}

TEST(Logprobs, TopKAndChosenMatchADirectLogSoftmax) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> logits(1000);
  for (float& x : logits) x = dist(rng);
  const std::vector<double> want = reference(logits);
  auto got = position_logprobs(logits, 17, 10);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->token, 17);
  EXPECT_NEAR(got->logprob, want[17], 1e-5);
  ASSERT_EQ(got->top.size(), 10u);
  for (size_t i = 0; i < got->top.size(); ++i) {
    const int32_t id = got->top[i].token;
    EXPECT_NEAR(got->top[i].logprob, want[static_cast<size_t>(id)], 1e-5);
    if (i > 0) {
      EXPECT_GE(got->top[i - 1].logprob, got->top[i].logprob);
    }
  }
  // Nothing outside the top 10 is likelier than its last entry.
  int above = 0;
  for (float x : logits) above += x > logits[static_cast<size_t>(got->top.back().token)];
  EXPECT_EQ(above, 9);
}

TEST(Logprobs, TiesGoToTheLowerIdFirst) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, 3.0f, 0.0f};
  auto got = position_logprobs(logits, 0, 4);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->top.size(), 4u);
  EXPECT_EQ(got->top[0].token, 1);
  EXPECT_EQ(got->top[1].token, 3);
  EXPECT_EQ(got->top[2].token, 4);
  EXPECT_EQ(got->top[3].token, 2);
  EXPECT_EQ(got->top[0].logprob, got->top[1].logprob);
  EXPECT_EQ(got->top[1].logprob, got->top[2].logprob);
}

TEST(Logprobs, KEqualToTheVocabularyCoversEveryTokenAndSumsToOne) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f, 2.0f, -3.5f};
  auto got = position_logprobs(logits, 4, 5);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->top.size(), 5u);
  const std::vector<int32_t> order = {2, 3, 0, 1, 4};
  double mass = 0.0;
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(got->top[i].token, order[i]);
    mass += std::exp(double{got->top[i].logprob});
  }
  EXPECT_NEAR(mass, 1.0, 1e-6);
  EXPECT_EQ(got->logprob, got->top.back().logprob);
}

TEST(Logprobs, MinusInfinityIsProbabilityZero) {
  const std::vector<float> logits = {-kInf, 0.0f, -kInf, 0.0f};
  auto got = position_logprobs(logits, 0, 4);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->logprob, -kInf);
  EXPECT_EQ(got->top[0].token, 1);
  EXPECT_NEAR(got->top[0].logprob, std::log(0.5), 1e-7);
  EXPECT_EQ(got->top[1].token, 3);
  EXPECT_EQ(got->top[2].token, 0);
  EXPECT_EQ(got->top[2].logprob, -kInf);
  EXPECT_EQ(got->top[3].token, 2);
  // Every logit -inf: no token is possible at all.
  const std::vector<float> none = {-kInf, -kInf};
  EXPECT_EQ(log_sum_exp(none), -kInf);
  auto impossible = position_logprobs(none, 1, 2);
  ASSERT_TRUE(impossible);
  EXPECT_EQ(impossible->logprob, -kInf);
  EXPECT_EQ(impossible->top[0].token, 0);
  EXPECT_EQ(impossible->top[0].logprob, -kInf);
}

TEST(Logprobs, NanRanksBelowEveryNumber) {
  const std::vector<float> logits = {std::nanf(""), -50.0f, 1.0f};
  auto got = position_logprobs(logits, 2, 3);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->top[0].token, 2);
  EXPECT_EQ(got->top[1].token, 1);
  EXPECT_EQ(got->top[2].token, 0);
  EXPECT_TRUE(std::isnan(got->top[2].logprob));
  EXPECT_NEAR(got->top[0].logprob, 0.0, 1e-6);  // the NaN carries no mass
}

TEST(Logprobs, LargeLogitsStayFinite) {
  // exp(1e4) overflows even a double: only a shifted sum survives.
  const std::vector<float> logits = {1.0e4f, 1.0e4f - 1.0f, -1.0e4f, 1.0e4f - 2.0f};
  auto got = position_logprobs(logits, 1, 2);
  ASSERT_TRUE(got);
  const std::vector<double> want = reference(logits);
  EXPECT_TRUE(std::isfinite(got->logprob));
  EXPECT_NEAR(got->logprob, want[1], 1e-6);
  EXPECT_NEAR(got->top[0].logprob, want[0], 1e-6);
  EXPECT_EQ(got->top[0].token, 0);
  const std::vector<float> huge = {3.0e38f, 3.0e38f, 0.0f};
  EXPECT_NEAR(log_sum_exp(huge), 3.0e38f, 3.0e38 * 1e-6);
  auto half = position_logprobs(huge, 0, 1);
  ASSERT_TRUE(half);
  EXPECT_NEAR(half->logprob, std::log(0.5), 1e-6);
}

TEST(Logprobs, BadKOrChosenTokenIsAnError) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  for (int k : {0, -1, 4}) {
    auto got = position_logprobs(logits, 0, k);
    ASSERT_FALSE(got) << "k " << k;
    EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(got.error().message.find(std::to_string(k)), std::string::npos);
    EXPECT_NE(got.error().message.find("vocabulary size 3"), std::string::npos);
  }
  auto outside = position_logprobs(logits, 3, 1);
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ErrorCode::kOutOfRange);
  EXPECT_TRUE(validate_top_logprobs(3, 3, "k").is_ok());
  const Status refused = validate_top_logprobs(5, 3, "--logits");
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.message().find("--logits"), std::string::npos);
}

}  // namespace
}  // namespace runahead
