// Continuous batching (model/decode_batch.h) against each request decoded alone: requests of
// different prompt lengths join and leave between steps, more of them than one step takes, and
// every one chooses the same tokens (greedy, or sampled with its seed and penalties), gets the
// same logits and log-probabilities, and stops where it would alone; a stream that fails or is
// interrupted leaves without disturbing the others.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/decode_batch.h"
#include "tests/support/numeric.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

struct Request {
  int prompt_tokens = 0;
  int max_new_tokens = 0;
  SamplingOptions sampling;
  int top_logprobs = 0;
  bool logits_every_token = false;
};

Request greedy(int prompt_tokens, int max_new_tokens) {
  Request request;
  request.prompt_tokens = prompt_tokens;
  request.max_new_tokens = max_new_tokens;
  return request;
}

// What a stream handed on.
struct Seen {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
  std::vector<float> logprobs;  // the chosen token's
  std::vector<bool> last;
  bool ended = false;
  Status status;
};

class DecodeBatchTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    config_ = GetParam() == "falcon" ? testing::tiny_falcon_config() : testing::tiny_llama_config();
    model_ = testing::load_on_cpu(testing::random_host_model(config_, 41));
    ASSERT_NE(model_.transformer, nullptr);
  }
  const Transformer& transformer() const { return *model_.transformer; }

  std::vector<int32_t> prompt(size_t i, const Request& request) const {
    return testing::random_tokens(request.prompt_tokens, config_.vocab_size, 100 + i);
  }

  DecodeOptions options(const Request& request, const std::vector<int32_t>& prompt,
                        Seen& seen) const {
    DecodeOptions options;
    options.max_new_tokens = request.max_new_tokens;
    options.sampling = request.sampling;
    options.top_logprobs = request.top_logprobs;
    options.logits_every_token = request.logits_every_token;
    options.history = prompt;
    options.on_token = [&seen](DecodedToken token) -> Result<AfterToken> {
      seen.tokens.push_back(token.token);
      seen.logits.emplace_back(token.logits.begin(), token.logits.end());
      seen.last.push_back(token.last);
      if (token.logprobs) seen.logprobs.push_back(token.logprobs->logprob);
      return AfterToken::kContinue;
    };
    return options;
  }

  // The request decoded alone.
  Seen alone(size_t i, const Request& request) const {
    const std::vector<int32_t> tokens = prompt(i, request);
    auto cache =
        KvCache::create(*model_.backend, config_, request.prompt_tokens + request.max_new_tokens);
    auto workspace = transformer().make_workspace(request.prompt_tokens);
    EXPECT_TRUE(cache.is_ok() && workspace.is_ok());
    EXPECT_TRUE(transformer().prefill_slice(tokens, 0, *workspace, *cache).is_ok());
    Seen seen;
    seen.status = decode_tokens(transformer(), *workspace, *cache, request.prompt_tokens,
                                options(request, tokens, seen));
    seen.ended = true;
    return seen;
  }

  // A prefilled request ready to join a batch.
  struct Prefilled {
    std::shared_ptr<KvCache> cache;
    Workspace workspace;
    std::vector<int32_t> prompt;
  };
  Prefilled prefill(size_t i, const Request& request) const {
    Prefilled prefilled;
    prefilled.prompt = prompt(i, request);
    auto cache =
        KvCache::create(*model_.backend, config_, request.prompt_tokens + request.max_new_tokens);
    auto workspace = transformer().make_workspace(request.prompt_tokens);
    EXPECT_TRUE(cache.is_ok() && workspace.is_ok());
    prefilled.cache = std::make_shared<KvCache>(std::move(cache).value());
    prefilled.workspace = std::move(workspace).value();
    EXPECT_TRUE(transformer()
                    .prefill_slice(prefilled.prompt, 0, prefilled.workspace, *prefilled.cache)
                    .is_ok());
    return prefilled;
  }

  void join(DecodeBatch& batch, size_t i, const Request& request, Seen& seen,
            DecodeOptions* override_options = nullptr) const {
    Prefilled prefilled = prefill(i, request);
    DecodeOptions decode = override_options != nullptr ? std::move(*override_options)
                                                       : options(request, prefilled.prompt, seen);
    batch.start(DecodeBatch::Stream{.id = i,
                                    .cache = prefilled.cache.get(),
                                    .prompt_tokens = request.prompt_tokens,
                                    .options = std::move(decode),
                                    .ended =
                                        [&seen](Status status) {
                                          EXPECT_FALSE(seen.ended) << "ended twice";
                                          seen.ended = true;
                                          seen.status = std::move(status);
                                        },
                                    .keep_alive = prefilled.cache},
                prefilled.workspace);
  }

  // Every request's output equals its output alone.
  void expect_as_alone(const std::vector<Request>& requests, const std::vector<Seen>& batched) {
    for (size_t i = 0; i < requests.size(); ++i) {
      SCOPED_TRACE("request " + std::to_string(i));
      const Seen expected = alone(i, requests[i]);
      ASSERT_TRUE(batched[i].ended);
      EXPECT_TRUE(batched[i].status.is_ok()) << batched[i].status.to_string();
      EXPECT_EQ(batched[i].tokens, expected.tokens);
      EXPECT_EQ(batched[i].last, expected.last);
      ASSERT_EQ(batched[i].logits.size(), expected.logits.size());
      for (size_t t = 0; t < expected.logits.size(); ++t) {
        ASSERT_EQ(batched[i].logits[t].size(), expected.logits[t].size()) << "token " << t;
        if (!expected.logits[t].empty()) {
          EXPECT_LT(testing::relative_error(batched[i].logits[t], expected.logits[t]), 1e-5)
              << "token " << t;
        }
      }
      ASSERT_EQ(batched[i].logprobs.size(), expected.logprobs.size());
      for (size_t t = 0; t < expected.logprobs.size(); ++t) {
        EXPECT_NEAR(batched[i].logprobs[t], expected.logprobs[t], 1e-5) << "token " << t;
      }
    }
  }

  ModelConfig config_;
  testing::LoadedModel model_;
};

