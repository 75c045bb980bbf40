#include "tests/golden/golden_reference.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

namespace runahead::testing {
namespace {

namespace fs = std::filesystem;

template <typename T>
Result<std::vector<T>> list_of(const nlohmann::json& summary, const char* key,
                               const std::string& file) {
  const auto it = summary.find(key);
  if (it == summary.end() || !it->is_array()) {
    return make_error(ErrorCode::kCorruptData, file + ": " + key + " is missing or not a list");
  }
  std::vector<T> values;
  for (const auto& value : *it) {
    if (!value.is_number_integer()) {
      return make_error(ErrorCode::kCorruptData, file + ": " + key + " holds " + value.dump());
    }
    values.push_back(value.get<T>());
  }
  return values;
}

}  // namespace

std::string golden_root() {
  if (const char* data = std::getenv("RUNAHEAD_TEST_DATA"); data != nullptr) {
    const fs::path candidate = fs::path(data) / "golden";
    if (fs::is_directory(candidate)) return candidate.string();
  }
  return RUNAHEAD_GOLDEN_DIR;
}

std::vector<std::string> golden_folders() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(golden_root(), error)) {
    if (entry.is_directory() && fs::exists(entry.path() / "golden.json")) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::span<const float> GoldenReference::logits_row(size_t i) const {
  const auto* data = static_cast<const float*>(logits.data);
  return {data + static_cast<int64_t>(i) * logits.cols, static_cast<size_t>(logits.cols)};
}

Result<HostTensor> GoldenReference::kv(int layer, const std::string& part) const {
  const std::string name = "layers." + std::to_string(layer) + "." + part;
  RUNAHEAD_ASSIGN_OR_RETURN(HostTensor tensor, file->host_tensor(name));
  if (tensor.dtype != DType::kF32 || tensor.rows != static_cast<int64_t>(kv_positions.size())) {
    return make_error(ErrorCode::kCorruptData, path + ".safetensors: " + name + " is not f32 [" +
                                                   std::to_string(kv_positions.size()) + ", *]");
  }
  return tensor;
}

Result<GoldenReference> load_golden_reference(const std::string& folder, const std::string& stem,
                                              int vocab) {
  GoldenReference ref;
  ref.path = folder + "/" + stem;
  const std::string json_path = ref.path + ".json";
  std::ifstream in(json_path);
  if (!in) return make_error(ErrorCode::kNotFound, json_path + " cannot be read");
  ref.summary = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!ref.summary.is_object()) {
    return make_error(ErrorCode::kCorruptData, json_path + " is not a JSON object");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(ref.prompt, list_of<int32_t>(ref.summary, "prompt", json_path));
  RUNAHEAD_ASSIGN_OR_RETURN(ref.kv_positions,
                            list_of<int64_t>(ref.summary, "kv_positions", json_path));
  RUNAHEAD_ASSIGN_OR_RETURN(ref.continuation,
                            list_of<int32_t>(ref.summary, "continuation", json_path));
  if (ref.summary.contains("logit_positions")) {
    RUNAHEAD_ASSIGN_OR_RETURN(ref.logit_positions,
                              list_of<int64_t>(ref.summary, "logit_positions", json_path));
  } else {
    for (size_t t = 0; t < ref.prompt.size(); ++t) {
      ref.logit_positions.push_back(static_cast<int64_t>(t));
    }
  }
  const auto first = ref.summary.find("first_token");
  if (first == ref.summary.end() || !first->is_number_integer()) {
    return make_error(ErrorCode::kCorruptData, json_path + ": first_token is missing");
  }
  ref.first_token = first->get<int32_t>();
  const auto prompt_size = static_cast<int64_t>(ref.prompt.size());
  for (const auto& positions : {ref.logit_positions, ref.kv_positions}) {
    for (const int64_t p : positions) {
      if (p < 0 || p >= prompt_size) {
        return make_error(ErrorCode::kCorruptData,
                          json_path + ": position " + std::to_string(p) + " is outside the prompt");
      }
    }
  }
  RUNAHEAD_ASSIGN_OR_RETURN(ref.file, SafetensorsFile::open(ref.path + ".safetensors"));
  RUNAHEAD_ASSIGN_OR_RETURN(ref.logits, ref.file->host_tensor("logits"));
  if (ref.logits.dtype != DType::kF32 ||
      ref.logits.rows != static_cast<int64_t>(ref.logit_positions.size()) ||
      ref.logits.cols != vocab) {
    return make_error(ErrorCode::kCorruptData, ref.path + ".safetensors: logits are not f32 [" +
                                                   std::to_string(ref.logit_positions.size()) +
                                                   ", " + std::to_string(vocab) + "]");
  }
  return ref;
}

double row_relative_error(std::span<const float> got, std::span<const float> want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0.0;
  double scale = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(double{got[i]} - double{want[i]}));
    scale = std::max(scale, std::abs(double{want[i]}));
  }
  return diff / std::max(scale, 1e-30);
}

}  // namespace runahead::testing
