// Greedy decoding with the argmax taken by the backend: the CPU backend's argmax, the
// transformer's last-token argmax against the logits, and local generation with it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/kv_cache.h"
#include "model/local_generation.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

Result<int32_t> backend_argmax(Backend& cpu, const std::vector<float>& values) {
  auto buffer = cpu.allocate(values.size() * sizeof(float));
  if (!buffer) return buffer.error();
  const Tensor row = buffer->view(DType::kF32, 1, static_cast<int64_t>(values.size()));
  RUNAHEAD_RETURN_IF_ERROR(cpu.copy_from_host(values.data(), row));
  return cpu.argmax(row);
}

TEST(GreedyArgmaxTest, CpuBackendTakesTheFirstLargest) {
  auto cpu = make_cpu_backend();
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::uniform_int_distribution<size_t> place(0, 999);
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<float> values(1000);
    for (float& x : values) x = dist(rng);
    const size_t first = place(rng);
    const size_t second = place(rng);
    values[first] = values[second] = 7.0f;
    auto got = backend_argmax(*cpu, values);
    ASSERT_TRUE(got.is_ok());
    EXPECT_EQ(*got, static_cast<int32_t>(std::min(first, second)));
    EXPECT_EQ(*got, argmax(values));
  }
  auto flat = backend_argmax(*cpu, std::vector<float>(10, -INFINITY));
  ASSERT_TRUE(flat.is_ok());
  EXPECT_EQ(*flat, 0);
}

class GreedyModelTest : public ::testing::TestWithParam<bool> {
 protected:
  ModelConfig config() const {
    return GetParam() ? testing::tiny_falcon_config() : testing::tiny_llama_config();
  }
};

TEST_P(GreedyModelTest, LastTokenArgmaxIsArgmaxOfLogits) {
  const ModelConfig c = config();
  testing::LoadedModel model = testing::load_on_cpu(testing::random_host_model(c, 17));
  ASSERT_NE(model.transformer, nullptr);
  const Transformer& t = *model.transformer;
  auto ws = t.make_workspace(30);
  auto cache = KvCache::create(*model.backend, c, 30);
  ASSERT_TRUE(ws && cache);
  for (uint64_t seed : {1, 2, 3}) {
    const std::vector<int32_t> prompt = testing::random_tokens(30, c.vocab_size, seed);
    ASSERT_TRUE(t.prefill_slice(prompt, 0, *ws, *cache).is_ok());
    std::vector<float> logits;
    ASSERT_TRUE(t.last_token_logits(*ws, logits).is_ok());
    auto greedy = t.last_token_argmax(*ws);
    ASSERT_TRUE(greedy.is_ok()) << greedy.error().to_string();
    EXPECT_EQ(*greedy, argmax(logits)) << "prompt seed " << seed;
  }
}

TEST_P(GreedyModelTest, GenerationWithoutChooserMatchesExplicitArgmax) {
  const ModelConfig c = config();
  testing::LoadedModel model = testing::load_on_cpu(testing::random_host_model(c, 23));
  ASSERT_NE(model.transformer, nullptr);
  const std::vector<int32_t> prompt = testing::random_tokens(19, c.vocab_size, 5);
  LocalGenerationOptions on_backend;
  on_backend.max_new_tokens = 12;
  LocalGenerationOptions on_host = on_backend;
  on_host.choose = [](std::span<const float> logits) { return argmax(logits); };
  auto a = generate_local(*model.transformer, prompt, on_backend);
  auto b = generate_local(*model.transformer, prompt, on_host);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->tokens.size(), 12u);
  EXPECT_EQ(a->tokens, b->tokens);
}

INSTANTIATE_TEST_SUITE_P(Architectures, GreedyModelTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "Falcon" : "Llama";
                         });

}  // namespace
}  // namespace runahead
