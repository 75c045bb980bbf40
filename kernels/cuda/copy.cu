#include "kernels/cuda/copy.h"

#include <cstdint>

namespace runahead {
namespace {

// Grid: (rows, chunks of 256 x 16 bytes). Rows are `row_chunks` 16-byte pieces long.
__global__ void copy_rows_kernel(const uint4* src, int64_t src_stride, uint4* dst,
                                 int64_t dst_stride, int64_t row_chunks) {
  const int64_t row = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c < row_chunks) dst[row * dst_stride + c] = src[row * src_stride + c];
}

bool rows_in_16_bytes(const Tensor& t) {
  const size_t element = dtype_size(t.dtype);
  return reinterpret_cast<uintptr_t>(t.data) % 16 == 0 &&
         (static_cast<size_t>(t.row_stride) * element) % 16 == 0 &&
         (static_cast<size_t>(t.cols) * element) % 16 == 0;
}

}  // namespace

cudaError_t launch_copy(Tensor src, Tensor dst, cudaStream_t stream) {
  if (src.rows == 0 || src.cols == 0) return cudaSuccess;
  const size_t element = dtype_size(src.dtype);
  if (rows_in_16_bytes(src) && rows_in_16_bytes(dst)) {
    const auto row_chunks = static_cast<int64_t>(static_cast<size_t>(src.cols) * element / 16);
    const int threads = 256;
    const dim3 grid(static_cast<unsigned>(src.rows),
                    static_cast<unsigned>((row_chunks + threads - 1) / threads));
    copy_rows_kernel<<<grid, threads, 0, stream>>>(
        static_cast<const uint4*>(src.data),
        static_cast<int64_t>(static_cast<size_t>(src.row_stride) * element / 16),
        static_cast<uint4*>(dst.data),
        static_cast<int64_t>(static_cast<size_t>(dst.row_stride) * element / 16), row_chunks);
    return cudaGetLastError();
  }
  return cudaMemcpy2DAsync(dst.data, static_cast<size_t>(dst.row_stride) * element, src.data,
                           static_cast<size_t>(src.row_stride) * element,
                           static_cast<size_t>(src.cols) * element, static_cast<size_t>(src.rows),
                           cudaMemcpyDeviceToDevice, stream);
}

}  // namespace runahead
