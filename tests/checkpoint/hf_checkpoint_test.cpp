// Hugging Face checkpoint directories: names mapped to the canonical ones, config read in both
// the transformers 5 and the older layout, shards, and every bad input refused with a message
// that names the file, tensor or key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/hf_checkpoint.h"
#include "model/random_model.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "tests/checkpoint/checkpoint_files.h"
#include "tests/support/hf_export.h"

namespace runahead {
namespace {

using ::testing::HasSubstr;
using testing::HfCheckpoint;
using testing::TempDir;

std::string load_error(const std::string& dir) {
  auto model = load_hf_checkpoint(dir);
  EXPECT_FALSE(model.is_ok()) << dir << " loaded although it is bad";
  return model.is_ok() ? "" : model.error().message;
}

// Every HF tensor arrives under its canonical name with the same bytes and shape.
void expect_tensor(const HostModel& model, const HfCheckpoint& ckpt, const std::string& canonical,
                   const std::string& hf) {
  SCOPED_TRACE(canonical + " <- " + hf);
  const HostTensor* got = model.find(canonical);
  ASSERT_NE(got, nullptr);
  const testing::StoredTensor& want = ckpt.tensors.at(hf);
  EXPECT_EQ(got->dtype, want.dtype);
  const int64_t rows = want.shape.size() == 2 ? want.shape[0] : 1;
  EXPECT_EQ(got->rows, rows);
  EXPECT_EQ(got->cols, want.shape.back());
  ASSERT_EQ(got->bytes(), want.bytes.size());
  EXPECT_EQ(std::memcmp(got->data, want.bytes.data(), want.bytes.size()), 0);
  EXPECT_THAT(got->origin, HasSubstr(hf));
}

class LlamaRoundTripTest : public ::testing::TestWithParam<DType> {};

TEST_P(LlamaRoundTripTest, LoadsEveryTensorExactly) {
  TempDir dir;
  const HfCheckpoint ckpt = testing::tiny_llama_checkpoint(GetParam());
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.architecture_name, "LlamaForCausalLM");
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.hidden, 20);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 6);  // from "head_dim", not hidden / heads
  EXPECT_EQ(c.ffn_hidden, 28);
  EXPECT_EQ(c.vocab_size, 37);
  EXPECT_EQ(c.max_positions, 128);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.norm, NormKind::kRms);
  EXPECT_EQ(c.activation, Activation::kSwiGlu);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kNone);
  EXPECT_EQ(c.bos_token, 1);
  EXPECT_EQ(c.eos_token, 2);

  expect_tensor(*model, ckpt, "token_embedding", "model.embed_tokens.weight");
  expect_tensor(*model, ckpt, "final_norm", "model.norm.weight");
  expect_tensor(*model, ckpt, "lm_head", "lm_head.weight");
  for (int l = 0; l < 2; ++l) {
    const std::string ours = "layers." + std::to_string(l) + ".";
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    expect_tensor(*model, ckpt, ours + "attn_norm", hf + "input_layernorm.weight");
    expect_tensor(*model, ckpt, ours + "wq", hf + "self_attn.q_proj.weight");
    expect_tensor(*model, ckpt, ours + "wk", hf + "self_attn.k_proj.weight");
    expect_tensor(*model, ckpt, ours + "wv", hf + "self_attn.v_proj.weight");
    expect_tensor(*model, ckpt, ours + "wo", hf + "self_attn.o_proj.weight");
    expect_tensor(*model, ckpt, ours + "mlp_norm", hf + "post_attention_layernorm.weight");
    expect_tensor(*model, ckpt, ours + "w_gate", hf + "mlp.gate_proj.weight");
    expect_tensor(*model, ckpt, ours + "w_up", hf + "mlp.up_proj.weight");
    expect_tensor(*model, ckpt, ours + "w_down", hf + "mlp.down_proj.weight");
  }

  // And it uploads: shapes are what the config asks for.
  auto backend = make_cpu_backend();
  auto weights = upload_weights(*model, *backend);
  EXPECT_TRUE(weights.is_ok()) << weights.error().to_string();
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LlamaRoundTripTest,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16),
                         [](const ::testing::TestParamInfo<DType>& param_info) {
                           return std::string(dtype_name(param_info.param));
                         });

