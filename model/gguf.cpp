#include "model/gguf.h"

#include <array>
#include <cstring>
#include <limits>

#include "core/dtype.h"

namespace runahead {
namespace {

constexpr uint32_t kMaxDims = 4;     // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 4;  // arrays of arrays are legal; deeper is abuse
constexpr uint64_t kMaxAlignment = 1 << 20;

struct TypeRow {
  uint32_t id;
  GgmlTypeTraits traits;
};

// Block sizes as ggml defines them (gguf-py's GGML_QUANT_SIZES).
constexpr std::array<TypeRow, 32> kTypes = {{
    {0, {"F32", 1, 4, true}},          {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 18, true}},       {3, {"Q4_1", 32, 20, true}},
    {6, {"Q5_0", 32, 22, false}},      {7, {"Q5_1", 32, 24, false}},
    {8, {"Q8_0", 32, 34, true}},       {9, {"Q8_1", 32, 40, false}},
    {10, {"Q2_K", 256, 84, false}},    {11, {"Q3_K", 256, 110, false}},
    {12, {"Q4_K", 256, 144, false}},   {13, {"Q5_K", 256, 176, false}},
    {14, {"Q6_K", 256, 210, false}},   {15, {"Q8_K", 256, 292, false}},
    {16, {"IQ2_XXS", 256, 66, false}}, {17, {"IQ2_XS", 256, 74, false}},
    {18, {"IQ3_XXS", 256, 98, false}}, {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},   {21, {"IQ3_S", 256, 110, false}},
    {22, {"IQ2_S", 256, 82, false}},   {23, {"IQ4_XS", 256, 136, false}},
    {24, {"I8", 1, 1, false}},         {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},        {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},        {29, {"IQ1_M", 256, 56, false}},
    {30, {"BF16", 1, 2, true}},        {34, {"TQ1_0", 256, 54, false}},
    {35, {"TQ2_0", 256, 66, false}},   {39, {"MXFP4", 32, 17, false}},
}};

// A bounds-checked cursor over the file; every read names what it was reading when it fails.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t position() const { return position_; }
  size_t remaining() const { return size_ - position_; }

  template <typename T>
  Result<T> read(const std::string& what) {
    if (remaining() < sizeof(T)) return truncated(what);
    T value;
    std::memcpy(&value, data_ + position_, sizeof value);
    position_ += sizeof value;
    return value;
  }

  Result<std::string> read_string(const std::string& what) {
    RUNAHEAD_ASSIGN_OR_RETURN(uint64_t length, read<uint64_t>(what + " (length)"));
    if (length > remaining()) {
      return make_error(ErrorCode::kCorruptData, path_ + ": " + what + " claims " +
                                                     std::to_string(length) + " bytes but only " +
                                                     std::to_string(remaining()) + " remain");
    }
    std::string text(reinterpret_cast<const char*>(data_ + position_), length);
    position_ += length;
    return text;
  }

  Error truncated(const std::string& what) const {
    return make_error(ErrorCode::kCorruptData, path_ + ": file ends inside " + what + " (at byte " +
                                                   std::to_string(position_) + ")");
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
  const std::string& path_;
};

// The smallest number of bytes one value of `type` takes, to bound array counts before use.
size_t min_value_bytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:  // its length
      return 8;
    case GgufValueType::kArray:  // element type and count
      return 12;
  }
  return 1;
}

bool known_value_type(uint32_t id) {
  return id <= static_cast<uint32_t>(GgufValueType::kFloat64);
}

