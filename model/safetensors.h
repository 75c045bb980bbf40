// The safetensors format: an 8-byte little-endian header length, a JSON header describing each
// tensor (dtype, shape, data_offsets into the data section), then the data section.
//
// SafetensorsFile maps a file and validates its whole header before any tensor is used; tensors
// are read in place from the mapping. Every error names the file and, where one is at fault,
// the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/status.h"
#include "model/host_model.h"

namespace runahead {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the mapping (or an aligned copy, see open())
  size_t bytes = 0;
};

class SafetensorsFile {
 public:
  // Maps `path` and checks the header: its length against the file, the JSON, every dtype
  // (F32, F16, BF16), shape and data_offsets range, size and overlap. "__metadata__" is ignored.
  [[nodiscard]] static Result<std::shared_ptr<const SafetensorsFile>> open(const std::string& path);
  // The same checks on an already mapped file (MappedFile::from_bytes for bytes in memory).
  [[nodiscard]] static Result<std::shared_ptr<const SafetensorsFile>> parse(
      std::shared_ptr<const MappedFile> mapping);

  const std::string& path() const { return mapping_->path(); }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;

  // The tensor as a matrix: rank 2 as is, rank 1 as one row; any other rank is an error.
  // The HostTensor points into this file, which must outlive it.
  [[nodiscard]] Result<HostTensor> host_tensor(const std::string& name) const;

 private:
  SafetensorsFile() = default;

  std::shared_ptr<const MappedFile> mapping_;
  std::map<std::string, SafetensorsTensor> tensors_;
  // Tensors whose data in the file is not aligned to their element size, copied once.
  std::vector<std::vector<uint8_t>> aligned_copies_;
};

// One tensor to write: `data` holds product(shape) elements of `dtype`.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes a safetensors file (header padded to 8 bytes, tensors in the given order).
[[nodiscard]] Status write_safetensors(const std::string& path,
                                       const std::vector<SafetensorsEntry>& tensors);

// "F32", "F16", "BF16": the names safetensors headers use.
const char* safetensors_dtype_name(DType dtype);

}  // namespace runahead