// Requests join at different steps and leave at different lengths; six at once with room for
// four per step, so some wait their turn.
TEST_P(DecodeBatchTest, GreedyStreamsJoiningAndLeavingMatchEachAlone) {
  const std::vector<Request> requests = {greedy(5, 9),  greedy(31, 4), greedy(12, 12),
                                         greedy(40, 1), greedy(8, 7),  greedy(19, 10)};
  std::vector<Seen> seen(requests.size());
  DecodeBatch batch(transformer(), 4);
  join(batch, 0, requests[0], seen[0]);
  join(batch, 1, requests[1], seen[1]);
  batch.step();
  batch.step();
  for (size_t i = 2; i < 5; ++i) join(batch, i, requests[i], seen[i]);
  EXPECT_EQ(batch.size(), 4u);  // request 3 ended with its first token
  batch.step();
  join(batch, 5, requests[5], seen[5]);
  int steps = 0;
  while (!batch.empty() && steps++ < 100) batch.step();
  EXPECT_TRUE(batch.empty());
  expect_as_alone(requests, seen);
}

TEST_P(DecodeBatchTest, SampledStreamsWithLogitsAndLogprobsMatchEachAlone) {
  SamplingOptions sampled;
  sampled.temperature = 0.8f;
  sampled.top_p = 0.9f;
  sampled.repetition_penalty = 1.3f;
  std::vector<Request> requests;
  for (int i = 0; i < 5; ++i) {
    Request request = greedy(6 + 7 * i, 6 + i);
    if (i % 2 == 0) {
      request.sampling = sampled;
      request.sampling.seed = 1000 + static_cast<uint64_t>(i);
    }
    request.top_logprobs = i == 1 ? 3 : 0;
    request.logits_every_token = i == 3;
    requests.push_back(request);
  }
  std::vector<Seen> seen(requests.size());
  DecodeBatch batch(transformer(), 8);
  for (size_t i = 0; i < requests.size(); ++i) {
    join(batch, i, requests[i], seen[i]);
    batch.step();
  }
  while (!batch.empty()) batch.step();
  expect_as_alone(requests, seen);
}

