// CUDA IPC peer memory: the receiver exports its K/V cache allocation with cudaIpcGetMemHandle,
// the sender maps it with cudaIpcOpenMemHandle and copies into it on a stream of its own, so the
// copy engines move K/V over NVLink while the compute stream runs on.
#include "net/data/peer_memory_access.h"

#ifdef RUNAHEAD_HAVE_CUDA

#include <cuda_runtime_api.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <mutex>

#include "core/log.h"

namespace runahead::net {
namespace {

constexpr char kCudaMagic[] = "cuda-ipc-v1";

std::string cuda_error_text(cudaError_t error) {
  return std::string(cudaGetErrorName(error)) + " (" + cudaGetErrorString(error) + ")";
}

// The boot id and host name: processes that share both share the GPUs' IPC namespace.
std::string host_identity() {
  std::string boot_id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot_id;
  std::array<char, 256> host{};
  ::gethostname(host.data(), host.size() - 1);
  return boot_id + "/" + host.data();
}

// identity = magic \0 host \0 pid \0 pci-bus-id \0
std::vector<uint8_t> encode_identity(const std::string& host, int64_t pid,
                                     const std::string& bus_id) {
  std::string text =
      std::string(kCudaMagic) + '\0' + host + '\0' + std::to_string(pid) + '\0' + bus_id + '\0';
  return std::vector<uint8_t>(text.begin(), text.end());
}

struct Identity {
  std::string host;
  std::string pid;
  std::string bus_id;
};

bool decode_identity(const std::vector<uint8_t>& bytes, Identity& out) {
  std::vector<std::string> fields;
  std::string field;
  for (uint8_t byte : bytes) {
    if (byte == 0) {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field.push_back(static_cast<char>(byte));
    }
  }
  if (!field.empty() || fields.size() != 4 || fields[0] != kCudaMagic) return false;
  out = Identity{fields[1], fields[2], fields[3]};
  return true;
}

// One copy split over several streams: `done` runs when the last part completed.
struct SplitCopy {
  std::atomic<int> parts_left{0};
  std::atomic<bool> failed{false};  // a part could not be queued: the copy reports nothing
  std::function<void(Status)> done;
};

void CUDART_CB run_host_callback(void* data) {
  auto* copy = static_cast<SplitCopy*>(data);
  if (copy->parts_left.fetch_sub(1) == 1) {
    if (!copy->failed.load()) copy->done(Status::ok());
    delete copy;
  }
}

// Large blocks are cut into parts of at least this size, one per copy stream, so that several
// copy engines move them at once.
constexpr size_t kMinPartBytes = size_t{4} << 20;
constexpr int kCopyStreams = 4;

class CudaIpcPeerMemoryAccess final : public PeerMemoryAccess {
 public:
  static Result<std::unique_ptr<PeerMemoryAccess>> create(int device) {
    const std::string name = "cuda:" + std::to_string(device);
    cudaError_t error = cudaSetDevice(device);
    std::array<char, 32> bus_id{};
    if (error == cudaSuccess) {
      error = cudaDeviceGetPCIBusId(bus_id.data(), static_cast<int>(bus_id.size()), device);
    }
    std::vector<cudaStream_t> streams(kCopyStreams, nullptr);
    for (cudaStream_t& stream : streams) {
      if (error == cudaSuccess) error = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    }
    if (error != cudaSuccess) {
      for (cudaStream_t stream : streams) {
        if (stream != nullptr) cudaStreamDestroy(stream);
      }
      return make_error(ErrorCode::kDevice,
                        name + ": cannot set up peer copies: " + cuda_error_text(error));
    }
    return std::unique_ptr<PeerMemoryAccess>(
        new CudaIpcPeerMemoryAccess(device, bus_id.data(), std::move(streams)));
  }

  ~CudaIpcPeerMemoryAccess() override {
    cudaSetDevice(device_);
    for (cudaStream_t stream : streams_) {
      cudaStreamSynchronize(stream);
      cudaStreamDestroy(stream);
    }
  }

  std::string describe() const override {
    return "cuda-ipc cuda:" + std::to_string(device_) + " (" + bus_id_ + ")";
  }

  std::vector<uint8_t> identity() const override {
    return encode_identity(host_, ::getpid(), bus_id_);
  }

