// The decode loop shared by local generation and the worker, against decoding written out step
// by step: the tokens chosen, where it stops (max new tokens, the cache's end, the stop token,
// the callback, an interruption), the logits it hands on, log-probabilities, and sampling with
// a seed and a repetition penalty over the prompt and the tokens so far.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "model/decode_loop.h"
#include "model/logprobs.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

constexpr int kPromptTokens = 17;

class DecodeLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::load_on_cpu(testing::random_host_model(config_, 29));
    ASSERT_NE(model_.transformer, nullptr);
    prompt_ = testing::random_tokens(kPromptTokens, config_.vocab_size, 3);
  }

  const Transformer& transformer() const { return *model_.transformer; }

  // A cache of `capacity` rows and a workspace, with the prompt prefilled.
  struct Prefilled {
    KvCache cache;
    Workspace workspace;
  };
  Prefilled prefill(int64_t capacity) const {
    auto cache = KvCache::create(*model_.backend, config_, capacity);
    auto workspace = transformer().make_workspace(kPromptTokens);
    EXPECT_TRUE(cache.is_ok() && workspace.is_ok());
    Prefilled prefilled{std::move(cache).value(), std::move(workspace).value()};
    EXPECT_TRUE(
        transformer().prefill_slice(prompt_, 0, prefilled.workspace, prefilled.cache).is_ok());
    return prefilled;
  }

  // Decoding written out: `count` tokens chosen by `sampler` from the logits (history: the
  // prompt and the tokens so far), with each token's logits.
  std::vector<int32_t> reference(int count, SamplingOptions sampling,
                                 std::vector<std::vector<float>>* logits_out = nullptr) const {
    Prefilled state = prefill(kPromptTokens + count);
    Sampler sampler(sampling);
    std::vector<int32_t> history = prompt_;
    std::vector<int32_t> tokens;
    std::vector<float> logits;
    for (int i = 0; i < count; ++i) {
      if (i > 0) {
        const int32_t previous = tokens.back();
        EXPECT_TRUE(transformer()
                        .prefill_slice(std::span<const int32_t>(&previous, 1),
                                       kPromptTokens + i - 1, state.workspace, state.cache)
                        .is_ok());
      }
      EXPECT_TRUE(transformer().last_token_logits(state.workspace, logits).is_ok());
      tokens.push_back(sampler.sample(logits, history));
      history.push_back(tokens.back());
      if (logits_out != nullptr) logits_out->push_back(logits);
    }
    return tokens;
  }

  // Runs the loop on a fresh prefill and collects what it hands on.
  struct Run {
    Status status;
    std::vector<DecodedToken> tokens;
    std::vector<std::vector<float>> logits;  // copies: the spans do not outlive the call
    std::vector<int32_t> ids() const {
      std::vector<int32_t> ids;
      for (const DecodedToken& token : tokens) ids.push_back(token.token);
      return ids;
    }
  };
  Run decode(DecodeOptions options, int64_t capacity) const {
    Prefilled state = prefill(capacity);
    Run run;
    auto user = std::move(options.on_token);
    options.on_token = [&](DecodedToken token) -> Result<AfterToken> {
      run.logits.emplace_back(token.logits.begin(), token.logits.end());
      token.logits = {};
      run.tokens.push_back(token);
      return user ? user(std::move(token)) : AfterToken::kContinue;
    };
    run.status = decode_tokens(transformer(), state.workspace, state.cache, kPromptTokens,
                               std::move(options));
    return run;
  }

  const ModelConfig config_ = testing::tiny_llama_config();
  testing::LoadedModel model_;
  std::vector<int32_t> prompt_;
};

