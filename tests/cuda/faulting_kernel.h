// A kernel that faults on purpose (tests of the sticky-error path only).
#pragma once

#include <cuda_runtime_api.h>

namespace runahead::testing {

// Launches one thread that executes a trap instruction on `stream`: the kernel fails, and the
// error is sticky for the whole CUDA context of the process.
cudaError_t launch_faulting_kernel(cudaStream_t stream);

}  // namespace runahead::testing