Result<GgufValue> read_value(Reader& reader, GgufValueType type, const std::string& what,
                             int depth) {
  switch (type) {
    case GgufValueType::kUint8: {
      RUNAHEAD_ASSIGN_OR_RETURN(uint8_t v, reader.read<uint8_t>(what));
      return GgufValue(type, int64_t{v});
    }
    case GgufValueType::kInt8: {
      RUNAHEAD_ASSIGN_OR_RETURN(int8_t v, reader.read<int8_t>(what));
      return GgufValue(type, int64_t{v});
    }
    case GgufValueType::kUint16: {
      RUNAHEAD_ASSIGN_OR_RETURN(uint16_t v, reader.read<uint16_t>(what));
      return GgufValue(type, int64_t{v});
    }
    case GgufValueType::kInt16: {
      RUNAHEAD_ASSIGN_OR_RETURN(int16_t v, reader.read<int16_t>(what));
      return GgufValue(type, int64_t{v});
    }
    case GgufValueType::kUint32: {
      RUNAHEAD_ASSIGN_OR_RETURN(uint32_t v, reader.read<uint32_t>(what));
      return GgufValue(type, int64_t{v});
    }
    case GgufValueType::kInt32: {
      RUNAHEAD_ASSIGN_OR_RETURN(int32_t v, reader.read<int32_t>(what));
      return GgufValue(type, int64_t{v});
    }
    case GgufValueType::kUint64: {
      RUNAHEAD_ASSIGN_OR_RETURN(uint64_t v, reader.read<uint64_t>(what));
      if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return GgufValue(type, static_cast<int64_t>(v));
      }
      return GgufValue(type, v);
    }
    case GgufValueType::kInt64: {
      RUNAHEAD_ASSIGN_OR_RETURN(int64_t v, reader.read<int64_t>(what));
      return GgufValue(type, v);
    }
    case GgufValueType::kFloat32: {
      RUNAHEAD_ASSIGN_OR_RETURN(float v, reader.read<float>(what));
      return GgufValue(type, double{v});
    }
    case GgufValueType::kFloat64: {
      RUNAHEAD_ASSIGN_OR_RETURN(double v, reader.read<double>(what));
      return GgufValue(type, v);
    }
    case GgufValueType::kBool: {
      RUNAHEAD_ASSIGN_OR_RETURN(uint8_t v, reader.read<uint8_t>(what));
      return GgufValue(type, v != 0);
    }
    case GgufValueType::kString: {
      RUNAHEAD_ASSIGN_OR_RETURN(std::string v, reader.read_string(what));
      return GgufValue(type, std::move(v));
    }
    case GgufValueType::kArray: {
      if (depth >= kMaxArrayNesting) {
        return make_error(ErrorCode::kCorruptData,
                          what + ": arrays nested deeper than " + std::to_string(kMaxArrayNesting));
      }
      RUNAHEAD_ASSIGN_OR_RETURN(uint32_t element_id, reader.read<uint32_t>(what + " (type)"));
      if (!known_value_type(element_id)) {
        return make_error(ErrorCode::kCorruptData,
                          what + ": unknown array element type " + std::to_string(element_id));
      }
      const auto element_type = static_cast<GgufValueType>(element_id);
      RUNAHEAD_ASSIGN_OR_RETURN(uint64_t count, reader.read<uint64_t>(what + " (count)"));
      if (count > reader.remaining() / min_value_bytes(element_type)) {
        return make_error(ErrorCode::kCorruptData, what + ": array of " + std::to_string(count) +
                                                       " elements does not fit in the " +
                                                       std::to_string(reader.remaining()) +
                                                       " bytes left");
      }
      GgufValue::Array elements;
      elements.reserve(static_cast<size_t>(count));
      for (uint64_t i = 0; i < count; ++i) {
        RUNAHEAD_ASSIGN_OR_RETURN(
            GgufValue element,
            read_value(reader, element_type, what + "[" + std::to_string(i) + "]", depth + 1));
        elements.push_back(std::move(element));
      }
      return GgufValue(type, std::move(elements), element_type);
    }
  }
  return make_error(ErrorCode::kCorruptData, what + ": unknown value type");
}

Error type_error(const std::string& path, const std::string& key, const GgufValue& value,
                 const char* wanted) {
  return make_error(ErrorCode::kCorruptData, path + ": metadata key " + key + " is " +
                                                 std::string(gguf_value_type_name(value.type())) +
                                                 ", expected " + wanted);
}

bool is_integer_type(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64:
    case GgufValueType::kBool:
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return false;
  }
  return false;
}

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id) {
  for (const TypeRow& row : kTypes) {
    if (row.id == type_id) return row.traits;
  }
  return std::nullopt;
}

std::string ggml_type_name(GgmlType type) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  return traits ? std::string(traits->name) : "type " + std::to_string(static_cast<uint32_t>(type));
}

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

std::optional<int64_t> GgufValue::as_int() const {
  if (!is_integer_type(type_)) return std::nullopt;
  if (const auto* v = std::get_if<int64_t>(&value_)) return *v;
  return std::nullopt;  // a uint64 above INT64_MAX
}

std::optional<double> GgufValue::as_float() const {
  if (const auto* v = std::get_if<double>(&value_)) return *v;
  if (const auto* v = std::get_if<int64_t>(&value_); v && is_integer_type(type_)) {
    return static_cast<double>(*v);
  }
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (const auto* v = std::get_if<bool>(&value_)) return *v;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const {
  return std::get_if<std::string>(&value_);
}

const GgufValue::Array* GgufValue::as_array() const {
  return std::get_if<Array>(&value_);
}

Result<std::shared_ptr<const GgufFile>> GgufFile::open(const std::string& path) {
  RUNAHEAD_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::open(path));
  return parse(std::move(mapping));
}

