// A backend that runs another's operations until a set number of matrix products, then fails
// as a GPU does after a kernel fault: the device error is sticky, every later check
// (synchronize(), the copies, argmax(), allocations) reports it, and the operations do
// nothing. It exercises the path a real fault takes: the request fails naming the fault and the
// worker leaves the cluster.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/forwarding_backend.h"

namespace runahead {

class FaultInjectingBackend : public ForwardingBackend {
 public:
  // Wraps `inner`: once counting started, `after_matmuls` (>= 1) matrix products run and the
  // next one faults.
  static std::unique_ptr<FaultInjectingBackend> wrap(std::unique_ptr<Backend> inner,
                                                     int64_t after_matmuls);

  // Matrix products before this call are not counted (loading weights, timing the device at
  // start-up); from here on they are, across requests.
  virtual void start_counting() = 0;
  virtual bool failed() const = 0;

 protected:
  using ForwardingBackend::ForwardingBackend;
};

}  // namespace runahead
