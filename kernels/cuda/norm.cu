#include "kernels/cuda/norm.h"

#include <cuda_bf16.h>

#include "kernels/cuda/bf16_vector.cuh"

namespace runahead {
namespace {

constexpr int kThreads = 256;

// Sum over the block; every thread gets the total. `scratch` holds one float per warp.
__device__ float block_sum(float value, float* scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  __syncthreads();  // scratch may still be read from an earlier call
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  float total = 0.0f;
  const int warps = static_cast<int>(blockDim.x) / 32;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  return total;
}

// The second pass of an RMS norm, shared by the plain and the fused kernel: o = w * (x * inv_rms)
// for one row, the block's threads striding over its columns.
template <bool kVector>
__device__ __forceinline__ void write_rms_scaled(const __nv_bfloat16* x,
                                                 const __nv_bfloat16* weight, __nv_bfloat16* o,
                                                 int64_t cols, float inv_rms) {
  if constexpr (kVector) {
    for (int64_t c = threadIdx.x * 8; c < cols; c += blockDim.x * 8) {
      Float8 v = load_bf16x8(x + c);
      const Float8 w = load_bf16x8(weight + c);
#pragma unroll
      for (int i = 0; i < 8; ++i) v.v[i] = w.v[i] * (v.v[i] * inv_rms);
      store_bf16x8(o + c, v);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      o[c] = __float2bfloat16(__bfloat162float(weight[c]) * (__bfloat162float(x[c]) * inv_rms));
    }
  }
}

// One block per row. kVector: 8 columns per access (16-byte aligned rows).
template <bool kVector>
__global__ void rms_norm_kernel(const __nv_bfloat16* x, int64_t x_stride,
                                const __nv_bfloat16* weight, __nv_bfloat16* out, int64_t out_stride,
                                int64_t cols, float eps) {
  __shared__ float scratch[32];
  const __nv_bfloat16* in = x + blockIdx.x * x_stride;
  __nv_bfloat16* o = out + blockIdx.x * out_stride;
  float sum_squares = 0.0f;
  if constexpr (kVector) {
    for (int64_t c = threadIdx.x * 8; c < cols; c += blockDim.x * 8) {
      const Float8 v = load_bf16x8(in + c);
#pragma unroll
      for (float e : v.v) sum_squares += e * e;
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float e = __bfloat162float(in[c]);
      sum_squares += e * e;
    }
  }
  const float inv_rms = rsqrtf(block_sum(sum_squares, scratch) / static_cast<float>(cols) + eps);
  write_rms_scaled<kVector>(in, weight, o, cols, inv_rms);
}

// Two passes over the row (mean, then variance about it) as the fp32 reference does.
__global__ void layer_norm_kernel(const __nv_bfloat16* x, int64_t x_stride,
                                  const __nv_bfloat16* weight, const __nv_bfloat16* bias,
                                  __nv_bfloat16* out, int64_t out_stride, int64_t cols, float eps) {
  __shared__ float scratch[32];
  const __nv_bfloat16* in = x + blockIdx.x * x_stride;
  __nv_bfloat16* o = out + blockIdx.x * out_stride;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += __bfloat162float(in[c]);
  const float mean = block_sum(sum, scratch) / static_cast<float>(cols);
  float sum_squares = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = __bfloat162float(in[c]) - mean;
    sum_squares += d * d;
  }
  const float inv_std = rsqrtf(block_sum(sum_squares, scratch) / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float b = bias != nullptr ? __bfloat162float(bias[c]) : 0.0f;
    o[c] = __float2bfloat16(
        (__bfloat162float(in[c]) - mean) * inv_std * __bfloat162float(weight[c]) + b);
  }
}

// Rounds to bf16 as a store would and widens back: the norms below read the residual as stored.
__device__ __forceinline__ float as_stored(float value) {
  return __bfloat162float(__float2bfloat16(value));
}

// residual += delta, out = rms_norm(residual): one block per row. Each thread reads back only
// the residual columns it wrote itself, so the second pass needs no barrier beyond block_sum's.
template <bool kVector>
__global__ void add_rms_norm_kernel(__nv_bfloat16* residual, int64_t residual_stride,
                                    const __nv_bfloat16* delta, int64_t delta_stride,
                                    const __nv_bfloat16* weight, __nv_bfloat16* out,
                                    int64_t out_stride, int64_t cols, float eps) {
  __shared__ float scratch[32];
  __nv_bfloat16* h = residual + blockIdx.x * residual_stride;
  const __nv_bfloat16* d = delta + blockIdx.x * delta_stride;
  __nv_bfloat16* o = out + blockIdx.x * out_stride;
  float sum_squares = 0.0f;
  if constexpr (kVector) {
    for (int64_t c = threadIdx.x * 8; c < cols; c += blockDim.x * 8) {
      Float8 v = load_bf16x8(h + c);
      const Float8 e = load_bf16x8(d + c);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        v.v[i] = as_stored(v.v[i] + e.v[i]);
        sum_squares += v.v[i] * v.v[i];
      }
      store_bf16x8(h + c, v);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float v = as_stored(__bfloat162float(h[c]) + __bfloat162float(d[c]));
      h[c] = __float2bfloat16(v);
      sum_squares += v * v;
    }
  }
  const float inv_rms = rsqrtf(block_sum(sum_squares, scratch) / static_cast<float>(cols) + eps);
  write_rms_scaled<kVector>(h, weight, o, cols, inv_rms);
}

