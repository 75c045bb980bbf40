// A GPU-side wait that stands for the time an emulated slow or noisy link would add to a
// collective (bench/tsp/link_emulation.h computes it). Enqueued after the collective on the same
// stream, it holds back everything behind it without any host timing.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace runahead::tsp {

// Enqueues on `stream` one thread that spins on the GPU's global nanosecond timer until
// `nanoseconds` have passed since it started; nothing when nanoseconds <= 0. Returns the launch
// error, if any.
cudaError_t launch_link_wait(int64_t nanoseconds, cudaStream_t stream);

}  // namespace runahead::tsp
