#include <unistd.h>

#include <cstring>

#include "net/data/peer_memory_access.h"

namespace runahead::net {
namespace {

constexpr char kHostMagic[] = "host-peer-memory";

// The process id: pointers are meaningful only within one process.
std::vector<uint8_t> process_identity() {
  std::vector<uint8_t> identity(kHostMagic, kHostMagic + sizeof(kHostMagic));
  const int64_t pid = ::getpid();
  const auto* bytes = reinterpret_cast<const uint8_t*>(&pid);
  identity.insert(identity.end(), bytes, bytes + sizeof(pid));
  return identity;
}

class HostPeerMemoryAccess final : public PeerMemoryAccess {
 public:
  explicit HostPeerMemoryAccess(std::string name) : name_(std::move(name)) {}

  std::string describe() const override { return "host memory " + name_; }
  std::vector<uint8_t> identity() const override { return process_identity(); }
  bool reaches(const std::vector<uint8_t>& peer_identity) const override {
    return peer_identity == process_identity();
  }

  Result<std::vector<uint8_t>> export_handle(void* base, size_t bytes) override {
    if (base == nullptr || bytes == 0) {
      return make_error(ErrorCode::kInvalidArgument, name_ + ": nothing to export");
    }
    std::vector<uint8_t> handle(sizeof(base));
    std::memcpy(handle.data(), &base, sizeof(base));
    return handle;
  }

  Result<void*> map(const std::vector<uint8_t>& handle) override {
    void* base = nullptr;
    if (handle.size() != sizeof(base)) {
      return make_error(ErrorCode::kProtocol, name_ + ": a host memory handle has " +
                                                  std::to_string(sizeof(base)) + " bytes, not " +
                                                  std::to_string(handle.size()));
    }
    std::memcpy(&base, handle.data(), sizeof(base));
    return base;
  }

  void unmap(void* /*mapped*/) override {}

  Status copy_async(void* dst, const void* src, size_t bytes,
                    std::function<void(Status)> done) override {
    std::memcpy(dst, src, bytes);
    done(Status::ok());
    return Status::ok();
  }

 private:
  std::string name_;
};

}  // namespace

std::unique_ptr<PeerMemoryAccess> make_host_peer_memory_access(std::string name) {
  return std::make_unique<HostPeerMemoryAccess>(std::move(name));
}

}  // namespace runahead::net
