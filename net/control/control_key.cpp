#include "net/control/control_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace runahead::net {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Reads at most `limit` bytes of an open file; a longer file is an error.
Result<std::string> read_bounded(int fd, size_t limit, const std::string& path) {
  std::string text;
  char chunk[512];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("key file {}: cannot read: {}", path, std::strerror(errno)));
    }
    if (got == 0) break;
    text.append(chunk, static_cast<size_t>(got));
    if (text.size() > limit) {
      OPENSSL_cleanse(text.data(), text.size());
      return make_error(
          ErrorCode::kInvalidArgument,
          fmt::format("key file {} is longer than {} bytes: not a key file", path, limit));
    }
  }
  return text;
}

}  // namespace

ControlKey::ControlKey(std::vector<uint8_t> bytes, std::string source)
    : bytes_(std::move(bytes)), source_(std::move(source)) {}

ControlKey::~ControlKey() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

bool ControlKey::same_secret(const ControlKey& other) const {
  return bytes_.size() == other.bytes_.size() &&
         CRYPTO_memcmp(bytes_.data(), other.bytes_.data(), bytes_.size()) == 0;
}

Result<ControlKey> ControlKey::parse(std::string_view text, const std::string& source) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  const std::string_view digits = text.substr(begin, end - begin);
  if (digits.size() % 2 != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("key file {}: {} hexadecimal digits, an odd number; a key file "
                                  "holds one line of hexadecimal digits (runahead keygen writes "
                                  "one)",
                                  source, digits.size()));
  }
  std::vector<uint8_t> bytes;
  bytes.reserve(digits.size() / 2);
  for (size_t i = 0; i < digits.size(); i += 2) {
    const int high = hex_value(digits[i]);
    const int low = hex_value(digits[i + 1]);
    if (high < 0 || low < 0) {
      OPENSSL_cleanse(bytes.data(), bytes.size());
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("key file {}: character {} is not a hexadecimal digit; a key "
                                    "file holds one line of hexadecimal digits (runahead keygen "
                                    "writes one)",
                                    source, begin + i + (high < 0 ? 1 : 2)));
    }
    bytes.push_back(static_cast<uint8_t>(high * 16 + low));
  }
  if (bytes.size() < kMinBytes || bytes.size() > kMaxBytes) {
    const size_t got = bytes.size();
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("key file {} holds {} bytes of key; a key has {} to {} bytes "
                                  "({} to {} hexadecimal digits; runahead keygen writes one)",
                                  source, got, kMinBytes, kMaxBytes, 2 * kMinBytes, 2 * kMaxBytes));
  }
  return ControlKey(std::move(bytes), source);
}

Result<ControlKey> ControlKey::load(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    return make_error(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
                      fmt::format("key file {}: cannot open: {}", path, std::strerror(error)));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("key file {}: cannot stat: {}", path, std::strerror(error)));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("key file {} is not a regular file", path));
  }
  if ((info.st_mode & 077) != 0) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("key file {} has mode {:04o}: group or others may read or "
                                  "change it; make it private with chmod 600 {}",
                                  path, info.st_mode & 07777, path));
  }
  auto text = read_bounded(fd, 4 * kMaxBytes, path);
  ::close(fd);
  if (!text) return text.error();
  auto key = parse(*text, path);
  OPENSSL_cleanse(text->data(), text->size());
  return key;
}

Status write_key_file(const std::string& path) {
  std::vector<uint8_t> bytes(ControlKey::kGeneratedBytes);
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("key file {}: the system's random source failed", path));
  }
  std::string text;
  text.reserve(2 * bytes.size() + 1);
  static constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t byte : bytes) {
    text.push_back(kDigits[byte >> 4]);
    text.push_back(kDigits[byte & 15]);
  }
  text.push_back('\n');
  OPENSSL_cleanse(bytes.data(), bytes.size());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int error = errno;
    OPENSSL_cleanse(text.data(), text.size());
    return make_error(
        error == EEXIST ? ErrorCode::kInvalidArgument : ErrorCode::kUnavailable,
        fmt::format("key file {}: cannot create: {}{}", path, std::strerror(error),
                    error == EEXIST ? " (an existing key is never overwritten)" : ""));
  }
  // The umask may have taken bits away, never added: 0600 exactly either way.
  Status status = Status::ok();
  if (::fchmod(fd, 0600) != 0) {
    status = make_error(ErrorCode::kUnavailable, fmt::format("key file {}: cannot chmod 600: {}",
                                                             path, std::strerror(errno)));
  }
  size_t written = 0;
  while (status.is_ok() && written < text.size()) {
    const ssize_t put = ::write(fd, text.data() + written, text.size() - written);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      status = make_error(ErrorCode::kUnavailable,
                          fmt::format("key file {}: cannot write: {}", path, std::strerror(errno)));
      break;
    }
    written += static_cast<size_t>(put);
  }
  if (status.is_ok() && ::fsync(fd) != 0) {
    status = make_error(ErrorCode::kUnavailable,
                        fmt::format("key file {}: cannot sync: {}", path, std::strerror(errno)));
  }
  ::close(fd);
  OPENSSL_cleanse(text.data(), text.size());
  if (!status.is_ok()) ::unlink(path.c_str());
  return status;
}

}  // namespace runahead::net