Result<std::shared_ptr<const GgufFile>> GgufFile::parse(std::shared_ptr<const MappedFile> file) {
  std::shared_ptr<GgufFile> gguf(new GgufFile(std::move(file)));
  RUNAHEAD_RETURN_IF_ERROR(gguf->parse_all());
  return std::shared_ptr<const GgufFile>(std::move(gguf));
}

Status GgufFile::parse_all() {
  const std::string& file_path = file_->path();
  Reader reader(file_->data(), file_->size(), file_path);
  RUNAHEAD_ASSIGN_OR_RETURN(uint32_t magic, reader.read<uint32_t>("the magic"));
  if (std::memcmp(&magic, "GGUF", 4) != 0) {
    return make_error(ErrorCode::kCorruptData, file_path + ": not a GGUF file (wrong magic)");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(version_, reader.read<uint32_t>("the version"));
  if (version_ != 2 && version_ != 3) {
    return make_error(ErrorCode::kUnsupported, file_path + ": GGUF version " +
                                                   std::to_string(version_) +
                                                   " is not supported (2 and 3 are)");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(uint64_t tensor_count, reader.read<uint64_t>("the tensor count"));
  RUNAHEAD_ASSIGN_OR_RETURN(uint64_t kv_count, reader.read<uint64_t>("the metadata count"));
  // A key/value takes at least a key length, a type and one byte; a tensor info at least a
  // name length, a dimension count, one dimension, a type and an offset.
  if (kv_count > reader.remaining() / 13 || tensor_count > reader.remaining() / 32) {
    return make_error(ErrorCode::kCorruptData,
                      file_path + ": header claims " + std::to_string(kv_count) +
                          " metadata keys and " + std::to_string(tensor_count) +
                          " tensors, more than the file can hold");
  }

  for (uint64_t i = 0; i < kv_count; ++i) {
    RUNAHEAD_ASSIGN_OR_RETURN(std::string key,
                              reader.read_string("metadata key #" + std::to_string(i)));
    RUNAHEAD_ASSIGN_OR_RETURN(uint32_t type_id,
                              reader.read<uint32_t>("the type of metadata key " + key));
    if (!known_value_type(type_id)) {
      return make_error(ErrorCode::kCorruptData, file_path + ": metadata key " + key +
                                                     " has unknown value type " +
                                                     std::to_string(type_id));
    }
    auto value = read_value(reader, static_cast<GgufValueType>(type_id), "metadata key " + key, 0);
    if (!value) {
      return make_error(value.error().code, file_path + ": " + value.error().message);
    }
    if (!metadata_.emplace(key, std::move(value).value()).second) {
      return make_error(ErrorCode::kCorruptData,
                        file_path + ": metadata key " + key + " appears twice");
    }
  }

  if (const GgufValue* align = find("general.alignment")) {
    const auto value = align->as_int();
    if (!value || *value <= 0 || static_cast<uint64_t>(*value) > kMaxAlignment ||
        (*value & (*value - 1)) != 0) {
      return make_error(ErrorCode::kCorruptData,
                        file_path +
                            ": metadata key general.alignment must be a power of two "
                            "up to " +
                            std::to_string(kMaxAlignment));
    }
    alignment_ = static_cast<uint64_t>(*value);
  }

  tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    RUNAHEAD_ASSIGN_OR_RETURN(info.name,
                              reader.read_string("the name of tensor #" + std::to_string(i)));
    const std::string what = "tensor " + info.name;
    RUNAHEAD_ASSIGN_OR_RETURN(uint32_t n_dims, reader.read<uint32_t>(what + " (dimensions)"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return make_error(ErrorCode::kCorruptData, file_path + ": " + what + " has " +
                                                     std::to_string(n_dims) +
                                                     " dimensions (1 to 4 allowed)");
    }
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      RUNAHEAD_ASSIGN_OR_RETURN(uint64_t dim, reader.read<uint64_t>(what + " (shape)"));
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          static_cast<int64_t>(dim) > std::numeric_limits<int64_t>::max() / elements) {
        return make_error(ErrorCode::kCorruptData,
                          file_path + ": " + what + " has an invalid shape (dimension " +
                              std::to_string(dim) + " is zero or overflows the element count)");
      }
      info.dims.push_back(static_cast<int64_t>(dim));
      elements *= static_cast<int64_t>(dim);
    }
    info.elements = elements;
    RUNAHEAD_ASSIGN_OR_RETURN(uint32_t type_id, reader.read<uint32_t>(what + " (type)"));
    const auto traits = ggml_type_traits(type_id);
    if (!traits) {
      return make_error(
          ErrorCode::kUnsupported,
          file_path + ": " + what + " has unknown ggml type " + std::to_string(type_id));
    }
    info.type = static_cast<GgmlType>(type_id);
    if (info.dims[0] % traits->block_elements != 0) {
      return make_error(ErrorCode::kCorruptData,
                        file_path + ": " + what + " rows of " + std::to_string(info.dims[0]) +
                            " elements are not whole " + std::string(traits->name) + " blocks of " +
                            std::to_string(traits->block_elements));
    }
    const int64_t blocks = elements / traits->block_elements;
    if (blocks > std::numeric_limits<int64_t>::max() / traits->block_bytes) {
      return make_error(ErrorCode::kCorruptData, file_path + ": " + what + " is too large");
    }
    info.bytes = static_cast<size_t>(blocks * traits->block_bytes);
    RUNAHEAD_ASSIGN_OR_RETURN(info.offset, reader.read<uint64_t>(what + " (offset)"));
    if (info.offset % alignment_ != 0) {
      return make_error(ErrorCode::kCorruptData,
                        file_path + ": " + what + " offset " + std::to_string(info.offset) +
                            " is not aligned to " + std::to_string(alignment_));
    }
    if (!tensor_index_.emplace(info.name, tensors_.size()).second) {
      return make_error(ErrorCode::kCorruptData, file_path + ": " + what + " appears twice");
    }
    tensors_.push_back(std::move(info));
  }

  data_offset_ = (reader.position() + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t file_size = file_->size();
  for (GgufTensorInfo& info : tensors_) {
    const uint64_t available = file_size > data_offset_ ? file_size - data_offset_ : 0;
    if (info.offset > available || info.bytes > available - info.offset) {
      return make_error(ErrorCode::kCorruptData,
                        file_path + ": tensor " + info.name + " (" + std::to_string(info.bytes) +
                            " bytes at data offset " + std::to_string(info.offset) +
                            ") extends past the end of the file; the file is truncated");
    }
    info.data = file_->data() + data_offset_ + info.offset;
  }
  return Status::ok();
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Error missing_key(const std::string& path, const std::string& key) {
  return make_error(ErrorCode::kNotFound, path + ": metadata key " + key + " is missing");
}
}  // namespace

Result<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(path(), key);
  if (auto v = value->as_int()) return *v;
  return type_error(path(), key, *value, "an integer");
}

