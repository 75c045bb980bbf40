// Sliding-window attention is not implemented, so a model with a window refuses every request
// that would reach past it (model/config.h) instead of attending over the whole prefix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "model/config.h"
#include "model/local_generation.h"
#include "model/model_hash.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using ::testing::HasSubstr;

TEST(SlidingWindowTest, RequestsInsideTheWindowPass) {
  EXPECT_TRUE(check_sliding_window(0, "m", 100000, 64).is_ok());  // no window
  EXPECT_TRUE(check_sliding_window(48, "m", 48, 1).is_ok());
  // The last generated token is never fed back: 40 + 9 - 1 = 48 positions.
  EXPECT_TRUE(check_sliding_window(48, "m", 40, 9).is_ok());
}

TEST(SlidingWindowTest, RefusesOnePositionPastTheWindowNamingWindowAndPrompt) {
  const Status refused = check_sliding_window(48, "MistralForCausalLM", 40, 10);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.code(), ErrorCode::kUnsupported);
  EXPECT_THAT(refused.message(), HasSubstr("sliding window of 48"));
  EXPECT_THAT(refused.message(), HasSubstr("prompt of 40 tokens"));
  EXPECT_THAT(refused.message(), HasSubstr("49 positions"));
  EXPECT_THAT(refused.message(), HasSubstr("MistralForCausalLM"));
  EXPECT_FALSE(check_sliding_window(48, "m", 49, 1).is_ok());
}

TEST(SlidingWindowTest, LocalGenerationRefusesPastTheWindowAndRunsInsideIt) {
  ModelConfig c = testing::tiny_llama_config();
  c.sliding_window = 12;
  ASSERT_LT(c.sliding_window, c.max_positions);
  const HostModel host = random_host_model(c, 3);
  testing::LoadedModel model = testing::load_on_cpu(host);
  ASSERT_NE(model.transformer, nullptr);
  const std::vector<int32_t> prompt = {5, 9, 2, 7, 1, 3, 8, 4, 6, 10};
  LocalGenerationOptions options;
  options.max_new_tokens = 3;  // positions 0..11
  auto inside = generate_local(*model.transformer, prompt, options);
  ASSERT_TRUE(inside.is_ok()) << inside.error().to_string();
  EXPECT_EQ(inside->tokens.size(), 3u);
  options.max_new_tokens = 4;
  auto past = generate_local(*model.transformer, prompt, options);
  ASSERT_FALSE(past.is_ok());
  EXPECT_THAT(past.error().message, HasSubstr("sliding window of 12"));
}

TEST(SlidingWindowTest, TheWindowIsPartOfTheModelHash) {
  const ModelConfig c = testing::tiny_llama_config();
  ModelConfig windowed = c;
  windowed.sliding_window = 12;
  EXPECT_NE(model_hash(random_host_model(windowed, 1)), model_hash(random_host_model(c, 1)));
}

}  // namespace
}  // namespace runahead
