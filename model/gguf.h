// GGUF files (llama.cpp's container): metadata key/values, the tensor table, and
// dequantization of the block formats a loader needs, read in place from a mapped file.
//
// Everything in the file is untrusted: counts, string lengths, dimensions and offsets are
// checked against the file size before anything is allocated or read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"

namespace runahead {

// The ggml element types, by their ids in the file.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct GgmlTypeTraits {
  std::string_view name;
  int64_t block_elements = 0;  // elements per block
  int64_t block_bytes = 0;     // bytes per block
  bool dequantizable = false;  // dequantize() supports it
};

// The traits of a type id, or nullopt for an id this build does not know.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
std::string ggml_type_name(GgmlType type);

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);

// One metadata value. Integers of every width are held as int64 (uint64 values above INT64_MAX
// as uint64), floats as double; arrays hold their elements and remember the element type.
class GgufValue {
 public:
  using Array = std::vector<GgufValue>;
  using Storage = std::variant<int64_t, uint64_t, double, bool, std::string, Array>;

  GgufValue() = default;
  GgufValue(GgufValueType type, Storage value, GgufValueType element_type = GgufValueType::kUint8)
      : type_(type), element_type_(element_type), value_(std::move(value)) {}

  GgufValueType type() const { return type_; }
  GgufValueType element_type() const { return element_type_; }  // arrays only

  std::optional<int64_t> as_int() const;   // integer types whose value fits int64
  std::optional<double> as_float() const;  // float and integer types
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const Array* as_array() const;

 private:
  GgufValueType type_ = GgufValueType::kUint8;
  GgufValueType element_type_ = GgufValueType::kUint8;
  Storage value_ = int64_t{0};
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // fastest-varying first: dims[0] is the row length
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  int64_t elements = 0;
  size_t bytes = 0;
  const uint8_t* data = nullptr;  // inside the mapping, checked to lie within the file
};

class GgufFile {
 public:
  // Maps and parses `path`; errors name the file and the key or tensor at fault.
  [[nodiscard]] static Result<std::shared_ptr<const GgufFile>> open(const std::string& path);
  // Parses an already mapped file.
  [[nodiscard]] static Result<std::shared_ptr<const GgufFile>> parse(
      std::shared_ptr<const MappedFile> file);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::shared_ptr<const MappedFile>& mapping() const { return file_; }

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;

  // Typed metadata lookups: an error naming the key when it is absent or of another type.
  [[nodiscard]] Result<int64_t> get_int(const std::string& key) const;
  [[nodiscard]] Result<double> get_float(const std::string& key) const;
  [[nodiscard]] Result<std::string> get_string(const std::string& key) const;
  [[nodiscard]] Result<std::vector<std::string>> get_string_array(const std::string& key) const;
  [[nodiscard]] Result<std::vector<int64_t>> get_int_array(const std::string& key) const;
  [[nodiscard]] Result<std::vector<double>> get_float_array(const std::string& key) const;
  // Absent keys give `fallback`; present keys of the wrong type are still errors.
  [[nodiscard]] Result<int64_t> get_int_or(const std::string& key, int64_t fallback) const;
  [[nodiscard]] Result<double> get_float_or(const std::string& key, double fallback) const;
  [[nodiscard]] Result<bool> get_bool_or(const std::string& key, bool fallback) const;

 private:
  explicit GgufFile(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {}
  Status parse_all();

  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Dequantizes `count` elements of `type` from `src` (`src_bytes` long) into `dst`.
// Errors: a type without a dequantizer, a count that is not whole blocks, too few bytes.
[[nodiscard]] Status dequantize(GgmlType type, const uint8_t* src, size_t src_bytes, int64_t count,
                                float* dst);

// Dequantizes a whole tensor; errors name the tensor, its type and the file.
[[nodiscard]] Result<std::vector<float>> dequantize_tensor(const GgufFile& file,
                                                           const GgufTensorInfo& tensor);

}  // namespace runahead
