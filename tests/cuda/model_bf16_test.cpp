// The whole transformer in bf16 on the GPU against the fp32 CPU model: logits within bf16
// tolerance and the same next token where the CPU's margin is clear; sliced prefill on the GPU
// against the CPU's one-shot prefill, logits and every K/V row.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <random>

#include "model/kv_cache.h"
#include "model/random_model.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "tests/cuda/twin_tensor.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

// Worst row's max |gpu - cpu| over its max |cpu| (tests/support/numeric.h).
constexpr double kLogitsTolerance = 5e-2;
constexpr double kCacheTolerance = 5e-2;

struct ModelCase {
  std::string name;
  int64_t tokens;
};

void PrintTo(const ModelCase& c, std::ostream* os) {
  *os << c.name << ", " << c.tokens << " tokens";
}

// A model on the GPU: weights, transformer, workspace and cache for `tokens`.
struct GpuModel {
  ModelWeights weights;
  std::unique_ptr<Transformer> transformer;
  Workspace workspace;
  KvCache cache;
};

std::unique_ptr<GpuModel> load_on_gpu(const HostModel& host, CudaBackend& gpu, int64_t tokens) {
  auto model = std::make_unique<GpuModel>();
  auto weights = upload_weights(host, gpu);
  EXPECT_TRUE(weights.is_ok()) << weights.error().to_string();
  if (!weights) return nullptr;
  model->weights = std::move(weights).value();
  model->transformer = std::make_unique<Transformer>(model->weights, gpu);
  auto ws = model->transformer->make_workspace(tokens);
  auto cache = KvCache::create(gpu, host.config, tokens);
  EXPECT_TRUE(ws.is_ok() && cache.is_ok());
  if (!ws || !cache) return nullptr;
  model->workspace = std::move(ws).value();
  model->cache = std::move(cache).value();
  return model;
}

// Larger than the tiny presets: head_dim 128 (tensor-core attention), GQA, several key tiles.
ModelConfig medium_llama() {
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.architecture_name = "medium-llama";
  c.n_layers = 4;
  c.hidden = 512;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 128;
  c.ffn_hidden = 1376;
  c.vocab_size = 1000;
  c.max_positions = 4096;
  return c;
}

// Falcon-shaped: head_dim 64, one KV head, LayerNorm, GELU, parallel block.
ModelConfig medium_falcon() {
  ModelConfig c = medium_llama();
  c.architecture = Architecture::kFalcon;
  c.architecture_name = "medium-falcon";
  c.n_heads = 8;
  c.n_kv_heads = 1;
  c.head_dim = 64;
  c.ffn_hidden = 2048;
  c.norm = NormKind::kLayer;
  c.activation = Activation::kGelu;
  c.parallel_block = true;
  return c;
}

ModelConfig config_for(const std::string& name) {
  if (name == "medium-llama") return medium_llama();
  if (name == "medium-falcon") return medium_falcon();
  auto preset = preset_config(name);
  EXPECT_TRUE(preset.is_ok());
  return *preset;
}

HostModel host_model_for(const ModelConfig& c, uint64_t seed) {
  // Weight scale ~ 1/sqrt(hidden) keeps the activations of deeper random models in range.
  const float scale = std::min(0.2f, 1.0f / std::sqrt(static_cast<float>(c.hidden)));
  return testing::random_host_model(c, seed, scale);
}

class CudaModelTest : public testing::CudaTest, public ::testing::WithParamInterface<ModelCase> {
 protected:
  void SetUp() override { testing::CudaTest::SetUp(); }
};

