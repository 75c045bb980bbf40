#include "kernels/cuda/embed.h"

#include <cuda_bf16.h>

namespace runahead {
namespace {

// One block per token: a row copy of 2-byte elements.
__global__ void embed_kernel(const __nv_bfloat16* table, int64_t table_stride,
                             const int32_t* tokens, __nv_bfloat16* out, int64_t out_stride,
                             int64_t cols) {
  const int64_t row = blockIdx.x;
  const __nv_bfloat16* source = table + static_cast<int64_t>(tokens[row]) * table_stride;
  __nv_bfloat16* target = out + row * out_stride;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) target[c] = source[c];
}

}  // namespace

cudaError_t launch_embed(Tensor table, const int32_t* device_tokens, Tensor out,
                         cudaStream_t stream) {
  if (out.rows == 0) return cudaSuccess;
  embed_kernel<<<static_cast<unsigned>(out.rows), 256, 0, stream>>>(
      table.as<__nv_bfloat16>(), table.row_stride, device_tokens, out.as<__nv_bfloat16>(),
      out.row_stride, out.cols);
  return cudaGetLastError();
}

}  // namespace runahead
