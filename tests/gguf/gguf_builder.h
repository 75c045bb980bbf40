// Builds GGUF files byte by byte for tests: well-formed ones, and ones broken on purpose.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace runahead::testing {

class GgufBuilder {
 public:
  // Serialized pieces, public so tests can write malformed entries by hand.
  template <typename T>
  static void put(std::string& out, T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out.append(bytes, sizeof(T));
  }
  static void put_string(std::string& out, const std::string& text) {
    put<uint64_t>(out, text.size());
    out += text;
  }

  // A key with its type id and already serialized payload.
  void raw_kv(const std::string& key, uint32_t type, const std::string& payload) {
    put_string(kv_, key);
    put<uint32_t>(kv_, type);
    kv_ += payload;
    ++kv_count_;
  }
  void u32(const std::string& key, uint32_t v) { raw_kv(key, 4, bytes_of(v)); }
  void i32(const std::string& key, int32_t v) { raw_kv(key, 5, bytes_of(v)); }
  void f32(const std::string& key, float v) { raw_kv(key, 6, bytes_of(v)); }
  void boolean(const std::string& key, bool v) { raw_kv(key, 7, bytes_of<uint8_t>(v ? 1 : 0)); }
  void str(const std::string& key, const std::string& v) {
    std::string payload;
    put_string(payload, v);
    raw_kv(key, 8, payload);
  }
  void str_array(const std::string& key, const std::vector<std::string>& values) {
    std::string payload;
    put<uint32_t>(payload, 8);
    put<uint64_t>(payload, values.size());
    for (const auto& v : values) put_string(payload, v);
    raw_kv(key, 9, payload);
  }
  void i32_array(const std::string& key, const std::vector<int32_t>& values) {
    std::string payload;
    put<uint32_t>(payload, 5);
    put<uint64_t>(payload, values.size());
    for (int32_t v : values) put<int32_t>(payload, v);
    raw_kv(key, 9, payload);
  }
  void f32_array(const std::string& key, const std::vector<float>& values) {
    std::string payload;
    put<uint32_t>(payload, 6);
    put<uint64_t>(payload, values.size());
    for (float v : values) put<float>(payload, v);
    raw_kv(key, 9, payload);
  }

  // `dims` fastest first; `data` is the tensor's bytes.
  void tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
              const std::string& data) {
    tensors_.push_back({name, dims, type, data, ~uint64_t{0}});
  }
  void tensor_f32(const std::string& name, const std::vector<uint64_t>& dims,
                  const std::vector<float>& values) {
    std::string data(values.size() * 4, '\0');
    std::memcpy(data.data(), values.data(), data.size());
    tensor(name, dims, 0, data);
  }
  // Overrides the offset written for the last tensor added.
  void override_offset(uint64_t offset) { tensors_.back().offset = offset; }

  std::string build(uint32_t version = 3, uint64_t alignment = 32,
                    const char* magic = "GGUF") const {
    std::string out(magic, 4);
    put<uint32_t>(out, version);
    put<uint64_t>(out, tensors_.size());
    put<uint64_t>(out, kv_count_);
    out += kv_;
    std::vector<uint64_t> offsets;
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      offsets.push_back(t.offset != ~uint64_t{0} ? t.offset : offset);
      offset = (offset + t.data.size() + alignment - 1) / alignment * alignment;
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      put_string(out, t.name);
      put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) put<uint64_t>(out, d);
      put<uint32_t>(out, t.type);
      put<uint64_t>(out, offsets[i]);
    }
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    const size_t data_start = out.size();
    offset = 0;
    for (const Tensor& t : tensors_) {
      out.resize(data_start + offset, '\0');
      out += t.data;
      offset = (offset + t.data.size() + alignment - 1) / alignment * alignment;
    }
    return out;
  }

  template <typename T>
  static std::string bytes_of(T value) {
    std::string out;
    put<T>(out, value);
    return out;
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::string data;
    uint64_t offset;
  };
  std::string kv_;
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

inline std::string write_temp_file(const std::string& name, const std::string& bytes) {
  // CTest runs the cases as parallel processes sharing TempDir(): one file per process.
  const std::string path = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace runahead::testing
