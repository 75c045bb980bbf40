#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace runahead {

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                      path + ": " + std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int saved = errno;
    ::close(fd);
    return make_error(ErrorCode::kUnavailable, path + ": " + std::strerror(saved));
  }
  const auto size = static_cast<size_t>(info.st_size);
  void* data = nullptr;
  if (size > 0) {
    data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      const int saved = errno;
      ::close(fd);
      return make_error(ErrorCode::kUnavailable, path + ": mmap: " + std::strerror(saved));
    }
  }
  ::close(fd);
  return std::shared_ptr<const MappedFile>(new MappedFile(path, data, size));
}

Result<std::shared_ptr<const MappedFile>> MappedFile::from_bytes(const std::string& name,
                                                                 std::span<const uint8_t> bytes) {
  void* data = nullptr;
  if (!bytes.empty()) {
    data =
        ::mmap(nullptr, bytes.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) {
      return make_error(
          ErrorCode::kResourceExhausted,
          name + ": mmap of " + std::to_string(bytes.size()) + " bytes: " + std::strerror(errno));
    }
    std::memcpy(data, bytes.data(), bytes.size());
    // Read-only like a file mapping, so that a parser writing into its input faults here too.
    if (::mprotect(data, bytes.size(), PROT_READ) != 0) {
      const int saved = errno;
      ::munmap(data, bytes.size());
      return make_error(ErrorCode::kUnavailable, name + ": mprotect: " + std::strerror(saved));
    }
  }
  return std::shared_ptr<const MappedFile>(new MappedFile(name, data, bytes.size()));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

}  // namespace runahead
