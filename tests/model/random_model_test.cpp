// Random-weight presets: the values each tensor's stream yields, their reproducibility, the
// model hash every worker compares, and the host fallback of load_random_weights().
#include "model/random_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "model/model_hash.h"

namespace runahead {
namespace {

std::vector<float> values_of(const HostTensor& t) {
  std::vector<float> values(static_cast<size_t>(t.rows * t.cols));
  convert_to_f32(t.dtype, t.data, values.data(), values.size());
  return values;
}

std::vector<float> read_back(Backend& backend, const Tensor& t) {
  std::vector<float> values(static_cast<size_t>(t.elements()));
  EXPECT_EQ(t.dtype, DType::kF32);
  EXPECT_TRUE(backend.copy_to_host(t, values.data()).is_ok());
  return values;
}

struct Stats {
  double mean = 0, variance = 0, min = 0, max = 0;
};

Stats stats_of(const std::vector<float>& v) {
  Stats s;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (float x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (float x : v) s.variance += (x - s.mean) * (x - s.mean);
  s.variance /= static_cast<double>(v.size());
  return s;
}

TEST(RandomModelTest, EachTensorIsUniformOverItsRange) {
  const ModelConfig c = *preset_config("mini-llama");
  const float scale = 0.25f;
  const HostModel model = random_host_model(c, 7, scale);
  struct Expect {
    const char* name;
    float scale, offset;
  };
  for (const Expect& e : {Expect{"token_embedding", 1.0f, 0.0f}, Expect{"layers.1.wq", scale, 0.0f},
                          Expect{"layers.3.w_down", scale, 0.0f}, Expect{"lm_head", scale, 0.0f},
                          Expect{"layers.2.mlp_norm", 0.1f, 1.0f}}) {
    const HostTensor* t = model.find(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    const std::vector<float> v = values_of(*t);
    const Stats s = stats_of(v);
    const double n = static_cast<double>(v.size());
    SCOPED_TRACE(std::string(e.name) + ": mean " + std::to_string(s.mean) + " min " +
                 std::to_string(s.min) + " max " + std::to_string(s.max));
    // Uniform on [offset - scale, offset + scale): mean and variance (scale^2 / 3) within 5
    // standard errors (the variance estimate's relative one is sqrt(0.8 / n)), and the
    // extremes close to both ends.
    const double variance = e.scale * e.scale / 3.0;
    EXPECT_NEAR(s.mean, e.offset, 5.0 * std::sqrt(variance / n));
    EXPECT_NEAR(s.variance, variance, 5.0 * std::sqrt(0.8 / n) * variance);
    EXPECT_GE(s.min, e.offset - e.scale);
    EXPECT_LT(s.max, e.offset + e.scale);
    const double reach = n > 1000 ? 0.99 : 0.9;
    EXPECT_LT(s.min, e.offset - reach * e.scale);
    EXPECT_GT(s.max, e.offset + reach * e.scale);
  }
}

TEST(RandomModelTest, SameSeedSameValuesOtherSeedOrTensorDiffers) {
  const ModelConfig c = *preset_config("tiny-llama");
  const HostModel a = random_host_model(c, 3, 0.2f);
  const HostModel b = random_host_model(c, 3, 0.2f);
  const HostModel other = random_host_model(c, 4, 0.2f);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, tensor] : a.tensors) {
    const HostTensor* same = b.find(name);
    ASSERT_NE(same, nullptr) << name;
    EXPECT_EQ(std::memcmp(tensor.data, same->data, tensor.bytes()), 0) << name;
    EXPECT_NE(values_of(tensor), values_of(*other.find(name))) << name << " with another seed";
  }
  // Tensors of one shape draw different streams.
  EXPECT_NE(values_of(*a.find("layers.0.wk")), values_of(*a.find("layers.0.wv")));
  EXPECT_NE(values_of(*a.find("layers.0.wq")), values_of(*a.find("layers.1.wq")));
}

TEST(RandomModelTest, StreamsAreNamedByTensorNotByPosition) {
  // Biases added to the config leave every other tensor's values as they were.
  ModelConfig plain = *preset_config("tiny-llama");
  ModelConfig biased = plain;
  biased.qkv_bias = true;
  biased.mlp_bias = true;
  const HostModel a = random_host_model(plain, 5, 0.2f);
  const HostModel b = random_host_model(biased, 5, 0.2f);
  EXPECT_NE(b.find("layers.0.bq"), nullptr);
  for (const auto& [name, tensor] : a.tensors) {
    EXPECT_EQ(values_of(tensor), values_of(*b.find(name))) << name;
  }
}

TEST(RandomModelTest, HashFollowsPresetAndSeed) {
  const ModelConfig llama = *preset_config("tiny-llama");
  const ModelConfig falcon = *preset_config("tiny-falcon");
  const std::string reference = random_model_hash(llama, 1);
  EXPECT_EQ(reference.size(), 16u);
  EXPECT_EQ(random_model_hash(llama, 1), reference);
  EXPECT_NE(random_model_hash(llama, 2), reference);
  EXPECT_NE(random_model_hash(falcon, 1), reference);
  ModelConfig wider = llama;
  wider.hidden = 48;
  EXPECT_NE(random_model_hash(wider, 1), reference);  // another scale too
}

TEST(RandomModelTest, CpuLoadsGenerateOnTheHostWithTheSameValues) {
  auto cpu = make_cpu_backend();
  const ModelConfig c = *preset_config("tiny-falcon");
  const auto in_place = generate_random_weights(c, *cpu, 9, random_weight_scale(c));
  ASSERT_FALSE(in_place.is_ok());
  EXPECT_EQ(in_place.error().code, ErrorCode::kUnsupported);

  auto loaded = load_random_weights("random:tiny-falcon", *cpu, 9);
  ASSERT_TRUE(loaded.is_ok()) << loaded.error().to_string();
  EXPECT_FALSE(loaded->in_place);
  EXPECT_EQ(loaded->hash, random_model_hash(c, 9));
  auto host = load_random_model("random:tiny-falcon", 9);
  ASSERT_TRUE(host.is_ok());
  const ModelWeights& w = loaded->weights;
  EXPECT_EQ(read_back(*cpu, w.token_embedding), values_of(*host->find("token_embedding")));
  // Fused q/k/v: rows q | k | v.
  const std::vector<float> qkv = read_back(*cpu, w.layers[2].wqkv);
  std::vector<float> parts = values_of(*host->find("layers.2.wq"));
  for (const char* name : {"layers.2.wk", "layers.2.wv"}) {
    const std::vector<float> part = values_of(*host->find(name));
    parts.insert(parts.end(), part.begin(), part.end());
  }
  EXPECT_EQ(qkv, parts);
  EXPECT_EQ(read_back(*cpu, w.layers[1].attn_norm_bias),
            values_of(*host->find("layers.1.attn_norm_bias")));
}

TEST(RandomModelTest, LoadRefusesOtherPathsNamingThem) {
  auto cpu = make_cpu_backend();
  auto unknown = load_random_weights("random:no-such-model", *cpu);
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.error().message.find("no-such-model"), std::string::npos);
  auto not_random = load_random_weights("/models/llama", *cpu);
  ASSERT_FALSE(not_random.is_ok());
  EXPECT_NE(not_random.error().message.find("/models/llama"), std::string::npos);
}

}  // namespace
}  // namespace runahead