TEST(HfCheckpointTest, FalconFusedQkvAndBiasesMapToCanonicalNames) {
  TempDir dir;
  const HfCheckpoint ckpt = testing::tiny_falcon_checkpoint(DType::kBF16);
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.architecture, Architecture::kFalcon);
  EXPECT_EQ(c.n_heads, 3);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.ffn_hidden, 40);
  EXPECT_EQ(c.norm, NormKind::kLayer);
  EXPECT_EQ(c.activation, Activation::kGelu);
  EXPECT_TRUE(c.parallel_block);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.eos_token, 11);
  expect_tensor(*model, ckpt, "token_embedding", "transformer.word_embeddings.weight");
  expect_tensor(*model, ckpt, "final_norm", "transformer.ln_f.weight");
  expect_tensor(*model, ckpt, "final_norm_bias", "transformer.ln_f.bias");
  expect_tensor(*model, ckpt, "lm_head", "lm_head.weight");
  for (int l = 0; l < 2; ++l) {
    const std::string ours = "layers." + std::to_string(l) + ".";
    const std::string hf = "transformer.h." + std::to_string(l) + ".";
    expect_tensor(*model, ckpt, ours + "attn_norm", hf + "input_layernorm.weight");
    expect_tensor(*model, ckpt, ours + "attn_norm_bias", hf + "input_layernorm.bias");
    expect_tensor(*model, ckpt, ours + "wqkv", hf + "self_attention.query_key_value.weight");
    expect_tensor(*model, ckpt, ours + "wo", hf + "self_attention.dense.weight");
    expect_tensor(*model, ckpt, ours + "w_up", hf + "mlp.dense_h_to_4h.weight");
    expect_tensor(*model, ckpt, ours + "w_down", hf + "mlp.dense_4h_to_h.weight");
  }
  auto backend = make_cpu_backend();
  auto weights = upload_weights(*model, *backend);
  EXPECT_TRUE(weights.is_ok()) << weights.error().to_string();
}

TEST(HfCheckpointTest, FalconRefusesUnsupportedVariantsNamingTheKey) {
  for (const char* key :
       {"alibi", "new_decoder_architecture", "apply_residual_connection_post_layernorm"}) {
    SCOPED_TRACE(key);
    TempDir dir;
    HfCheckpoint ckpt = testing::tiny_falcon_checkpoint(DType::kF32);
    ckpt.config[key] = true;
    ckpt.write(dir.path());
    const std::string message = load_error(dir.path());
    EXPECT_THAT(message, HasSubstr("config.json"));
    EXPECT_THAT(message, HasSubstr(key));
    EXPECT_THAT(message, HasSubstr("not supported"));
  }
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_falcon_checkpoint(DType::kF32);
  ckpt.config["multi_query"] = false;
  ckpt.write(dir.path());
  EXPECT_THAT(load_error(dir.path()), HasSubstr("multi_query"));
}

// transformers' LlamaConfig takes hidden_size // num_attention_heads when head_dim is absent,
// so the heads need not span the hidden size (26 over 4 heads: head_dim 6, q_proj [24, 26]).
TEST(HfCheckpointTest, LlamaWithoutHeadDimRoundsHiddenOverHeadsDown) {
  ModelConfig want = *preset_config("tiny-llama");
  want.hidden = 26;
  want.n_heads = 4;
  want.n_kv_heads = 2;
  want.head_dim = 6;
  TempDir dir;
  const HostModel host = random_host_model(want, 3);
  ASSERT_TRUE(testing::write_hf_checkpoint(host, dir.path(), {.explicit_head_dim = false}).is_ok());
  ASSERT_THAT(testing::read_text(dir.file("config.json")), ::testing::Not(HasSubstr("head_dim")));
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_EQ(model->config.hidden, 26);
  EXPECT_EQ(model->config.head_dim, 6);
  EXPECT_EQ(model->config.q_dim(), 24);
  auto backend = make_cpu_backend();
  auto weights = upload_weights(*model, *backend);
  EXPECT_TRUE(weights.is_ok()) << weights.error().to_string();
}

// Falcon's heads span the hidden size; a head_dim key that says otherwise is refused.
TEST(HfCheckpointTest, FalconRefusesAHeadDimOtherThanHiddenOverHeads) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_falcon_checkpoint(DType::kF32);
  ckpt.config["head_dim"] = 6;  // hidden 24 over 3 heads is 8
  ckpt.write(dir.path());
  const std::string error = load_error(dir.path());
  EXPECT_THAT(error, HasSubstr("head_dim"));
  EXPECT_THAT(error, HasSubstr("8"));
  ckpt.config["head_dim"] = 8;
  ckpt.write(dir.path());
  EXPECT_TRUE(load_hf_checkpoint(dir.path()).is_ok());
}

