// Small Hugging Face checkpoints and safetensors files written by tests into a temporary folder.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "tests/support/temp_dir.h"

namespace runahead::testing {

void write_text(const std::string& path, const std::string& text);
void write_json(const std::string& path, const nlohmann::json& json);
// The whole file as text (empty when it cannot be read).
std::string read_text(const std::string& path);
// A safetensors file with a header of our choosing: 8-byte length, `header`, then `data`.
void write_raw_safetensors(const std::string& path, const std::string& header,
                           const std::vector<uint8_t>& data);
// Cuts `path` down to `size` bytes.
void truncate_file(const std::string& path, size_t size);

struct StoredTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // as stored in the file
};

// A checkpoint directory in the making: config.json and tensors under Hugging Face names.
struct HfCheckpoint {
  nlohmann::json config;
  std::map<std::string, StoredTensor> tensors;

  // Random values rounded to `dtype`.
  void add(const std::string& name, std::vector<int64_t> shape, DType dtype, uint64_t seed);
  // Writes config.json and model.safetensors, or `shards` shard files and the index.
  void write(const std::string& dir, int shards = 1) const;
};

// Llama: hidden 20, 4 heads of head_dim 6 (given in the config), 2 KV heads, ffn 28, 2 layers,
// vocab 37; lm_head included unless `tied`.
HfCheckpoint tiny_llama_checkpoint(DType dtype, bool tied = false);
// Falcon-7B layout: hidden 24, 3 heads of 8, multi-query, parallel block, ffn 40, 2 layers,
// vocab 31, separate lm_head.
HfCheckpoint tiny_falcon_checkpoint(DType dtype);

}  // namespace runahead::testing
