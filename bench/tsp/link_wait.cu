#include "bench/tsp/link_wait.h"

namespace runahead::tsp {

// %globaltimer counts nanoseconds independently of the SM clock, so the wait is right whatever
// clock the GPU runs at. Sleeping between reads keeps the spinning thread off the issue slots of
// any other work on the SM.
static __device__ __forceinline__ uint64_t global_timer_ns() {
  uint64_t now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  return now;
}

static __global__ void link_wait_kernel(uint64_t nanoseconds) {
  const uint64_t start = global_timer_ns();
  while (global_timer_ns() - start < nanoseconds) __nanosleep(256);
}

cudaError_t launch_link_wait(int64_t nanoseconds, cudaStream_t stream) {
  if (nanoseconds <= 0) return cudaSuccess;
  link_wait_kernel<<<1, 1, 0, stream>>>(static_cast<uint64_t>(nanoseconds));
  return cudaGetLastError();
}

}  // namespace runahead::tsp