TEST(HfCheckpointTest, FalconReadsTheOriginalRefinedWebKeys) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_falcon_checkpoint(DType::kBF16);
  // Falcon-7B as first published: RWForCausalLM, n_layer / n_head, no ffn or rope keys.
  nlohmann::json& c = ckpt.config;
  c["architectures"] = {"RWForCausalLM"};
  c["model_type"] = "RefinedWebModel";
  c["n_layer"] = c["num_hidden_layers"];
  c["n_head"] = c["num_attention_heads"];
  for (const char* key :
       {"num_hidden_layers", "num_attention_heads", "num_kv_heads", "ffn_hidden_size",
        "rope_parameters", "max_position_embeddings", "tie_word_embeddings", "activation"}) {
    c.erase(key);
  }
  ckpt.add("transformer.h.0.mlp.dense_h_to_4h.weight", {96, 24}, DType::kBF16, 7);
  ckpt.add("transformer.h.0.mlp.dense_4h_to_h.weight", {24, 96}, DType::kBF16, 8);
  ckpt.add("transformer.h.1.mlp.dense_h_to_4h.weight", {96, 24}, DType::kBF16, 9);
  ckpt.add("transformer.h.1.mlp.dense_4h_to_h.weight", {24, 96}, DType::kBF16, 10);
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_EQ(model->config.architecture, Architecture::kFalcon);
  EXPECT_EQ(model->config.n_layers, 2);
  EXPECT_EQ(model->config.n_heads, 3);
  EXPECT_EQ(model->config.ffn_hidden, 4 * 24);  // the Falcon default
  EXPECT_EQ(model->config.max_positions, 2048);
  EXPECT_FALSE(model->config.tied_embeddings);  // the file has an lm_head
  auto backend = make_cpu_backend();
  auto weights = upload_weights(*model, *backend);
  EXPECT_TRUE(weights.is_ok()) << weights.error().to_string();
}

TEST(HfCheckpointTest, LlamaAttentionBiasesMapToCanonicalNames) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.config["attention_bias"] = true;
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
    ckpt.add(p + "q_proj.bias", {24}, DType::kF32, 40 + l);
    ckpt.add(p + "k_proj.bias", {12}, DType::kF32, 50 + l);
    ckpt.add(p + "v_proj.bias", {12}, DType::kF32, 60 + l);
    ckpt.add(p + "o_proj.bias", {20}, DType::kF32, 70 + l);
  }
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_TRUE(model->config.qkv_bias);
  EXPECT_TRUE(model->config.out_bias);
  expect_tensor(*model, ckpt, "layers.1.bq", "model.layers.1.self_attn.q_proj.bias");
  expect_tensor(*model, ckpt, "layers.1.bk", "model.layers.1.self_attn.k_proj.bias");
  expect_tensor(*model, ckpt, "layers.1.bv", "model.layers.1.self_attn.v_proj.bias");
  expect_tensor(*model, ckpt, "layers.0.bo", "model.layers.0.self_attn.o_proj.bias");
  auto backend = make_cpu_backend();
  auto weights = upload_weights(*model, *backend);
  EXPECT_TRUE(weights.is_ok()) << weights.error().to_string();
}

TEST(HfCheckpointTest, SmolLmStyleTiedEmbeddingsNeedNoLmHead) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kBF16, /*tied=*/true);
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_TRUE(model->config.tied_embeddings);
  EXPECT_EQ(model->find("lm_head"), nullptr);
  auto backend = make_cpu_backend();
  EXPECT_TRUE(upload_weights(*model, *backend).is_ok());

  // Without the key, a file with no lm_head is taken as tied too.
  ckpt.config.erase("tie_word_embeddings");
  ckpt.write(dir.path());
  model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_TRUE(model->config.tied_embeddings);
}

TEST(HfCheckpointTest, UntiedConfigWithoutLmHeadNamesTheTensor) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32, /*tied=*/true);
  ckpt.config["tie_word_embeddings"] = false;
  ckpt.write(dir.path());
  EXPECT_THAT(load_error(dir.path()), HasSubstr("lm_head.weight"));
}

TEST(HfCheckpointTest, ReadsTransformers5RopeParameters) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.config.erase("rope_theta");
  ckpt.config["rope_parameters"] = {
      {"rope_type", "llama3"},   {"rope_theta", 500000.0},
      {"factor", 8.0},           {"low_freq_factor", 1.0},
      {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  ckpt.config["eos_token_id"] = {7, 8, 9};
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  const ModelConfig& c = model->config;
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_positions, 64);
  EXPECT_EQ(c.eos_token, 7);  // the first of a list
}

