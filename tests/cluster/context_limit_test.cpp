// Generation at the model's context limit (random:tiny-llama holds 256 positions): a cluster
// stops where one process stops, with the same tokens, and a prompt past the limit is refused
// with one error that names both lengths.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/cluster/test_cluster.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using ::testing::HasSubstr;

class ContextLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(cluster_.coordinator, nullptr);
    ASSERT_EQ(reference_.config().max_positions, 256);
  }

  Result<RequestResult> on_cluster(const std::vector<int32_t>& prompt, int max_new_tokens) {
    RequestOptions options;
    options.prompt_tokens = prompt;
    options.max_new_tokens = max_new_tokens;
    auto handle = cluster_.coordinator->submit(options);
    if (!handle) return handle.error();
    return handle->result_within(60000);
  }

  testing::SingleProcess reference_{"random:tiny-llama"};
  testing::TestCluster cluster_{3, "random:tiny-llama", {"--transports", "tcp"}};
};

TEST_F(ContextLimit, GenerationPastTheLimitStopsThereWithTheSingleProcessTokens) {
  // prompt + generated tokens - 1 (the last is never fed back) fill the 256 positions.
  for (const auto& [length, max_new, expected] :
       std::vector<std::tuple<int, int, size_t>>{{250, 20, 7}, {255, 3, 2}, {256, 5, 1}}) {
    SCOPED_TRACE("prompt of " + std::to_string(length) + " tokens, " + std::to_string(max_new) +
                 " new");
    const std::vector<int32_t> prompt = testing::random_tokens(length, 97, 5);
    auto want = reference_.run(prompt, max_new);
    ASSERT_TRUE(want) << want.error().to_string();
    ASSERT_EQ(want->tokens.size(), expected);
    auto got = on_cluster(prompt, max_new);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(got->tokens, want->tokens);
  }
}

TEST_F(ContextLimit, PromptPastTheLimitIsRefusedNamingBothLengths) {
  const std::vector<int32_t> prompt = testing::random_tokens(257, 97, 6);
  auto single = reference_.run(prompt, 4);
  ASSERT_FALSE(single);
  EXPECT_THAT(single.error().message, HasSubstr("257"));
  EXPECT_THAT(single.error().message, HasSubstr("256"));
  auto refused = on_cluster(prompt, 4);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, single.error().code) << refused.error().to_string();
  EXPECT_THAT(refused.error().message, HasSubstr("257"));
  EXPECT_THAT(refused.error().message, HasSubstr("256"));
  // The cluster goes on serving.
  auto after = on_cluster(testing::random_tokens(20, 97, 7), 4);
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_EQ(after->tokens, reference_.tokens(testing::random_tokens(20, 97, 7), 4).tokens);
}

}  // namespace
}  // namespace runahead
