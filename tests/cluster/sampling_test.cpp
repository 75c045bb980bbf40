// Sampling across a cluster equals sampling in one process: temperature, top-k, top-p, the
// repetition penalty over the whole prompt and the tokens so far, and the seed, all reach the
// decoding worker, which draws the same tokens as model/local_generation.h with the same
// sampler.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/cluster/test_cluster.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

struct SamplingCase {
  const char* name;
  Sampling sampling;
};

Sampling sampling(float temperature, int top_k, float top_p, float penalty, uint64_t seed) {
  return Sampling{.temperature = temperature,
                  .top_k = top_k,
                  .top_p = top_p,
                  .repetition_penalty = penalty,
                  .seed = seed};
}

const std::vector<SamplingCase> kCases = {
    {"temperature", sampling(0.9f, 0, 1.0f, 1.0f, 7)},
    {"top_k", sampling(1.2f, 5, 1.0f, 1.0f, 11)},
    {"top_p", sampling(1.0f, 0, 0.8f, 1.0f, 3)},
    {"greedy_with_repetition_penalty", sampling(0.0f, 0, 1.0f, 2.0f, 0)},
    {"everything_and_a_wide_seed", sampling(0.7f, 20, 0.9f, 1.3f, 12345678901234567ull)},
};

constexpr int kNewTokens = 24;

TEST(ClusterSampling, EverySamplerSettingGivesTheSingleProcessTokens) {
  testing::SingleProcess reference("random:tiny-llama");
  testing::TestCluster cluster(3, "random:tiny-llama", {"--transports", "tcp"});
  ASSERT_NE(cluster.coordinator, nullptr);
  const int vocab = reference.config().vocab_size;
  for (const SamplingCase& c : kCases) {
    for (int length : {40, 101}) {
      SCOPED_TRACE(std::string(c.name) + ", prompt of " + std::to_string(length) + " tokens");
      const std::vector<int32_t> prompt =
          testing::random_tokens(length, vocab, static_cast<uint64_t>(length) * 7 + 1);
      const std::vector<int32_t> want = reference.tokens(prompt, kNewTokens, c.sampling).tokens;
      ASSERT_FALSE(want.empty());
      RequestOptions options;
      options.prompt_tokens = prompt;
      options.max_new_tokens = kNewTokens;
      options.sampling = c.sampling;
      auto handle = cluster.coordinator->submit(options);
      ASSERT_TRUE(handle) << handle.error().to_string();
      auto result = handle->result_within(60000);
      ASSERT_TRUE(result) << result.error().to_string();
      EXPECT_EQ(result->tokens, want);
      EXPECT_EQ(result->cuts.size(), 4u) << "the prompt was not spread over the three workers";
    }
  }
}

// The comparison above only means something if the settings change the tokens.
TEST(ClusterSampling, SettingsUnderTestChangeTheTokens) {
  testing::SingleProcess reference("random:tiny-llama");
  const std::vector<int32_t> prompt = testing::random_tokens(101, 97, 101 * 7 + 1);
  auto tokens = [&](const Sampling& s) { return reference.tokens(prompt, kNewTokens, s).tokens; };
  const std::vector<int32_t> greedy = tokens(Sampling{});
  for (const SamplingCase& c : kCases) EXPECT_NE(tokens(c.sampling), greedy) << c.name;
  Sampling other_seed = kCases[0].sampling;
  other_seed.seed += 1;
  EXPECT_NE(tokens(kCases[0].sampling), tokens(other_seed));
}

}  // namespace
}  // namespace runahead
