#include "model/safetensors.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

namespace runahead {
namespace {

using Json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; so does this reader.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;
// Elements per tensor: far above any real tensor, far below where byte counts overflow.
constexpr uint64_t kMaxElements = uint64_t{1} << 48;
constexpr int kMaxRank = 8;

Error corrupt(const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kCorruptData, path + ": " + what);
}

Error corrupt_tensor(const std::string& path, const std::string& tensor, const std::string& what) {
  return make_error(ErrorCode::kCorruptData, path + ": tensor " + tensor + ": " + what);
}

std::optional<DType> parse_dtype(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  return std::nullopt;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return out + "]";
}

// Reads one header entry; `data_size` is the length of the data section.
Result<SafetensorsTensor> parse_entry(const std::string& path, const std::string& name,
                                      const Json& entry, const uint8_t* data_section,
                                      uint64_t data_size) {
  if (!entry.is_object()) return corrupt_tensor(path, name, "header entry is not an object");
  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return corrupt_tensor(path, name, "header entry has no dtype string");
  }
  const std::string dtype_name = dtype_it->get<std::string>();
  const std::optional<DType> dtype = parse_dtype(dtype_name);
  if (!dtype) {
    return make_error(ErrorCode::kUnsupported, path + ": tensor " + name + " has dtype " +
                                                   dtype_name +
                                                   "; supported are F32, F16 and BF16");
  }

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return corrupt_tensor(path, name, "header entry has no shape array");
  }
  if (shape_it->size() > kMaxRank) {
    return corrupt_tensor(path, name, "rank " + std::to_string(shape_it->size()) + " is too high");
  }
  SafetensorsTensor tensor;
  tensor.name = name;
  tensor.dtype = *dtype;
  uint64_t elements = 1;
  for (const Json& dim : *shape_it) {
    if (!dim.is_number_integer()) {
      return corrupt_tensor(path, name, "shape " + shape_it->dump() + " has a non-integer dim");
    }
    if (dim.is_number_unsigned() ? dim.get<uint64_t>() > kMaxElements : dim.get<int64_t>() < 0) {
      return corrupt_tensor(path, name,
                            "shape " + shape_it->dump() + " has a negative or oversized dim");
    }
    const uint64_t extent = dim.get<uint64_t>();
    if (extent != 0 && elements > kMaxElements / extent) {
      return corrupt_tensor(path, name, "shape " + shape_it->dump() + " overflows");
    }
    elements *= extent;
    tensor.shape.push_back(static_cast<int64_t>(extent));
  }

  const auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return corrupt_tensor(path, name, "data_offsets is not a pair of non-negative integers");
  }
  const auto begin = (*offsets_it)[0].get<uint64_t>();
  const auto end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return corrupt_tensor(path, name,
                          "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                              ") out of range: the data section has " + std::to_string(data_size) +
                              " bytes");
  }
  const uint64_t expected = elements * dtype_size(*dtype);
  if (end - begin != expected) {
    return corrupt_tensor(path, name,
                          "data_offsets span " + std::to_string(end - begin) + " bytes, but " +
                              dtype_name + " " + shape_string(tensor.shape) + " needs " +
                              std::to_string(expected));
  }
  tensor.data = data_section + begin;
  tensor.bytes = static_cast<size_t>(expected);
  return tensor;
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

Result<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  RUNAHEAD_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::open(path));
  return parse(std::move(mapping));
}