Result<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(path(), key);
  if (auto v = value->as_float()) return *v;
  return type_error(path(), key, *value, "a number");
}

Result<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(path(), key);
  if (const std::string* v = value->as_string()) return *v;
  return type_error(path(), key, *value, "a string");
}

Result<std::vector<std::string>> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(path(), key);
  const GgufValue::Array* array = value->as_array();
  if (array == nullptr || value->element_type() != GgufValueType::kString) {
    return type_error(path(), key, *value, "an array of strings");
  }
  std::vector<std::string> out;
  out.reserve(array->size());
  for (const GgufValue& element : *array) out.push_back(*element.as_string());
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(path(), key);
  const GgufValue::Array* array = value->as_array();
  if (array == nullptr || !is_integer_type(value->element_type())) {
    return type_error(path(), key, *value, "an array of integers");
  }
  std::vector<int64_t> out;
  out.reserve(array->size());
  for (const GgufValue& element : *array) {
    const auto v = element.as_int();
    if (!v) return type_error(path(), key, *value, "an array of integers that fit int64");
    out.push_back(*v);
  }
  return out;
}

Result<std::vector<double>> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(path(), key);
  const GgufValue::Array* array = value->as_array();
  if (array == nullptr || value->element_type() == GgufValueType::kString ||
      value->element_type() == GgufValueType::kArray ||
      value->element_type() == GgufValueType::kBool) {
    return type_error(path(), key, *value, "an array of numbers");
  }
  std::vector<double> out;
  out.reserve(array->size());
  for (const GgufValue& element : *array) out.push_back(element.as_float().value_or(0.0));
  return out;
}

Result<int64_t> GgufFile::get_int_or(const std::string& key, int64_t fallback) const {
  return find(key) == nullptr ? Result<int64_t>(fallback) : get_int(key);
}

