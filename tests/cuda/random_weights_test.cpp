// Random-weight models generated on the GPU: the same values, bit for bit and in the same fused
// layout, as the host model uploaded; reproducible; uniform over each tensor's range; and the
// path CUDA workers take for large presets.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "model/random_model.h"
#include "model/weights.h"
#include "tests/cuda/twin_tensor.h"

namespace runahead {
namespace {

class RandomWeightsTest : public testing::CudaTest {};

std::vector<uint8_t> bytes_of(CudaBackend& gpu, const Tensor& t) {
  std::vector<uint8_t> bytes(static_cast<size_t>(t.elements()) * dtype_size(t.dtype));
  const Status status = gpu.copy_to_host(t, bytes.data());
  EXPECT_TRUE(status.is_ok()) << status.to_string();
  return bytes;
}

// Every tensor of two models on the GPU, by name; the first difference's name, or "".
std::string first_difference(CudaBackend& gpu, const ModelWeights& a, const ModelWeights& b) {
  std::vector<std::pair<std::string, std::pair<Tensor, Tensor>>> pairs = {
      {"token_embedding", {a.token_embedding, b.token_embedding}},
      {"final_norm", {a.final_norm, b.final_norm}},
      {"final_norm_bias", {a.final_norm_bias, b.final_norm_bias}},
      {"lm_head", {a.lm_head, b.lm_head}},
      {"inv_freq", {a.inv_freq, b.inv_freq}}};
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const LayerWeights& x = a.layers[l];
    const LayerWeights& y = b.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    for (auto [name, tx, ty] :
         {std::tuple{"attn_norm", x.attn_norm, y.attn_norm},
          std::tuple{"attn_norm_bias", x.attn_norm_bias, y.attn_norm_bias},
          std::tuple{"wqkv", x.wqkv, y.wqkv}, std::tuple{"bqkv", x.bqkv, y.bqkv},
          std::tuple{"wo", x.wo, y.wo}, std::tuple{"bo", x.bo, y.bo},
          std::tuple{"mlp_norm", x.mlp_norm, y.mlp_norm},
          std::tuple{"mlp_norm_bias", x.mlp_norm_bias, y.mlp_norm_bias},
          std::tuple{"w_gate_up", x.w_gate_up, y.w_gate_up}, std::tuple{"b_up", x.b_up, y.b_up},
          std::tuple{"w_down", x.w_down, y.w_down}, std::tuple{"b_down", x.b_down, y.b_down}}) {
      pairs.push_back({p + name, {tx, ty}});
    }
  }
  for (const auto& [name, tensors] : pairs) {
    const auto& [x, y] = tensors;
    if (x.empty() != y.empty() || x.rows != y.rows || x.cols != y.cols || x.dtype != y.dtype) {
      return name + " (shape or presence)";
    }
    if (!x.empty() && bytes_of(gpu, x) != bytes_of(gpu, y)) return name;
  }
  return "";
}

std::vector<ModelConfig> layouts() {
  std::vector<ModelConfig> configs = {*preset_config("tiny-llama"), *preset_config("tiny-falcon"),
                                      *preset_config("mini-llama")};
  ModelConfig biased = *preset_config("tiny-llama");  // every optional bias, fused or not
  biased.architecture_name = "tiny-llama-biased";
  biased.qkv_bias = true;
  biased.out_bias = true;
  biased.mlp_bias = true;
  configs.push_back(biased);
  return configs;
}

TEST_F(RandomWeightsTest, DeviceWeightsEqualTheUploadedHostModel) {
  for (const ModelConfig& c : layouts()) {
    SCOPED_TRACE(c.architecture_name);
    const float scale = random_weight_scale(c);
    auto device = generate_random_weights(c, *gpu_, 11, scale);
    ASSERT_TRUE(device.is_ok()) << device.error().to_string();
    auto uploaded = upload_weights(random_host_model(c, 11, scale), *gpu_);
    ASSERT_TRUE(uploaded.is_ok()) << uploaded.error().to_string();
    EXPECT_EQ(first_difference(*gpu_, *device, *uploaded), "");
  }
}

TEST_F(RandomWeightsTest, GenerationIsReproducibleAndFollowsTheSeed) {
  const ModelConfig c = *preset_config("mini-llama");
  auto first = generate_random_weights(c, *gpu_, 5, 0.05f);
  auto second = generate_random_weights(c, *gpu_, 5, 0.05f);
  auto other = generate_random_weights(c, *gpu_, 6, 0.05f);
  ASSERT_TRUE(first.is_ok() && second.is_ok() && other.is_ok());
  EXPECT_EQ(first_difference(*gpu_, *first, *second), "");
  EXPECT_EQ(first_difference(*gpu_, *first, *other), "token_embedding");
  // Another seed changes (nearly) every element, not a few.
  const std::vector<uint8_t> a = bytes_of(*gpu_, first->layers[0].wqkv);
  const std::vector<uint8_t> b = bytes_of(*gpu_, other->layers[0].wqkv);
  size_t same = 0;
  for (size_t i = 0; i + 1 < a.size(); i += 2) same += a[i] == b[i] && a[i + 1] == b[i + 1];
  EXPECT_LT(same, a.size() / 2 / 50);
}

struct Stats {
  double mean = 0, variance = 0, min = 0, max = 0;
  size_t count = 0;
};

Stats stats_on_host(CudaBackend& gpu, const Tensor& t) {
  const std::vector<float> v = testing::read_gpu(gpu, t);
  Stats s;
  s.count = v.size();
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (float x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (float x : v) s.variance += (x - s.mean) * (x - s.mean);
  s.variance /= static_cast<double>(v.size());
  return s;
}

// Uniform on [offset - scale, offset + scale], stored as bf16: mean and variance within 5
// standard errors, extremes within half a bf16 step of both ends.
void expect_uniform(const Stats& s, double scale, double offset, const std::string& what) {
  const double n = static_cast<double>(s.count);
  const double variance = scale * scale / 3.0;
  const double largest = std::max(std::abs(offset - scale), std::abs(offset + scale));
  const double half_step = std::ldexp(1.0, static_cast<int>(std::floor(std::log2(largest))) - 8);
  std::printf("[ stats    ] %-28s n %10zu mean %+.3e var/expected %.5f range [%+.5f, %+.5f]\n",
              what.c_str(), s.count, s.mean, s.variance / variance, s.min, s.max);
  EXPECT_NEAR(s.mean, offset, 5.0 * std::sqrt(variance / n)) << what;
  // bf16 rounding adds a variance of at most half_step^2 / 3.
  EXPECT_NEAR(s.variance, variance, 5.0 * std::sqrt(0.8 / n) * variance + half_step * half_step)
      << what;
  EXPECT_GE(s.min, offset - scale - half_step) << what;
  EXPECT_LE(s.max, offset + scale + half_step) << what;
  EXPECT_LT(s.min, offset - 0.99 * scale + half_step) << what;
  EXPECT_GT(s.max, offset + 0.99 * scale - half_step) << what;
}

TEST_F(RandomWeightsTest, Llama2_7bIsGeneratedInPlaceWithUniformTensors) {
  const size_t needed = size_t{14} << 30;
  if (gpu_->free_memory_bytes() < needed) {
    GTEST_SKIP() << gpu_->name() << " has " << (gpu_->free_memory_bytes() >> 30)
                 << " GiB free; llama2-7b needs 14";
  }
  const auto start = std::chrono::steady_clock::now();
  auto loaded = load_random_weights("random:llama2-7b", *gpu_, 3);
  ASSERT_TRUE(loaded.is_ok()) << loaded.error().to_string();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ timing   ] random:llama2-7b generated on %s in %.3f s\n", gpu_->name().c_str(),
              seconds);
  EXPECT_TRUE(loaded->in_place);
  const ModelConfig c = *preset_config("llama2-7b");
  EXPECT_EQ(loaded->hash, random_model_hash(c, 3));
  const ModelWeights& w = loaded->weights;
  const double scale = random_weight_scale(c);
  expect_uniform(stats_on_host(*gpu_, w.token_embedding), 1.0, 0.0, "token_embedding");
  expect_uniform(stats_on_host(*gpu_, w.lm_head), scale, 0.0, "lm_head");
  expect_uniform(stats_on_host(*gpu_, w.layers[31].w_gate_up), scale, 0.0, "layers.31.w_gate_up");
  expect_uniform(stats_on_host(*gpu_, w.layers[17].wqkv.rows_slice(c.q_dim(), c.qkv_dim())), scale,
                 0.0, "layers.17.wk|wv");
  expect_uniform(stats_on_host(*gpu_, w.layers[0].mlp_norm), 0.1, 1.0, "layers.0.mlp_norm");
  // Well under the minutes a host generation and upload take.
  EXPECT_LT(seconds, 20.0);
}

}  // namespace
}  // namespace runahead
