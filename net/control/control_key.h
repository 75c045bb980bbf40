// A shared secret of the control plane: the cluster key that workers prove when they join, or
// the client key that clients prove. A key file holds one line of hexadecimal digits, at least
// 64 of them (32 bytes of key), and nothing else but surrounding white space; it must be a
// regular file with no permission bits for group or others (mode 0600 or 0400), so that a key
// is never read from a file that other users can read. `runahead keygen PATH` writes one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace runahead::net {

class ControlKey {
 public:
  static constexpr size_t kMinBytes = 32;
  static constexpr size_t kMaxBytes = 1024;
  // Bytes of key that write_key_file() draws.
  static constexpr size_t kGeneratedBytes = 32;

  // Reads and checks the key file `path`; errors name the file and what is wrong with it
  // (missing, readable by others, too short, not hexadecimal), never the key.
  [[nodiscard]] static Result<ControlKey> load(const std::string& path);
  // The key in `text` (a key file's contents); `source` names it in errors.
  [[nodiscard]] static Result<ControlKey> parse(std::string_view text, const std::string& source);

  ControlKey(const ControlKey&) = default;
  ControlKey(ControlKey&&) = default;
  ControlKey& operator=(const ControlKey&) = default;
  ControlKey& operator=(ControlKey&&) = default;
  ~ControlKey();  // wipes the key bytes

  std::span<const uint8_t> bytes() const { return bytes_; }
  // Where the key came from (its file), for messages.
  const std::string& source() const { return source_; }
  // Whether both hold the same secret (the cluster and client keys must differ).
  bool same_secret(const ControlKey& other) const;

 private:
  ControlKey(std::vector<uint8_t> bytes, std::string source);

  std::vector<uint8_t> bytes_;
  std::string source_;
};

// Writes a fresh random key (kGeneratedBytes from the system's random source, as hexadecimal)
// to `path`, created with mode 0600; an existing file is left alone and refused.
[[nodiscard]] Status write_key_file(const std::string& path);

}  // namespace runahead::net