// residual += delta, out = layer_norm(residual), with layer_norm_kernel's two statistics passes.
__global__ void add_layer_norm_kernel(__nv_bfloat16* residual, int64_t residual_stride,
                                      const __nv_bfloat16* delta, int64_t delta_stride,
                                      const __nv_bfloat16* weight, const __nv_bfloat16* bias,
                                      __nv_bfloat16* out, int64_t out_stride, int64_t cols,
                                      float eps) {
  __shared__ float scratch[32];
  __nv_bfloat16* h = residual + blockIdx.x * residual_stride;
  const __nv_bfloat16* d = delta + blockIdx.x * delta_stride;
  __nv_bfloat16* o = out + blockIdx.x * out_stride;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = as_stored(__bfloat162float(h[c]) + __bfloat162float(d[c]));
    h[c] = __float2bfloat16(v);
    sum += v;
  }
  const float mean = block_sum(sum, scratch) / static_cast<float>(cols);
  float sum_squares = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = __bfloat162float(h[c]) - mean;
    sum_squares += v * v;
  }
  const float inv_std = rsqrtf(block_sum(sum_squares, scratch) / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float b = bias != nullptr ? __bfloat162float(bias[c]) : 0.0f;
    o[c] = __float2bfloat16(
        (__bfloat162float(h[c]) - mean) * inv_std * __bfloat162float(weight[c]) + b);
  }
}

}  // namespace

cudaError_t launch_rms_norm(Tensor x, Tensor weight, float eps, Tensor out, cudaStream_t stream) {
  if (x.rows == 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>(x.rows);
  if (rows_vectorizable(x) && rows_vectorizable(out) && rows_vectorizable(weight)) {
    rms_norm_kernel<true><<<blocks, kThreads, 0, stream>>>(
        x.as<__nv_bfloat16>(), x.row_stride, weight.as<__nv_bfloat16>(), out.as<__nv_bfloat16>(),
        out.row_stride, x.cols, eps);
  } else {
    rms_norm_kernel<false><<<blocks, kThreads, 0, stream>>>(
        x.as<__nv_bfloat16>(), x.row_stride, weight.as<__nv_bfloat16>(), out.as<__nv_bfloat16>(),
        out.row_stride, x.cols, eps);
  }
  return cudaGetLastError();
}

cudaError_t launch_layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out,
                              cudaStream_t stream) {
  if (x.rows == 0) return cudaSuccess;
  layer_norm_kernel<<<static_cast<unsigned>(x.rows), kThreads, 0, stream>>>(
      x.as<__nv_bfloat16>(), x.row_stride, weight.as<__nv_bfloat16>(),
      bias.empty() ? nullptr : bias.as<__nv_bfloat16>(), out.as<__nv_bfloat16>(), out.row_stride,
      x.cols, eps);
  return cudaGetLastError();
}

cudaError_t launch_add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor out,
                                cudaStream_t stream) {
  if (residual.rows == 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>(residual.rows);
  if (rows_vectorizable(residual) && rows_vectorizable(delta) && rows_vectorizable(weight) &&
      rows_vectorizable(out)) {
    add_rms_norm_kernel<true><<<blocks, kThreads, 0, stream>>>(
        residual.as<__nv_bfloat16>(), residual.row_stride, delta.as<__nv_bfloat16>(),
        delta.row_stride, weight.as<__nv_bfloat16>(), out.as<__nv_bfloat16>(), out.row_stride,
        residual.cols, eps);
  } else {
    add_rms_norm_kernel<false><<<blocks, kThreads, 0, stream>>>(
        residual.as<__nv_bfloat16>(), residual.row_stride, delta.as<__nv_bfloat16>(),
        delta.row_stride, weight.as<__nv_bfloat16>(), out.as<__nv_bfloat16>(), out.row_stride,
        residual.cols, eps);
  }
  return cudaGetLastError();
}

cudaError_t launch_add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias,
                                  float eps, Tensor out, cudaStream_t stream) {
  if (residual.rows == 0) return cudaSuccess;
  add_layer_norm_kernel<<<static_cast<unsigned>(residual.rows), kThreads, 0, stream>>>(
      residual.as<__nv_bfloat16>(), residual.row_stride, delta.as<__nv_bfloat16>(),
      delta.row_stride, weight.as<__nv_bfloat16>(),
      bias.empty() ? nullptr : bias.as<__nv_bfloat16>(), out.as<__nv_bfloat16>(), out.row_stride,
      residual.cols, eps);
  return cudaGetLastError();
}

}  // namespace runahead