Result<double> GgufFile::get_float_or(const std::string& key, double fallback) const {
  return find(key) == nullptr ? Result<double>(fallback) : get_float(key);
}

Result<bool> GgufFile::get_bool_or(const std::string& key, bool fallback) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return fallback;
  if (auto v = value->as_bool()) return *v;
  return type_error(path(), key, *value, "a bool");
}

namespace {

float read_f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return f16_to_f32(bits);
}

// Q8_0: f16 scale d, then 32 int8 values; x = d * q.
void dequantize_q8_0(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  const auto* q = reinterpret_cast<const int8_t*>(block + 2);
  for (int i = 0; i < 32; ++i) out[i] = d * static_cast<float>(q[i]);
}

// Q4_0: f16 scale d, then 16 bytes; low nibbles are elements 0..15, high nibbles 16..31;
// x = d * (nibble - 8).
void dequantize_q4_0(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  const uint8_t* q = block + 2;
  for (int i = 0; i < 16; ++i) {
    out[i] = d * static_cast<float>((q[i] & 0x0f) - 8);
    out[i + 16] = d * static_cast<float>((q[i] >> 4) - 8);
  }
}

// Q4_1: f16 scale d, f16 minimum m, then 16 bytes of nibbles as Q4_0; x = d * nibble + m.
void dequantize_q4_1(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  const float m = read_f16(block + 2);
  const uint8_t* q = block + 4;
  for (int i = 0; i < 16; ++i) {
    out[i] = d * static_cast<float>(q[i] & 0x0f) + m;
    out[i + 16] = d * static_cast<float>(q[i] >> 4) + m;
  }
}

}  // namespace

Status dequantize(GgmlType type, const uint8_t* src, size_t src_bytes, int64_t count, float* dst) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  if (!traits || !traits->dequantizable) {
    return make_error(ErrorCode::kUnsupported,
                      "ggml type " + ggml_type_name(type) +
                          " cannot be dequantized (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  }
  if (count < 0 || count % traits->block_elements != 0) {
    return make_error(
        ErrorCode::kInvalidArgument,
        std::to_string(count) + " elements are not whole " + std::string(traits->name) + " blocks");
  }
  const int64_t blocks = count / traits->block_elements;
  if (static_cast<uint64_t>(blocks) * static_cast<uint64_t>(traits->block_bytes) > src_bytes) {
    return make_error(ErrorCode::kOutOfRange, std::to_string(count) + " " +
                                                  std::string(traits->name) +
                                                  " elements need more than the " +
                                                  std::to_string(src_bytes) + " bytes given");
  }
  const auto n = static_cast<size_t>(count);
  if (type == GgmlType::kF32) {
    std::memcpy(dst, src, n * sizeof(float));
  } else if (type == GgmlType::kF16) {
    convert_to_f32(DType::kF16, src, dst, n);
  } else if (type == GgmlType::kBF16) {
    convert_to_f32(DType::kBF16, src, dst, n);
  } else if (type == GgmlType::kQ8_0) {
    for (int64_t b = 0; b < blocks; ++b) dequantize_q8_0(src + b * 34, dst + b * 32);
  } else if (type == GgmlType::kQ4_0) {
    for (int64_t b = 0; b < blocks; ++b) dequantize_q4_0(src + b * 18, dst + b * 32);
  } else if (type == GgmlType::kQ4_1) {
    for (int64_t b = 0; b < blocks; ++b) dequantize_q4_1(src + b * 20, dst + b * 32);
  } else {
    return make_error(ErrorCode::kInternal, "no dequantizer for " + ggml_type_name(type));
  }
  return Status::ok();
}

Result<std::vector<float>> dequantize_tensor(const GgufFile& file, const GgufTensorInfo& tensor) {
  std::vector<float> out;
  const auto traits = ggml_type_traits(static_cast<uint32_t>(tensor.type));
  if (!traits || !traits->dequantizable) {
    return make_error(ErrorCode::kUnsupported,
                      file.path() + ": tensor " + tensor.name + " has type " +
                          ggml_type_name(tensor.type) +
                          ", which is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  }
  out.resize(static_cast<size_t>(tensor.elements));
  Status status = dequantize(tensor.type, tensor.data, tensor.bytes, tensor.elements, out.data());
  if (!status) {
    return make_error(status.code(),
                      file.path() + ": tensor " + tensor.name + ": " + status.message());
  }
  return out;
}

}  // namespace runahead
