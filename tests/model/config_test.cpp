#include "model/config.h"
#include "model/model_hash.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tests/support/random_model.h"

namespace runahead {
namespace {

TEST(ModelConfigTest, TinyConfigsAreValid) {
  EXPECT_TRUE(testing::tiny_llama_config().validate().is_ok());
  EXPECT_TRUE(testing::tiny_falcon_config().validate().is_ok());
}

TEST(ModelConfigTest, RejectsHeadsNotDivisibleByKvHeads) {
  ModelConfig c = testing::tiny_llama_config();
  c.n_kv_heads = 4;  // 6 heads
  const Status status = c.validate();
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("n_kv_heads"), std::string::npos);
}

TEST(ModelConfigTest, Llama3RopeScalingKeepsHighFrequencies) {
  ModelConfig c = testing::tiny_llama_config();
  c.head_dim = 128;
  c.rope_theta = 500000.0f;
  const std::vector<float> plain = c.rope_inv_freq();
  c.rope_scaling.type = RopeScaling::Type::kLlama3;
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.original_max_positions = 8192;
  const std::vector<float> scaled = c.rope_inv_freq();
  ASSERT_EQ(plain.size(), 64u);
  EXPECT_FLOAT_EQ(scaled[0], plain[0]);           // wavelength 2 pi: untouched
  EXPECT_FLOAT_EQ(scaled[63], plain[63] / 8.0f);  // longest wavelengths: divided
}

}  // namespace
}  // namespace runahead

namespace runahead {
namespace {

TEST(ModelHashTest, SameModelSameHashAnyChangeDiffers) {
  const ModelConfig c = testing::tiny_llama_config();
  const std::string reference = model_hash(random_host_model(c, 1));
  EXPECT_EQ(reference.size(), 64u);  // SHA-256 over every byte
  EXPECT_TRUE(is_model_hash(reference));
  EXPECT_EQ(model_hash(random_host_model(c, 1)), reference);
  EXPECT_NE(model_hash(random_host_model(c, 2)), reference);  // other weights
  ModelConfig other = c;
  other.rope_theta = 20000.0f;
  EXPECT_NE(model_hash(random_host_model(other, 1)), reference);  // other config
  // One byte of the LM head (the embedding where they are tied).
  HostModel edited = random_host_model(c, 1);
  HostTensor& head =
      edited.tensors.at(edited.find("lm_head") != nullptr ? "lm_head" : "token_embedding");
  const auto* bytes = static_cast<const uint8_t*>(head.data);
  std::vector<uint8_t> copy(bytes, bytes + head.bytes());
  copy[copy.size() / 3] ^= 1;
  head.data = copy.data();
  EXPECT_NE(model_hash(edited), reference);
}

}  // namespace
}  // namespace runahead
