// A fingerprint of a model's config and weights, compared when a worker joins a cluster: all
// workers of one coordinator must run the same model.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "model/file_digest.h"
#include "model/host_model.h"

namespace runahead {

// Three kinds of hash name a model:
//  - a checkpoint on disk (what workers and `--model PATH` use): checkpoint_hash(), 64 hex
//    digits of SHA-256 over every byte of every file the loader reads (model/file_digest.h);
//  - a generated model ("random:PRESET"): generated_model_hash(), 16 hex digits over its config
//    and recipe, since its values follow from them;
//  - a model built in memory (tests): model_hash(), 64 hex digits of SHA-256 over its config and
//    every byte of every tensor.

// Covers every config field the forward pass uses and every tensor's name, type, shape and
// bytes.
std::string model_hash(const HostModel& model);
// For a model whose every value follows from its config and a recipe (random presets): covers
// the config as above and `recipe`, which names everything else that fixes the values (seed,
// generator version, scales). Identical wherever the model is generated, host or device.
std::string generated_model_hash(const ModelConfig& config, const std::string& recipe);

// A file load_model() reads, with the role it plays: its name in a checkpoint directory
// ("config.json", "model.safetensors", a shard's name) or "gguf" for a GGUF file, so that the
// hash does not depend on where the checkpoint lies or what its GGUF file is called.
struct ModelFile {
  std::string role;
  std::string path;
};
// Hugging Face directory: config.json, then model.safetensors, or the index and each shard it
// names (sorted). A GGUF file: itself (its metadata holds the config and tokenizer).
[[nodiscard]] Result<std::vector<ModelFile>> model_files(const std::string& path);

// SHA-256 over the manifest "runahead-checkpoint-sha256-v1" + one line per model_files() entry
// (role, size, tree digest). Any changed byte of any tensor, of the config or of a GGUF
// file's metadata changes it. Digests of large files come from their cache records when those
// still match the file (model/file_digest.h).
[[nodiscard]] Result<std::string> checkpoint_hash(const std::string& path,
                                                  const FileDigestOptions& options = {});
// The hash a worker started with `--model path` reports: the recipe hash of "random:PRESET"
// (seed 1, as workers generate it), else checkpoint_hash().
[[nodiscard]] Result<std::string> model_path_hash(const std::string& path,
                                                  const FileDigestOptions& options = {});
// 16 or 64 lowercase hex digits: the shape of every hash above.
bool is_model_hash(const std::string& text);

}  // namespace runahead
