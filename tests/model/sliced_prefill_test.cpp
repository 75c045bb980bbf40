// The KV-Runahead primitive: a prompt run as k slices in turn, each given the K/V of all earlier
// slices, reproduces a one-shot prefill (logits and every layer's K/V within 1e-5 relative).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "tests/support/numeric.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using testing::LoadedModel;
using testing::relative_error;

std::vector<float> cache_contents(Backend& backend, const KvCache& cache, int layer,
                                  int64_t tokens) {
  const Tensor block = cache.block(layer, 0, tokens);
  std::vector<float> host(static_cast<size_t>(block.elements()));
  EXPECT_TRUE(backend.copy_to_host(block, host.data()).is_ok());
  return host;
}

// Cuts [0, n) into k non-empty slices at random (uneven) points.
std::vector<int64_t> random_cuts(int64_t n, int k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> points(static_cast<size_t>(n - 1));
  for (int64_t i = 0; i < n - 1; ++i) points[i] = i + 1;
  std::shuffle(points.begin(), points.end(), rng);
  std::vector<int64_t> cuts(points.begin(), points.begin() + (k - 1));
  cuts.push_back(0);
  cuts.push_back(n);
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

class SlicedPrefillTest : public ::testing::TestWithParam<bool> {
 protected:
  ModelConfig config() const {
    return GetParam() ? testing::tiny_falcon_config() : testing::tiny_llama_config();
  }
};

TEST_P(SlicedPrefillTest, SlicesReproduceOneShotPrefill) {
  const ModelConfig c = config();
  LoadedModel model = testing::load_on_cpu(testing::random_host_model(c, 7));
  ASSERT_NE(model.transformer, nullptr);
  const Transformer& t = *model.transformer;
  const int64_t n = 41;
  const std::vector<int32_t> prompt = testing::random_tokens(static_cast<int>(n), c.vocab_size, 3);

  auto ws = t.make_workspace(n);
  ASSERT_TRUE(ws) << ws.error().to_string();
  auto reference_cache = KvCache::create(*model.backend, c, n);
  ASSERT_TRUE(reference_cache);
  ASSERT_TRUE(t.prefill_slice(prompt, 0, *ws, *reference_cache).is_ok());
  std::vector<float> reference_logits;
  ASSERT_TRUE(t.last_token_logits(*ws, reference_logits).is_ok());

  for (int k = 1; k <= 8; ++k) {
    SCOPED_TRACE("slices: " + std::to_string(k));
    const std::vector<int64_t> cuts = random_cuts(n, k, 100 + k);
    auto cache = KvCache::create(*model.backend, c, n);
    ASSERT_TRUE(cache);
    for (int s = 0; s < k; ++s) {
      const std::span<const int32_t> slice(prompt.data() + cuts[s],
                                           static_cast<size_t>(cuts[s + 1] - cuts[s]));
      ASSERT_TRUE(t.prefill_slice(slice, cuts[s], *ws, *cache).is_ok());
    }
    std::vector<float> logits;
    ASSERT_TRUE(t.last_token_logits(*ws, logits).is_ok());
    EXPECT_LT(relative_error(logits, reference_logits), 1e-5);
    EXPECT_EQ(argmax(logits), argmax(reference_logits));
    for (int layer = 0; layer < c.n_layers; ++layer) {
      EXPECT_LT(relative_error(cache_contents(*model.backend, *cache, layer, n),
                               cache_contents(*model.backend, *reference_cache, layer, n)),
                1e-5)
          << "layer " << layer;
    }
  }
}

TEST_P(SlicedPrefillTest, DecodeStepEqualsLongerPrefill) {
  // Decoding token by token on the cache is a prefill of one-token slices.
  const ModelConfig c = config();
  LoadedModel model = testing::load_on_cpu(testing::random_host_model(c, 11));
  ASSERT_NE(model.transformer, nullptr);
  const Transformer& t = *model.transformer;
  const std::vector<int32_t> prompt = testing::random_tokens(20, c.vocab_size, 5);
  auto ws = t.make_workspace(20);
  ASSERT_TRUE(ws);
  auto full = KvCache::create(*model.backend, c, 20);
  ASSERT_TRUE(full);
  ASSERT_TRUE(t.prefill_slice(prompt, 0, *ws, *full).is_ok());
  std::vector<float> want;
  ASSERT_TRUE(t.last_token_logits(*ws, want).is_ok());

  auto cache = KvCache::create(*model.backend, c, 20);
  ASSERT_TRUE(cache);
  ASSERT_TRUE(t.prefill_slice(std::span(prompt).first(12), 0, *ws, *cache).is_ok());
  for (int64_t pos = 12; pos < 20; ++pos) {
    ASSERT_TRUE(t.prefill_slice(std::span(prompt).subspan(pos, 1), pos, *ws, *cache).is_ok());
  }
  std::vector<float> got;
  ASSERT_TRUE(t.last_token_logits(*ws, got).is_ok());
  EXPECT_LT(relative_error(got, want), 1e-5);
}

TEST_P(SlicedPrefillTest, RejectsBadSlices) {
  const ModelConfig c = config();
  LoadedModel model = testing::load_on_cpu(testing::random_host_model(c, 13));
  ASSERT_NE(model.transformer, nullptr);
  const Transformer& t = *model.transformer;
  auto ws = t.make_workspace(8);
  ASSERT_TRUE(ws);
  auto cache = KvCache::create(*model.backend, c, 16);
  ASSERT_TRUE(cache);
  const std::vector<int32_t> empty;
  Status status = t.prefill_slice(empty, 0, *ws, *cache);
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);

  const std::vector<int32_t> bad_id = {1, 2, c.vocab_size, 3};
  status = t.prefill_slice(bad_id, 0, *ws, *cache);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("token 2"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(std::to_string(c.vocab_size)), std::string::npos);

  const std::vector<int32_t> negative = {-1};
  EXPECT_FALSE(t.prefill_slice(negative, 0, *ws, *cache).is_ok());

  const std::vector<int32_t> four = {1, 2, 3, 4};
  status = t.prefill_slice(four, 14, *ws, *cache);  // past the cache
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.code(), ErrorCode::kOutOfRange);

  const std::vector<int32_t> too_many(9, 1);  // past the workspace
  EXPECT_FALSE(t.prefill_slice(too_many, 0, *ws, *cache).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Architectures, SlicedPrefillTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Falcon" : "Llama";
                         });

}  // namespace
}  // namespace runahead