TEST_P(DecodeBatchTest, AFailedOrInterruptedStreamLeavesAndTheOthersGoOn) {
  const std::vector<Request> requests = {greedy(9, 8), greedy(14, 8), greedy(3, 8)};
  std::vector<Seen> seen(requests.size());
  DecodeBatch batch(transformer(), 4);
  join(batch, 0, requests[0], seen[0]);

  Seen& failing = seen[1];
  Prefilled unused = prefill(1, requests[1]);
  DecodeOptions fails = options(requests[1], unused.prompt, failing);
  auto record = std::move(fails.on_token);
  fails.on_token = [record](DecodedToken token) -> Result<AfterToken> {
    if (token.index == 2) return make_error(ErrorCode::kUnavailable, "the client left");
    return record(std::move(token));
  };
  join(batch, 1, requests[1], failing, &fails);

  Seen& interrupted = seen[2];
  DecodeOptions cancels = options(requests[2], prefill(2, requests[2]).prompt, interrupted);
  int asked = 0;
  cancels.interrupted = [&asked]() -> Status {
    return ++asked == 4 ? make_error(ErrorCode::kCancelled, "request cancelled") : Status::ok();
  };
  join(batch, 2, requests[2], interrupted, &cancels);

  while (!batch.empty()) batch.step();
  EXPECT_EQ(failing.status.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(failing.tokens.size(), 2u);
  EXPECT_EQ(interrupted.status.code(), ErrorCode::kCancelled);
  EXPECT_EQ(interrupted.tokens.size(), 3u);
  const Seen expected = alone(0, requests[0]);
  EXPECT_TRUE(seen[0].status.is_ok());
  EXPECT_EQ(seen[0].tokens, expected.tokens);
}

TEST_P(DecodeBatchTest, StreamsStillRunningEndCancelledWhenTheBatchGoes) {
  const Request request = greedy(7, 20);
  Seen seen;
  {
    DecodeBatch batch(transformer(), 2);
    join(batch, 0, request, seen);
    batch.step();
  }
  EXPECT_TRUE(seen.ended);
  EXPECT_EQ(seen.status.code(), ErrorCode::kCancelled);
  EXPECT_EQ(seen.tokens.size(), 2u);
}

TEST_P(DecodeBatchTest, ARowOutsideItsCacheIsRefusedNamingIt) {
  Workspace workspace = std::move(transformer().make_workspace(2, 2)).value();
  auto cache = KvCache::create(*model_.backend, config_, 4);
  ASSERT_TRUE(cache.is_ok());
  const DecodeRow inside{.token = 1, .position = 3, .cache = &*cache};
  const DecodeRow outside{.token = 1, .position = 4, .cache = &*cache};
  EXPECT_TRUE(transformer().check_rows(std::vector<DecodeRow>{inside}, workspace).is_ok());
  Status refused = transformer().check_rows(std::vector<DecodeRow>{inside, outside}, workspace);
  EXPECT_EQ(refused.code(), ErrorCode::kOutOfRange);
  EXPECT_NE(refused.message().find("row 1"), std::string::npos) << refused.message();
  const DecodeRow bad_token{.token = config_.vocab_size, .position = 0, .cache = &*cache};
  EXPECT_EQ(transformer().check_rows(std::vector<DecodeRow>{bad_token}, workspace).code(),
            ErrorCode::kOutOfRange);
  EXPECT_EQ(
      transformer().check_rows(std::vector<DecodeRow>{inside, inside, inside}, workspace).code(),
      ErrorCode::kOutOfRange);
}

INSTANTIATE_TEST_SUITE_P(Models, DecodeBatchTest, ::testing::Values("llama", "falcon"));

}  // namespace
}  // namespace runahead