TEST(HfCheckpointTest, ReadsOlderRopeThetaAndRopeScaling) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.config["rope_theta"] = 250000.0;
  ckpt.config["rope_scaling"] = {{"type", "linear"}, {"factor", 2.5}};
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_FLOAT_EQ(model->config.rope_theta, 250000.0f);
  EXPECT_EQ(model->config.rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_FLOAT_EQ(model->config.rope_scaling.factor, 2.5f);

  // Llama 3.1 files: rope_scaling with "rope_type"; the pretraining length defaults to
  // max_position_embeddings.
  ckpt.config["rope_scaling"] = {{"rope_type", "llama3"},
                                 {"factor", 8.0},
                                 {"low_freq_factor", 1.0},
                                 {"high_freq_factor", 4.0}};
  ckpt.write(dir.path());
  model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_EQ(model->config.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(model->config.rope_scaling.original_max_positions, 128);
}

TEST(HfCheckpointTest, RefusesUnsupportedRopeTypeNamingIt) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  ckpt.write(dir.path());
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, HasSubstr("rope_scaling.rope_type"));
  EXPECT_THAT(message, HasSubstr("yarn"));
}

HfCheckpoint mistral_checkpoint(const nlohmann::json& window) {
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kBF16);
  ckpt.config["architectures"] = {"MistralForCausalLM"};
  ckpt.config["model_type"] = "mistral";
  ckpt.config["sliding_window"] = window;
  return ckpt;
}

TEST(HfCheckpointTest, MistralKeepsItsSlidingWindow) {
  TempDir dir;
  const HfCheckpoint ckpt = mistral_checkpoint(48);
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_EQ(model->config.architecture, Architecture::kLlama);
  EXPECT_EQ(model->config.architecture_name, "MistralForCausalLM");
  ASSERT_LT(48, model->config.max_positions);
  EXPECT_EQ(model->config.sliding_window, 48);
}

TEST(HfCheckpointTest, SlidingWindowOfTheWholeContextOrNullIsNoWindow) {
  for (const nlohmann::json& window : {nlohmann::json(nullptr), nlohmann::json(1 << 20)}) {
    SCOPED_TRACE(window.dump());
    TempDir dir;
    const HfCheckpoint ckpt = mistral_checkpoint(window);
    ckpt.write(dir.path());
    auto model = load_hf_checkpoint(dir.path());
    ASSERT_TRUE(model.is_ok()) << model.error().to_string();
    EXPECT_EQ(model->config.sliding_window, 0);
  }
  TempDir dir;
  HfCheckpoint ckpt = mistral_checkpoint(nullptr);
  ckpt.config["sliding_window"] = ckpt.config["max_position_embeddings"];
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_EQ(model->config.sliding_window, 0);
}

TEST(HfCheckpointTest, LlamaReadsNoSlidingWindow) {
  // transformers' Llama has no sliding window, whatever the config holds.
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kBF16);
  ckpt.config["sliding_window"] = 4;
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  EXPECT_EQ(model->config.sliding_window, 0);
}

TEST(HfCheckpointTest, RefusesABadSlidingWindowNamingIt) {
  for (const nlohmann::json& window : {nlohmann::json(0), nlohmann::json(-8)}) {
    SCOPED_TRACE(window.dump());
    TempDir dir;
    mistral_checkpoint(window).write(dir.path());
    EXPECT_THAT(load_error(dir.path()), HasSubstr("sliding_window"));
  }
}

TEST(HfCheckpointTest, LoadsShardsThroughTheIndex) {
  TempDir dir;
  const HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF16);
  ckpt.write(dir.path(), /*shards=*/3);
  ASSERT_FALSE(std::filesystem::exists(dir.file("model.safetensors")));
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  expect_tensor(*model, ckpt, "layers.1.w_down", "model.layers.1.mlp.down_proj.weight");
  expect_tensor(*model, ckpt, "token_embedding", "model.embed_tokens.weight");
  EXPECT_EQ(model->tensors.size(), ckpt.tensors.size());
}

TEST(HfCheckpointTest, RefusesMissingShardNamingIt) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kF32).write(dir.path(), 2);
  std::filesystem::remove(dir.file("model-00002-of-00002.safetensors"));
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(message, HasSubstr("does not exist"));
}

TEST(HfCheckpointTest, RefusesIndexEntryAbsentFromItsShard) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kF32).write(dir.path(), 2);
  const std::string index_path = dir.file("model.safetensors.index.json");
  nlohmann::json index = nlohmann::json::parse(std::ifstream(index_path));
  index["weight_map"]["model.layers.0.ghost.weight"] = "model-00001-of-00002.safetensors";
  testing::write_json(index_path, index);
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, HasSubstr("model.layers.0.ghost.weight"));
  EXPECT_THAT(message, HasSubstr("model-00001-of-00002.safetensors"));
}

