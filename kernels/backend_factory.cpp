#include "kernels/backend_factory.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#ifdef RUNAHEAD_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace runahead {

Result<Buffer> Backend::allocate_host(size_t bytes) {
  const size_t rounded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  void* data = std::aligned_alloc(64, rounded);
  if (data == nullptr) {
    return make_error(ErrorCode::kResourceExhausted,
                      "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  }
  return Buffer(data, bytes, [](void* p) { std::free(p); });
}

void Backend::rope_rows(const RopeArgs& args, std::span<const int64_t> positions) {
  for (int64_t r = 0; r < args.x.rows; ++r) {
    RopeArgs row = args;
    row.x = args.x.rows_slice(r, r + 1);
    row.first_position = positions[static_cast<size_t>(r)];
    rope(row);
  }
}

void Backend::decode_attention(std::span<const AttentionArgs> rows) {
  for (const AttentionArgs& row : rows) attention(row);
}

Status Backend::check_attention_shape(int n_heads, int n_kv_heads, int head_dim) const {
  if (head_dim <= 0 || n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      name() + ": attention of " + std::to_string(n_heads) + " query heads over " +
                          std::to_string(n_kv_heads) + " K/V heads of head_dim " +
                          std::to_string(head_dim) +
                          ": the query heads must be a positive multiple of the K/V heads");
  }
  return Status::ok();
}

Status Backend::copy_to_host_async(Tensor src, void* dst, CopyDone done) {
  RUNAHEAD_RETURN_IF_ERROR(copy_to_host(src, dst));
  done(Status::ok());
  return Status::ok();
}

Status Backend::copy_from_host_async(const void* src, Tensor dst, CopyDone done) {
  RUNAHEAD_RETURN_IF_ERROR(copy_from_host(src, dst));
  done(Status::ok());
  return Status::ok();
}

Result<std::unique_ptr<Backend>> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (device.size() > 5) {
      const char* first = device.data() + 5;
      const char* last = device.data() + device.size();
      auto [end, error] = std::from_chars(first, last, index);
      if (error != std::errc() || end != last || index < 0) {
        return make_error(ErrorCode::kInvalidArgument,
                          "device '" + device + "': expected cuda:N with N a GPU index");
      }
    }
#ifdef RUNAHEAD_HAVE_CUDA
    return make_cuda_backend(index);
#else
    return make_error(ErrorCode::kUnsupported,
                      "device '" + device + "': this build of runahead has no CUDA backend");
#endif
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown device '" + device + "' (expected cpu, cuda or cuda:N)");
}

}  // namespace runahead