  bool reaches(const std::vector<uint8_t>& peer_identity) const override {
    Identity peer;
    if (!decode_identity(peer_identity, peer)) return false;
    // IPC handles cannot be opened by the process that made them.
    if (peer.host != host_ || peer.pid == std::to_string(::getpid())) return false;
    cudaSetDevice(device_);
    int peer_device = -1;
    if (cudaDeviceGetByPCIBusId(&peer_device, peer.bus_id.c_str()) != cudaSuccess) {
      cudaGetLastError();
      return false;  // not visible to this process
    }
    if (peer_device == device_) return true;
    int there = 0;
    int back = 0;
    if (cudaDeviceCanAccessPeer(&there, device_, peer_device) != cudaSuccess ||
        cudaDeviceCanAccessPeer(&back, peer_device, device_) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return there != 0 && back != 0;
  }

  Result<std::vector<uint8_t>> export_handle(void* base, size_t bytes) override {
    cudaSetDevice(device_);
    cudaIpcMemHandle_t handle{};
    const cudaError_t error = cudaIpcGetMemHandle(&handle, base);
    if (error != cudaSuccess) {
      cudaGetLastError();
      return make_error(ErrorCode::kDevice,
                        describe() + ": cannot export " + std::to_string(bytes) +
                            " bytes for peer copies: " + cuda_error_text(error));
    }
    const auto* data = reinterpret_cast<const uint8_t*>(&handle);
    return std::vector<uint8_t>(data, data + sizeof(handle));
  }

  Result<void*> map(const std::vector<uint8_t>& bytes) override {
    cudaIpcMemHandle_t handle{};
    if (bytes.size() != sizeof(handle)) {
      return make_error(ErrorCode::kProtocol, describe() + ": a CUDA IPC handle has " +
                                                  std::to_string(sizeof(handle)) + " bytes, not " +
                                                  std::to_string(bytes.size()));
    }
    std::memcpy(&handle, bytes.data(), sizeof(handle));
    cudaSetDevice(device_);
    void* mapped = nullptr;
    const cudaError_t error = cudaIpcOpenMemHandle(&mapped, handle, cudaIpcMemLazyEnablePeerAccess);
    if (error != cudaSuccess) {
      cudaGetLastError();
      return make_error(ErrorCode::kDevice, describe() + ": cannot map the next worker's cache: " +
                                                cuda_error_text(error));
    }
    return mapped;
  }

  void unmap(void* mapped) override {
    cudaSetDevice(device_);
    if (const cudaError_t error = cudaIpcCloseMemHandle(mapped); error != cudaSuccess) {
      cudaGetLastError();
      logger("data_plane")
          ->warn("{}: unmapping a peer's cache: {}", describe(), cuda_error_text(error));
    }
  }

  Status copy_async(void* dst, const void* src, size_t bytes,
                    std::function<void(Status)> done) override {
    cudaSetDevice(device_);
    const int parts = static_cast<int>(
        std::clamp<size_t>(bytes / kMinPartBytes, 1, static_cast<size_t>(kCopyStreams)));
    const size_t part_bytes = (bytes + static_cast<size_t>(parts) - 1) / static_cast<size_t>(parts);
    auto* copy = new SplitCopy;
    copy->done = std::move(done);
    copy->parts_left = parts;
    for (int part = 0; part < parts; ++part) {
      const size_t offset = static_cast<size_t>(part) * part_bytes;
      const size_t length = std::min(part_bytes, bytes - offset);
      cudaStream_t stream = streams_[next_stream_++ % streams_.size()];
      cudaError_t error =
          cudaMemcpyAsync(static_cast<char*>(dst) + offset, static_cast<const char*>(src) + offset,
                          length, cudaMemcpyDefault, stream);
      if (error == cudaSuccess) error = cudaLaunchHostFunc(stream, run_host_callback, copy);
      if (error != cudaSuccess) {
        // Parts already queued still call back; those that never will are counted off here, and
        // `done` is not called for a copy that failed to start.
        copy->failed = true;
        if (copy->parts_left.fetch_sub(parts - part) == parts - part) delete copy;
        return make_error(ErrorCode::kDevice, describe() + ": peer copy of " +
                                                  std::to_string(bytes) +
                                                  " bytes failed: " + cuda_error_text(error));
      }
    }
    return Status::ok();
  }

 private:
  CudaIpcPeerMemoryAccess(int device, std::string bus_id, std::vector<cudaStream_t> streams)
      : device_(device),
        bus_id_(std::move(bus_id)),
        host_(host_identity()),
        streams_(std::move(streams)) {}

  int device_;
  std::string bus_id_;
  std::string host_;
  std::vector<cudaStream_t> streams_;
  size_t next_stream_ = 0;
};

}  // namespace

Result<std::unique_ptr<PeerMemoryAccess>> make_cuda_ipc_peer_memory_access(int device) {
  return CudaIpcPeerMemoryAccess::create(device);
}

}  // namespace runahead::net

#else  // no CUDA in this build

namespace runahead::net {

Result<std::unique_ptr<PeerMemoryAccess>> make_cuda_ipc_peer_memory_access(int device) {
  return make_error(ErrorCode::kUnsupported,
                    "cuda:" + std::to_string(device) + ": this build of runahead has no CUDA");
}

}  // namespace runahead::net

#endif
