// The hash of a checkpoint (model/model_hash.h): every byte of every file the loader reads, the
// same wherever the checkpoint lies, and the hash a worker of `--model PATH` reports.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model_hash.h"
#include "model/random_model.h"
#include "tests/checkpoint/checkpoint_files.h"
#include "tests/support/hf_export.h"
#include "tests/support/temp_dir.h"

namespace runahead {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// mini-llama with random weights as a checkpoint directory: its LM head (512 x 256 floats,
// 512 KiB) is large enough that a byte far from its start, middle and end is one a sampling
// hash never read.
void write_mini_llama(const std::string& dir) {
  auto config = preset_config("mini-llama");
  ASSERT_TRUE(config);
  const HostModel host = random_host_model(*config, 1, 0.05f);
  ASSERT_FALSE(host.config.tied_embeddings);
  fs::create_directories(dir);
  const Status written = testing::write_hf_checkpoint(host, dir);
  ASSERT_TRUE(written.is_ok()) << written.to_string();
}

// Where a tensor's bytes start in a safetensors file.
size_t tensor_offset(const std::string& file, const std::string& tensor) {
  std::ifstream in(file, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  const auto json = nlohmann::json::parse(header);
  return 8 + header_size + json.at(tensor).at("data_offsets").at(0).get<size_t>();
}

void flip_byte(const std::string& file, size_t offset) {
  std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
  io.seekg(static_cast<std::streamoff>(offset));
  const int value = io.get();
  io.seekp(static_cast<std::streamoff>(offset));
  io.put(static_cast<char>(value ^ 0x01));
}

std::string hash_of(const std::string& path) {
  FileDigestOptions options;
  options.use_cache = false;
  auto hash = checkpoint_hash(path, options);
  EXPECT_TRUE(hash) << hash.error().to_string();
  return hash ? *hash : std::string();
}

TEST(CheckpointHashTest, OneByteOfTheLmHeadChangesIt) {
  TempDir dir;
  write_mini_llama(dir.file("original"));
  fs::copy(dir.file("original"), dir.file("edited"));
  const std::string weights = dir.file("edited") + "/model.safetensors";
  // A byte 100 KiB into the LM head: past the first 4 KiB, far before the middle.
  flip_byte(weights, tensor_offset(weights, "lm_head.weight") + 100 * 1024 + 3);

  const std::string original = hash_of(dir.file("original"));
  ASSERT_TRUE(is_model_hash(original)) << original;
  EXPECT_EQ(original.size(), 64u);
  EXPECT_NE(hash_of(dir.file("edited")), original);
  // The hash of the models as loaded sees it too.
  auto a = load_model(dir.file("original"));
  auto b = load_model(dir.file("edited"));
  ASSERT_TRUE(a && b);
  EXPECT_NE(model_hash(*a), model_hash(*b));
}

TEST(CheckpointHashTest, TheLastByteAndTheConfigCount) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kF32).write(dir.path());
  const std::string reference = hash_of(dir.path());
  const std::string weights = dir.file("model.safetensors");
  flip_byte(weights, fs::file_size(weights) - 1);
  const std::string last_byte = hash_of(dir.path());
  EXPECT_NE(last_byte, reference);
  // A config that parses the same but differs in one byte is another checkpoint.
  std::ofstream(dir.file("config.json"), std::ios::app) << "\n";
  EXPECT_NE(hash_of(dir.path()), last_byte);
}

TEST(CheckpointHashTest, SameFilesElsewhereSameHash) {
  TempDir dir;
  fs::create_directories(dir.file("a"));
  testing::tiny_llama_checkpoint(DType::kBF16).write(dir.file("a"));
  fs::copy(dir.file("a"), dir.file("b"));
  EXPECT_EQ(hash_of(dir.file("a")), hash_of(dir.file("b")));
  // A GGUF file is hashed whole under its role, whatever it is called.
  std::ofstream(dir.file("one.gguf"), std::ios::binary) << "GGUF and the rest of a file";
  fs::copy_file(dir.file("one.gguf"), dir.file("renamed.gguf"));
  EXPECT_EQ(hash_of(dir.file("one.gguf")), hash_of(dir.file("renamed.gguf")));
  EXPECT_NE(hash_of(dir.file("one.gguf")), hash_of(dir.file("a")));
}

TEST(CheckpointHashTest, ShardsAreListedAndEachCounts) {
  TempDir dir;
  testing::tiny_llama_checkpoint(DType::kF32).write(dir.path(), 3);
  auto files = model_files(dir.path());
  ASSERT_TRUE(files) << files.error().to_string();
  ASSERT_EQ(files->size(), 5u);  // config, index, three shards
  EXPECT_EQ((*files)[0].role, "config.json");
  EXPECT_EQ((*files)[1].role, "model.safetensors.index.json");
  const std::string reference = hash_of(dir.path());
  for (size_t i = 2; i < files->size(); ++i) {
    flip_byte((*files)[i].path, fs::file_size((*files)[i].path) - 1);
    const std::string changed = hash_of(dir.path());
    EXPECT_NE(changed, reference) << (*files)[i].role;
    flip_byte((*files)[i].path, fs::file_size((*files)[i].path) - 1);
    EXPECT_EQ(hash_of(dir.path()), reference);
  }
}

TEST(CheckpointHashTest, RandomModelsKeepTheirRecipeHash) {
  auto config = preset_config("tiny-llama");
  ASSERT_TRUE(config);
  auto hash = model_path_hash("random:tiny-llama");
  ASSERT_TRUE(hash) << hash.error().to_string();
  EXPECT_EQ(*hash, random_model_hash(*config, 1));
  EXPECT_TRUE(is_model_hash(*hash));
  EXPECT_FALSE(model_path_hash("random:no-such-preset"));
}

TEST(CheckpointHashTest, ErrorsNameThePath) {
  auto missing = model_path_hash("/nonexistent/model");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/model"), std::string::npos);
  TempDir dir;
  std::ofstream(dir.file("config.json")) << "{}";  // no weights beside it
  auto no_weights = checkpoint_hash(dir.path());
  ASSERT_FALSE(no_weights);
  EXPECT_NE(no_weights.error().message.find("model.safetensors"), std::string::npos)
      << no_weights.error().message;
}

TEST(CheckpointHashTest, ModelHashShape) {
  EXPECT_TRUE(is_model_hash("0123456789abcdef"));
  EXPECT_TRUE(is_model_hash(std::string(64, 'a')));
  EXPECT_FALSE(is_model_hash("0123456789ABCDEF"));
  EXPECT_FALSE(is_model_hash("/models/llama"));
  EXPECT_FALSE(is_model_hash(""));
  EXPECT_FALSE(is_model_hash(std::string(63, 'a')));
}

}  // namespace
}  // namespace runahead