TEST(HfCheckpointTest, RefusesShardOutsideTheDirectory) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kF32).write(dir.path(), 2);
  const std::string index_path = dir.file("model.safetensors.index.json");
  nlohmann::json index = nlohmann::json::parse(std::ifstream(index_path));
  index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  testing::write_json(index_path, index);
  EXPECT_THAT(load_error(dir.path()), HasSubstr("../elsewhere.safetensors"));
}

TEST(HfCheckpointTest, RefusesMissingTensorNamingIt) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.tensors.erase("model.layers.1.mlp.down_proj.weight");
  ckpt.write(dir.path());
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, HasSubstr("model.layers.1.mlp.down_proj.weight"));
  EXPECT_THAT(message, HasSubstr("missing"));
}

TEST(HfCheckpointTest, MisShapedTensorFailsUploadNamingIt) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.add("model.layers.0.self_attn.k_proj.weight", {11, 20}, DType::kF32, 5);
  ckpt.write(dir.path());
  auto model = load_hf_checkpoint(dir.path());
  ASSERT_TRUE(model.is_ok()) << model.error().to_string();
  auto backend = make_cpu_backend();
  auto weights = upload_weights(*model, *backend);
  ASSERT_FALSE(weights.is_ok());
  EXPECT_THAT(weights.error().message, HasSubstr("model.layers.0.self_attn.k_proj.weight"));
  EXPECT_THAT(weights.error().message, HasSubstr("[11, 20]"));
}

TEST(HfCheckpointTest, RefusesWronglyTypedTensorNamingIt) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kF32).write(dir.path());
  // Replace the weights file with one whose embedding is stored as I32.
  const std::string header =
      R"({"model.embed_tokens.weight":{"dtype":"I32","shape":[37,20],"data_offsets":[0,2960]}})";
  testing::write_raw_safetensors(dir.file("model.safetensors"), header, std::vector<uint8_t>(2960));
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, HasSubstr("model.embed_tokens.weight"));
  EXPECT_THAT(message, HasSubstr("I32"));
}

TEST(HfCheckpointTest, RefusesTruncatedWeightsNamingFileAndTensor) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kBF16).write(dir.path());
  const std::string path = dir.file("model.safetensors");
  testing::truncate_file(path, std::filesystem::file_size(path) - 100);
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("out of range"));
}

TEST(HfCheckpointTest, RefusesUnknownArchitectureNamingIt) {
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.config["architectures"] = {"GPT2LMHeadModel"};
  ckpt.write(dir.path());
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, HasSubstr("GPT2LMHeadModel"));
  EXPECT_THAT(message, HasSubstr("not supported"));
}

TEST(HfCheckpointTest, RefusesDirectoryWithoutConfig) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kF32).write(dir.path());
  std::filesystem::remove(dir.file("config.json"));
  EXPECT_THAT(load_error(dir.path()), HasSubstr(dir.file("config.json")));
}

TEST(HfCheckpointTest, RefusesDirectoryWithoutWeights) {
  TempDir dir;
  testing::write_json(dir.file("config.json"), testing::tiny_llama_checkpoint(DType::kF32).config);
  EXPECT_THAT(load_error(dir.path()), HasSubstr("model.safetensors"));
}

TEST(HfCheckpointTest, RefusesBadConfigValuesNamingTheKey) {
  struct Case {
    const char* key;
    nlohmann::json value;
  };
  for (const Case& c :
       {Case{"num_attention_heads", "four"}, Case{"hidden_size", -20},
        Case{"num_key_value_heads", 3}, Case{"hidden_act", "relu"}, Case{"mlp_bias", true}}) {
    SCOPED_TRACE(c.key);
    TempDir dir;
    HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
    ckpt.config[c.key] = c.value;
    ckpt.write(dir.path());
    const std::string message = load_error(dir.path());
    EXPECT_THAT(message, HasSubstr("config.json"));
    // validate() names its own field (n_kv_heads) rather than the file's key.
    EXPECT_THAT(message,
                HasSubstr(std::string(c.key) == "num_key_value_heads" ? "n_kv_heads" : c.key));
  }
  TempDir dir;
  HfCheckpoint ckpt = testing::tiny_llama_checkpoint(DType::kF32);
  ckpt.config.erase("hidden_size");
  ckpt.write(dir.path());
  EXPECT_THAT(load_error(dir.path()), HasSubstr("required key hidden_size is missing"));
  testing::write_text(dir.file("config.json"), "{ not json");
  EXPECT_THAT(load_error(dir.path()), HasSubstr("not valid JSON"));
}

}  // namespace
}  // namespace runahead