TEST_P(CudaModelTest, Bf16LogitsMatchFp32Reference) {
  const ModelConfig c = config_for(GetParam().name);
  const int64_t n = GetParam().tokens;
  const HostModel host = host_model_for(c, rng_());
  const std::vector<int32_t> prompt =
      testing::random_tokens(static_cast<int>(n), c.vocab_size, rng_());

  testing::LoadedModel reference = testing::load_on_cpu(host);
  ASSERT_NE(reference.transformer, nullptr);
  auto ref_ws = reference.transformer->make_workspace(n);
  auto ref_cache = KvCache::create(*reference.backend, c, n);
  ASSERT_TRUE(ref_ws && ref_cache);
  ASSERT_TRUE(reference.transformer->prefill_slice(prompt, 0, *ref_ws, *ref_cache).is_ok());
  std::vector<float> want;
  ASSERT_TRUE(reference.transformer->last_token_logits(*ref_ws, want).is_ok());

  auto gpu = load_on_gpu(host, *gpu_, n);
  ASSERT_NE(gpu, nullptr);
  const Status run = gpu->transformer->prefill_slice(prompt, 0, gpu->workspace, gpu->cache);
  ASSERT_TRUE(run.is_ok()) << run.to_string();
  std::vector<float> got;
  ASSERT_TRUE(gpu->transformer->last_token_logits(gpu->workspace, got).is_ok());
  // Greedy decoding's index from the device is argmax of the logits copied to the host.
  const auto greedy = gpu->transformer->last_token_argmax(gpu->workspace);
  ASSERT_TRUE(greedy.is_ok()) << greedy.error().to_string();
  EXPECT_EQ(*greedy, argmax(got));

  const double error = testing::worst_row_error(got, want, c.vocab_size).error;
  std::printf("[ rel-err  ] model %-16s %5lld tokens: logits %.3e\n", GetParam().name.c_str(),
              static_cast<long long>(n), error);
  EXPECT_LT(error, kLogitsTolerance);

  // Same next token where the reference's top two are clearly apart.
  std::vector<float> sorted = want;
  std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
  double norm = 0.0;
  for (float x : want) norm += double{x} * x;
  const double rms = std::sqrt(norm / static_cast<double>(want.size()));
  const double margin = sorted[0] - sorted[1];
  if (margin > 4.0 * error * rms + 1e-3) {
    EXPECT_EQ(argmax(got), argmax(want)) << "margin " << margin << ", logits rms " << rms;
  } else {
    std::printf("[ argmax   ] margin %.3g too small to compare (rms %.3g)\n", margin, rms);
  }
}

TEST_P(CudaModelTest, SlicedPrefillMatchesCpuReference) {
  const ModelConfig c = config_for(GetParam().name);
  const int64_t n = GetParam().tokens;
  const HostModel host = host_model_for(c, rng_());
  const std::vector<int32_t> prompt =
      testing::random_tokens(static_cast<int>(n), c.vocab_size, rng_());

  testing::LoadedModel reference = testing::load_on_cpu(host);
  ASSERT_NE(reference.transformer, nullptr);
  auto ref_ws = reference.transformer->make_workspace(n);
  auto ref_cache = KvCache::create(*reference.backend, c, n);
  ASSERT_TRUE(ref_ws && ref_cache);
  ASSERT_TRUE(reference.transformer->prefill_slice(prompt, 0, *ref_ws, *ref_cache).is_ok());
  std::vector<float> want;
  ASSERT_TRUE(reference.transformer->last_token_logits(*ref_ws, want).is_ok());

  // Three uneven slices on the GPU, each run with the earlier ones' K/V already in the cache.
  auto sliced = load_on_gpu(host, *gpu_, n);
  ASSERT_TRUE(sliced);
  const std::vector<int64_t> cuts = {0, n / 5 + 1, n / 2 + 3, n};
  for (size_t s = 0; s + 1 < cuts.size(); ++s) {
    const std::span<const int32_t> slice(prompt.data() + cuts[s],
                                         static_cast<size_t>(cuts[s + 1] - cuts[s]));
    const Status status =
        sliced->transformer->prefill_slice(slice, cuts[s], sliced->workspace, sliced->cache);
    ASSERT_TRUE(status.is_ok()) << status.to_string();
  }
  std::vector<float> got;
  ASSERT_TRUE(sliced->transformer->last_token_logits(sliced->workspace, got).is_ok());
  const testing::RowError logits = testing::worst_row_error(got, want, c.vocab_size);
  std::printf("[ rel-err  ] sliced %-16s %5lld tokens: logits %.3e\n", GetParam().name.c_str(),
              static_cast<long long>(n), logits.error);
  EXPECT_LT(logits.error, kLogitsTolerance);

  // Every row of every layer's K/V, against the CPU's one-shot prefill.
  for (int layer = 0; layer < c.n_layers; ++layer) {
    const std::vector<float> cpu_rows = testing::read_cpu(*cpu_, ref_cache->block(layer, 0, n));
    const std::vector<float> gpu_rows = testing::read_gpu(*gpu_, sliced->cache.block(layer, 0, n));
    const testing::RowError kv = testing::worst_row_error(gpu_rows, cpu_rows, 2 * c.kv_dim());
    std::printf("[ rel-err  ] sliced %-16s layer %d K/V: worst row %lld %.3e\n",
                GetParam().name.c_str(), layer, static_cast<long long>(kv.row), kv.error);
    EXPECT_LT(kv.error, kCacheTolerance) << "layer " << layer << " K/V, row " << kv.row;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaModelTest,
                         ::testing::Values(ModelCase{"tiny-llama", 41},
                                           ModelCase{"tiny-falcon", 41},
                                           ModelCase{"medium-llama", 700},
                                           ModelCase{"medium-falcon", 300}),
                         [](const ::testing::TestParamInfo<ModelCase>& param_info) {
                           std::string name = param_info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace runahead