Result<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::parse(
    std::shared_ptr<const MappedFile> mapping) {
  const std::string& path = mapping->path();
  const size_t file_size = mapping->size();
  if (file_size < 8) {
    return corrupt(path, "file of " + std::to_string(file_size) +
                             " bytes is too short for the 8-byte header length");
  }
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | mapping->data()[i];
  if (header_bytes > file_size - 8) {
    return corrupt(path, "header length " + std::to_string(header_bytes) +
                             " reaches beyond the end of the file (" + std::to_string(file_size) +
                             " bytes)");
  }
  if (header_bytes > kMaxHeaderBytes) {
    return corrupt(path, "header length " + std::to_string(header_bytes) +
                             " exceeds the limit of " + std::to_string(kMaxHeaderBytes));
  }
  const auto* header_begin = reinterpret_cast<const char*>(mapping->data() + 8);
  const Json header = Json::parse(header_begin, header_begin + header_bytes, nullptr,
                                  /*allow_exceptions=*/false);
  if (header.is_discarded()) return corrupt(path, "header is not valid JSON");
  if (!header.is_object()) return corrupt(path, "header is not a JSON object");

  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->mapping_ = mapping;
  const uint8_t* data_section = mapping->data() + 8 + header_bytes;
  const uint64_t data_size = file_size - 8 - header_bytes;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    RUNAHEAD_ASSIGN_OR_RETURN(SafetensorsTensor tensor,
                              parse_entry(path, name, entry, data_section, data_size));
    file->tensors_.emplace(name, std::move(tensor));
  }

  // No two tensors may share bytes (empty tensors occupy none).
  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& [name, tensor] : file->tensors_) {
    if (tensor.bytes > 0) by_offset.push_back(&tensor);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const SafetensorsTensor& before = *by_offset[i - 1];
    if (by_offset[i]->data < before.data + before.bytes) {
      return corrupt(path, "tensors " + before.name + " and " + by_offset[i]->name + " overlap");
    }
  }

  // The reference writer pads the header so that data is aligned; a file that is not gets its
  // misaligned tensors copied, so that readers may treat the data as arrays of the element type.
  for (auto& [name, tensor] : file->tensors_) {
    if (reinterpret_cast<uintptr_t>(tensor.data) % dtype_size(tensor.dtype) != 0) {
      auto& copy = file->aligned_copies_.emplace_back(tensor.data, tensor.data + tensor.bytes);
      tensor.data = copy.data();
    }
  }
  return std::shared_ptr<const SafetensorsFile>(std::move(file));
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Result<HostTensor> SafetensorsFile::host_tensor(const std::string& name) const {
  const SafetensorsTensor* tensor = find(name);
  if (tensor == nullptr) {
    return make_error(ErrorCode::kNotFound, path() + ": no tensor " + name);
  }
  HostTensor host;
  host.dtype = tensor->dtype;
  host.data = tensor->data;
  host.origin = path() + ": " + name;
  if (tensor->shape.size() == 1) {
    host.rows = 1;
    host.cols = tensor->shape[0];
  } else if (tensor->shape.size() == 2) {
    host.rows = tensor->shape[0];
    host.cols = tensor->shape[1];
  } else {
    return make_error(ErrorCode::kUnsupported, path() + ": tensor " + name + " has rank " +
                                                   std::to_string(tensor->shape.size()) +
                                                   " (shape " + shape_string(tensor->shape) +
                                                   "); only vectors and matrices are used");
  }
  return host;
}

Status write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors) {
  Json header = Json::object();
  uint64_t offset = 0;
  std::vector<std::pair<const void*, uint64_t>> blobs;
  for (const SafetensorsEntry& entry : tensors) {
    uint64_t elements = 1;
    for (int64_t dim : entry.shape) {
      if (dim < 0) {
        return make_error(ErrorCode::kInvalidArgument,
                          path + ": tensor " + entry.name + " has a negative dim");
      }
      elements *= static_cast<uint64_t>(dim);
    }
    const uint64_t bytes = elements * dtype_size(entry.dtype);
    header[entry.name] = {{"dtype", safetensors_dtype_name(entry.dtype)},
                          {"shape", entry.shape},
                          {"data_offsets", {offset, offset + bytes}}};
    blobs.emplace_back(entry.data, bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kUnavailable, path + ": cannot open for writing");
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
  out.write(reinterpret_cast<const char*>(length), sizeof length);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [data, bytes] : blobs) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  }
  out.close();
  if (!out) return make_error(ErrorCode::kUnavailable, path + ": write failed");
  return Status::ok();
}

}  // namespace runahead
