#include "tests/checkpoint/checkpoint_files.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "model/safetensors.h"

namespace runahead::testing {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_json(const std::string& path, const nlohmann::json& json) {
  write_text(path, json.dump(1));
}

void write_raw_safetensors(const std::string& path, const std::string& header,
                           const std::vector<uint8_t>& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  bytes += header;
  bytes.append(data.begin(), data.end());
  write_text(path, bytes);
}

void truncate_file(const std::string& path, size_t size) {
  std::filesystem::resize_file(path, size);
}

void HfCheckpoint::add(const std::string& name, std::vector<int64_t> shape, DType dtype,
                       uint64_t seed) {
  size_t count = 1;
  for (int64_t dim : shape) count *= static_cast<size_t>(dim);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  StoredTensor tensor{dtype, std::move(shape), std::vector<uint8_t>(count * dtype_size(dtype))};
  convert_from_f32(values.data(), dtype, tensor.bytes.data(), count);
  tensors[name] = std::move(tensor);
}

void HfCheckpoint::write(const std::string& dir, int shards) const {
  write_json(dir + "/config.json", config);
  std::vector<std::vector<SafetensorsEntry>> files(static_cast<size_t>(shards));
  nlohmann::json weight_map = nlohmann::json::object();
  size_t i = 0;
  for (const auto& [name, tensor] : tensors) {
    const size_t shard = i++ % files.size();
    files[shard].push_back({name, tensor.dtype, tensor.shape, tensor.bytes.data()});
    weight_map[name] = "model-0000" + std::to_string(shard + 1) + "-of-0000" +
                       std::to_string(shards) + ".safetensors";
  }
  if (shards == 1) {
    ASSERT_TRUE(write_safetensors(dir + "/model.safetensors", files[0]).is_ok());
    return;
  }
  for (size_t s = 0; s < files.size(); ++s) {
    const std::string name =
        "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    ASSERT_TRUE(write_safetensors(dir + "/" + name, files[s]).is_ok());
  }
  write_json(dir + "/model.safetensors.index.json",
             {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}});
}

HfCheckpoint tiny_llama_checkpoint(DType dtype, bool tied) {
  HfCheckpoint ckpt;
  const int hidden = 20, heads = 4, kv_heads = 2, head_dim = 6, ffn = 28, layers = 2, vocab = 37;
  ckpt.config = {{"architectures", {"LlamaForCausalLM"}},
                 {"model_type", "llama"},
                 {"hidden_size", hidden},
                 {"num_hidden_layers", layers},
                 {"num_attention_heads", heads},
                 {"num_key_value_heads", kv_heads},
                 {"head_dim", head_dim},
                 {"intermediate_size", ffn},
                 {"vocab_size", vocab},
                 {"max_position_embeddings", 128},
                 {"rms_norm_eps", 1e-6},
                 {"hidden_act", "silu"},
                 {"tie_word_embeddings", tied},
                 {"bos_token_id", 1},
                 {"eos_token_id", 2},
                 {"rope_theta", 10000.0}};
  uint64_t seed = 1;
  ckpt.add("model.embed_tokens.weight", {vocab, hidden}, dtype, seed++);
  ckpt.add("model.norm.weight", {hidden}, dtype, seed++);
  if (!tied) ckpt.add("lm_head.weight", {vocab, hidden}, dtype, seed++);
  for (int l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ckpt.add(p + "input_layernorm.weight", {hidden}, dtype, seed++);
    ckpt.add(p + "self_attn.q_proj.weight", {heads * head_dim, hidden}, dtype, seed++);
    ckpt.add(p + "self_attn.k_proj.weight", {kv_heads * head_dim, hidden}, dtype, seed++);
    ckpt.add(p + "self_attn.v_proj.weight", {kv_heads * head_dim, hidden}, dtype, seed++);
    ckpt.add(p + "self_attn.o_proj.weight", {hidden, heads * head_dim}, dtype, seed++);
    ckpt.add(p + "post_attention_layernorm.weight", {hidden}, dtype, seed++);
    ckpt.add(p + "mlp.gate_proj.weight", {ffn, hidden}, dtype, seed++);
    ckpt.add(p + "mlp.up_proj.weight", {ffn, hidden}, dtype, seed++);
    ckpt.add(p + "mlp.down_proj.weight", {hidden, ffn}, dtype, seed++);
  }
  return ckpt;
}

HfCheckpoint tiny_falcon_checkpoint(DType dtype) {
  HfCheckpoint ckpt;
  const int hidden = 24, heads = 3, head_dim = 8, ffn = 40, layers = 2, vocab = 31;
  ckpt.config = {{"architectures", {"FalconForCausalLM"}},
                 {"model_type", "falcon"},
                 {"hidden_size", hidden},
                 {"num_hidden_layers", layers},
                 {"num_attention_heads", heads},
                 {"num_kv_heads", 1},
                 {"multi_query", true},
                 {"parallel_attn", true},
                 {"new_decoder_architecture", false},
                 {"alibi", false},
                 {"bias", false},
                 {"ffn_hidden_size", ffn},
                 {"vocab_size", vocab},
                 {"activation", "gelu"},
                 {"layer_norm_epsilon", 1e-5},
                 {"max_position_embeddings", 64},
                 {"tie_word_embeddings", false},
                 {"bos_token_id", 11},
                 {"eos_token_id", 11},
                 {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
  uint64_t seed = 100;
  ckpt.add("transformer.word_embeddings.weight", {vocab, hidden}, dtype, seed++);
  ckpt.add("transformer.ln_f.weight", {hidden}, dtype, seed++);
  ckpt.add("transformer.ln_f.bias", {hidden}, dtype, seed++);
  ckpt.add("lm_head.weight", {vocab, hidden}, dtype, seed++);
  for (int l = 0; l < layers; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    ckpt.add(p + "input_layernorm.weight", {hidden}, dtype, seed++);
    ckpt.add(p + "input_layernorm.bias", {hidden}, dtype, seed++);
    ckpt.add(p + "self_attention.query_key_value.weight", {hidden + 2 * head_dim, hidden}, dtype,
             seed++);
    ckpt.add(p + "self_attention.dense.weight", {hidden, hidden}, dtype, seed++);
    ckpt.add(p + "mlp.dense_h_to_4h.weight", {ffn, hidden}, dtype, seed++);
    ckpt.add(p + "mlp.dense_4h_to_h.weight", {hidden, ffn}, dtype, seed++);
  }
  return ckpt;
}

}  // namespace runahead::testing
