#include "model/model_hash.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/random_model.h"

namespace runahead {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCheckpointHashTag = "runahead-checkpoint-sha256-v1";

class Fnv1a {
 public:
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < size; ++i) {
      state_ ^= p[i];
      state_ *= 0x100000001b3ull;
    }
  }
  template <typename T>
  void value(const T& v) {
    bytes(&v, sizeof v);
  }
  void text(const std::string& s) {
    value(s.size());
    bytes(s.data(), s.size());
  }
  uint64_t digest() const { return state_; }

 private:
  uint64_t state_ = 0xcbf29ce484222325ull;
};

// The bytes of every value, for SHA-256 (the same calls as Fnv1a).
class ByteStream {
 public:
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + size);
  }
  template <typename T>
  void value(const T& v) {
    bytes(&v, sizeof v);
  }
  void text(const std::string& s) {
    value(s.size());
    bytes(s.data(), s.size());
  }
  std::string sha256() const { return sha256_hex(out_); }

 private:
  std::vector<uint8_t> out_;
};

template <typename Hasher>
void hash_config(Hasher& h, const ModelConfig& c) {
  h.value(c.architecture);
  for (int v : {c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_hidden,
                c.vocab_size, c.rotary_dim}) {
    h.value(v);
  }
  h.value(c.norm_eps);
  h.value(c.norm);
  h.value(c.activation);
  h.value(c.parallel_block);
  h.value(c.tied_embeddings);
  h.value(c.rope_theta);
  h.value(c.rope_style);
  h.value(c.rope_scaling.type);
  h.value(c.rope_scaling.factor);
  // Only when set, so that the hashes of models without a window (and the profiles that name
  // them) stay as they were.
  if (c.sliding_window > 0) h.value(c.sliding_window);
}

std::string hex_digest(const Fnv1a& h) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.digest()));
  return hex;
}

}  // namespace

std::string model_hash(const HostModel& model) {
  ByteStream h;
  h.text("runahead-host-model-sha256-v1");
  hash_config(h, model.config);
  for (const auto& [name, tensor] : model.tensors) {  // std::map: sorted, so order-independent
    h.text(name);
    h.value(tensor.dtype);
    h.value(tensor.rows);
    h.value(tensor.cols);
    h.text(tree_sha256_hex({static_cast<const uint8_t*>(tensor.data), tensor.bytes()}));
  }
  return h.sha256();
}

std::string generated_model_hash(const ModelConfig& config, const std::string& recipe) {
  Fnv1a h;
  hash_config(h, config);
  h.text("generated");
  h.text(recipe);
  return hex_digest(h);
}

namespace {

Result<nlohmann::json> read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, path.string() + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (!json.is_object()) {
    return make_error(ErrorCode::kCorruptData, path.string() + ": not a JSON object");
  }
  return json;
}

Result<std::vector<ModelFile>> checkpoint_directory_files(const fs::path& dir) {
  std::vector<ModelFile> files;
  std::error_code error;
  const fs::path config = dir / "config.json";
  if (!fs::exists(config, error)) {
    return make_error(ErrorCode::kNotFound,
                      config.string() + " is missing: not a Hugging Face checkpoint directory");
  }
  files.push_back({"config.json", config.string()});
  const fs::path index = dir / "model.safetensors.index.json";
  if (!fs::exists(index, error)) {
    files.push_back({"model.safetensors", (dir / "model.safetensors").string()});
    return files;
  }
  files.push_back({"model.safetensors.index.json", index.string()});
  RUNAHEAD_ASSIGN_OR_RETURN(nlohmann::json json, read_json(index));
  const auto map = json.find("weight_map");
  if (map == json.end() || !map->is_object()) {
    return make_error(ErrorCode::kCorruptData,
                      index.string() + ": weight_map is missing or not an object");
  }
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : map->items()) {
    const std::string name = shard.is_string() ? shard.get<std::string>() : std::string();
    // As the loader: shards are plain file names beside the index.
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return make_error(ErrorCode::kCorruptData,
                        index.string() + ": tensor " + tensor + " names no plain shard file name");
    }
    shards.insert(name);
  }
  for (const std::string& shard : shards) files.push_back({shard, (dir / shard).string()});
  return files;
}

}  // namespace

Result<std::vector<ModelFile>> model_files(const std::string& path) {
  std::error_code error;
  const auto status = fs::status(path, error);
  if (error || !fs::exists(status)) {
    return make_error(ErrorCode::kNotFound, path + ": no such file or directory");
  }
  if (fs::is_directory(status)) return checkpoint_directory_files(path);
  return std::vector<ModelFile>{{"gguf", path}};
}

Result<std::string> checkpoint_hash(const std::string& path, const FileDigestOptions& options) {
  RUNAHEAD_ASSIGN_OR_RETURN(std::vector<ModelFile> files, model_files(path));
  // The manifest: one line per file, role, size and tree digest, in the order listed.
  std::string manifest = std::string(kCheckpointHashTag) + "\n";
  for (const ModelFile& file : files) {
    auto digest = file_tree_sha256(file.path, options);
    if (!digest) {
      return make_error(digest.error().code, "model " + path + ": cannot hash " + file.path + ": " +
                                                 digest.error().message);
    }
    manifest += file.role + "\t" + std::to_string(digest->size) + "\t" + digest->hex + "\n";
  }
  return sha256_hex(manifest);
}

Result<std::string> model_path_hash(const std::string& path, const FileDigestOptions& options) {
  if (is_random_model_path(path)) {
    RUNAHEAD_ASSIGN_OR_RETURN(ModelConfig config, preset_config(path.substr(7)));
    return random_model_hash(config, 1);
  }
  return checkpoint_hash(path, options);
}

bool is_model_hash(const std::string& text) {
  if (text.size() != 16 && text.size() != 64) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace runahead
