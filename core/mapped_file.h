// A read-only memory mapping of a whole file; tensors are read in place, never copied whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"

namespace runahead {

class MappedFile {
 public:
  [[nodiscard]] static Result<std::shared_ptr<const MappedFile>> open(const std::string& path);
  // A read-only, page-aligned copy of `bytes` in anonymous memory, named `name` in errors: the
  // parsers of mapped files read it exactly as they read a file (tests, fuzzing).
  [[nodiscard]] static Result<std::shared_ptr<const MappedFile>> from_bytes(
      const std::string& name, std::span<const uint8_t> bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  const uint8_t* data() const { return static_cast<const uint8_t*>(data_); }
  std::span<const uint8_t> bytes() const { return {data(), size_}; }

 private:
  MappedFile(std::string path, void* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace runahead