TEST_F(DecodeLoopTest, GreedyMatchesStepByStepArgmaxWithOnlyIndicesLeavingTheBackend) {
  const std::vector<int32_t> expected = reference(9, {});
  DecodeOptions options;
  options.max_new_tokens = 9;
  Run run = decode(std::move(options), kPromptTokens + 20);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_EQ(run.ids(), expected);
  for (size_t i = 0; i < run.tokens.size(); ++i) {
    EXPECT_EQ(run.tokens[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(run.tokens[i].last, i + 1 == run.tokens.size());
    EXPECT_TRUE(run.logits[i].empty()) << "token " << i;
    EXPECT_FALSE(run.tokens[i].logprobs.has_value());
  }
}

TEST_F(DecodeLoopTest, LogitsComeBackForTheFirstTokenOrEveryTokenWhenAsked) {
  std::vector<std::vector<float>> logits;
  const std::vector<int32_t> expected = reference(5, {}, &logits);
  DecodeOptions first;
  first.max_new_tokens = 5;
  first.logits_first_token = true;
  Run run = decode(first, kPromptTokens + 4);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_EQ(run.ids(), expected);
  EXPECT_EQ(run.logits[0], logits[0]);
  for (size_t i = 1; i < run.logits.size(); ++i) EXPECT_TRUE(run.logits[i].empty());

  DecodeOptions every;
  every.max_new_tokens = 5;
  every.logits_every_token = true;
  run = decode(every, kPromptTokens + 4);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_EQ(run.ids(), expected);
  EXPECT_EQ(run.logits, logits);
}

TEST_F(DecodeLoopTest, TheCacheBoundsTheCountAndTheLastTokenIsMarked) {
  const std::vector<int32_t> expected = reference(4, {});
  DecodeOptions options;
  options.max_new_tokens = 50;
  // Prompt plus three rows: the fourth token is never fed back.
  Run run = decode(options, kPromptTokens + 3);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_EQ(run.ids(), expected);
  EXPECT_TRUE(run.tokens.back().last);
}

TEST_F(DecodeLoopTest, StopsAfterEmittingTheStopToken) {
  const std::vector<int32_t> expected = reference(12, {});
  // The first token from the third on whose id did not come before.
  size_t stop_at = 2;
  while (stop_at < expected.size() &&
         std::find(expected.begin(), expected.begin() + static_cast<std::ptrdiff_t>(stop_at),
                   expected[stop_at]) != expected.begin() + static_cast<std::ptrdiff_t>(stop_at)) {
    ++stop_at;
  }
  ASSERT_LT(stop_at, expected.size()) << "no fresh token to stop at";
  DecodeOptions options;
  options.max_new_tokens = 12;
  options.stop_token = expected[stop_at];
  Run run = decode(options, kPromptTokens + 11);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_EQ(run.ids(),
            std::vector<int32_t>(expected.begin(),
                                 expected.begin() + static_cast<std::ptrdiff_t>(stop_at) + 1));
  EXPECT_TRUE(run.tokens.back().last);
}

TEST_F(DecodeLoopTest, TheCallbackStopsItOrFailsIt) {
  DecodeOptions stop;
  stop.max_new_tokens = 10;
  stop.on_token = [](DecodedToken token) -> Result<AfterToken> {
    return token.index == 2 ? AfterToken::kStop : AfterToken::kContinue;
  };
  Run run = decode(std::move(stop), kPromptTokens + 9);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  ASSERT_EQ(run.tokens.size(), 3u);
  EXPECT_FALSE(run.tokens.back().last);  // the limits did not end it

  DecodeOptions fail;
  fail.max_new_tokens = 10;
  fail.on_token = [](DecodedToken token) -> Result<AfterToken> {
    if (token.index == 1) return make_error(ErrorCode::kUnavailable, "gone");
    return AfterToken::kContinue;
  };
  run = decode(std::move(fail), kPromptTokens + 9);
  EXPECT_EQ(run.status.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(run.tokens.size(), 2u);
}

TEST_F(DecodeLoopTest, AnInterruptionEndsItBeforeTheNextToken) {
  int asked = 0;
  DecodeOptions options;
  options.max_new_tokens = 10;
  options.interrupted = [&]() -> Status {
    return ++asked == 4 ? make_error(ErrorCode::kCancelled, "cancelled") : Status::ok();
  };
  Run run = decode(std::move(options), kPromptTokens + 9);
  EXPECT_EQ(run.status.code(), ErrorCode::kCancelled);
  EXPECT_EQ(run.tokens.size(), 3u);
}

TEST_F(DecodeLoopTest, LogprobsAreOfTheRawLogitsOfEveryToken) {
  std::vector<std::vector<float>> logits;
  const std::vector<int32_t> expected = reference(6, {}, &logits);
  DecodeOptions options;
  options.max_new_tokens = 6;
  options.top_logprobs = 4;
  Run run = decode(options, kPromptTokens + 5);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  ASSERT_EQ(run.ids(), expected);
  for (size_t i = 0; i < expected.size(); ++i) {
    auto want = position_logprobs(logits[i], expected[i], 4);
    ASSERT_TRUE(want.is_ok());
    ASSERT_TRUE(run.tokens[i].logprobs.has_value());
    EXPECT_EQ(*run.tokens[i].logprobs, *want) << "token " << i;
  }
}

TEST_F(DecodeLoopTest, SamplingFollowsTheSeedAndPenalizesThePromptAndTheTokensSoFar) {
  SamplingOptions sampling;
  sampling.temperature = 0.9f;
  sampling.top_k = 20;
  sampling.top_p = 0.95f;
  sampling.repetition_penalty = 1.4f;
  sampling.seed = 1234;
  const std::vector<int32_t> expected = reference(10, sampling);
  DecodeOptions options;
  options.max_new_tokens = 10;
  options.sampling = sampling;
  options.history = prompt_;
  Run run = decode(options, kPromptTokens + 9);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_EQ(run.ids(), expected);
  EXPECT_EQ(decode(options, kPromptTokens + 9).ids(), expected) << "same seed, same tokens";

  // Greedy with a penalty reads the logits back and applies it to the history.
  SamplingOptions penalized;
  penalized.repetition_penalty = 1.4f;
  DecodeOptions greedy;
  greedy.max_new_tokens = 10;
  greedy.sampling = penalized;
  greedy.history = prompt_;
  run = decode(greedy, kPromptTokens + 9);
  ASSERT_TRUE(run.status.is_ok());
  EXPECT_EQ(run.ids(), reference(10, penalized));
  EXPECT_FALSE(run.logits.front().empty());
}

TEST_F(DecodeLoopTest, AChooserReplacesSamplingAndSeesTheRawLogits) {
  std::vector<std::vector<float>> logits;
  const std::vector<int32_t> greedy = reference(4, {}, &logits);
  DecodeOptions options;
  options.max_new_tokens = 4;
  int calls = 0;
  options.choose = [&](std::span<const float> row) {
    EXPECT_EQ(std::vector<float>(row.begin(), row.end()), logits[calls]);
    ++calls;
    return argmax(row);
  };
  Run run = decode(std::move(options), kPromptTokens + 3);
  ASSERT_TRUE(run.status.is_ok());
  EXPECT_EQ(run.ids(), greedy);
  EXPECT_EQ(calls, 4);
}

}  // namespace
}  // namespace runahead
