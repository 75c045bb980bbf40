// One reference that tools/golden/make_golden.py wrote into a golden folder: <stem>.json (the
// prompt, positions, greedy continuation) and <stem>.safetensors (logits rows, K/V rows).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/safetensors.h"

namespace runahead::testing {

// tests/data/golden: from RUNAHEAD_TEST_DATA when it holds golden/, else from the source tree.
std::string golden_root();

// The folders under golden_root() that hold a golden.json, sorted by name.
std::vector<std::string> golden_folders();

struct GoldenReference {
  std::string path;  // folder/stem, for messages
  nlohmann::json summary;
  std::vector<int32_t> prompt;
  std::vector<int64_t> logit_positions;  // prompt position of each row of `logits`
  std::vector<int64_t> kv_positions;     // prompt position of each row of layers.L.keys/values
  int32_t first_token = -1;
  std::vector<int32_t> continuation;  // the greedy tokens, the first token included
  std::shared_ptr<const SafetensorsFile> file;
  HostTensor logits;  // [logit_positions, vocab], f32

  std::span<const float> logits_row(size_t i) const;
  // layers.<layer>.keys or .values ([kv_positions, kv_dim], f32).
  [[nodiscard]] Result<HostTensor> kv(int layer, const std::string& part) const;
};

// Reads folder/<stem>.json and folder/<stem>.safetensors ("golden" or "long"); a reference
// without logit_positions has a logits row for every prompt position. Errors name the file.
[[nodiscard]] Result<GoldenReference> load_golden_reference(const std::string& folder,
                                                            const std::string& stem, int vocab);

// The error of one row against its reference: max|got - want| / max|want|, so that every row
// is held to its own scale (a whole-tensor norm would let one bad row hide among good ones).
double row_relative_error(std::span<const float> got, std::span<const float> want);

}  // namespace runahead::testing
