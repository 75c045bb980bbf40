#include "tests/cuda/faulting_kernel.h"

namespace runahead::testing {
namespace {

__global__ void faulting_kernel() {
  __trap();
}

}  // namespace

cudaError_t launch_faulting_kernel(cudaStream_t stream) {
  faulting_kernel<<<1, 1, 0, stream>>>();
  return cudaGetLastError();
}

}  // namespace runahead::testing
