// Small binary encodings of this host (addresses, exposures): values appended in host byte
// order, and a reader of untrusted bytes whose every read is bounds-checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace runahead::net {

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

// A 32-bit length, then the bytes.
inline void append_sized(std::vector<uint8_t>& out, const std::vector<uint8_t>& bytes) {
  append(out, static_cast<uint32_t>(bytes.size()));
  out.insert(out.end(), bytes.begin(), bytes.end());
}

class ByteReader {
 public:
  explicit ByteReader(const std::vector<uint8_t>& bytes) : bytes_(bytes) {}

  template <typename T>
  bool read(T& value) {
    if (bytes_.size() - offset_ < sizeof(T)) return false;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }
  bool read_bytes(size_t count, std::vector<uint8_t>& out) {
    if (bytes_.size() - offset_ < count) return false;
    out.assign(bytes_.begin() + static_cast<std::ptrdiff_t>(offset_),
               bytes_.begin() + static_cast<std::ptrdiff_t>(offset_ + count));
    offset_ += count;
    return true;
  }
  // What append_sized() wrote.
  bool read_sized(std::vector<uint8_t>& out) {
    uint32_t size = 0;
    return read(size) && read_bytes(size, out);
  }
  bool at_end() const { return offset_ == bytes_.size(); }

 private:
  const std::vector<uint8_t>& bytes_;
  size_t offset_ = 0;
};

}  // namespace runahead::net
