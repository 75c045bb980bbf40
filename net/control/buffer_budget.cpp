#include "net/control/buffer_budget.h"

namespace runahead::net {

bool BufferBudget::try_charge(size_t bytes) {
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ || used > limit_ - bytes) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  size_t peak = peak_.load(std::memory_order_relaxed);
  while (used + bytes > peak &&
         !peak_.compare_exchange_weak(peak, used + bytes, std::memory_order_relaxed)) {
  }
  return true;
}

void BufferBudget::release(size_t bytes) {
  used_.fetch_sub(bytes, std::memory_order_relaxed);
}

}  // namespace runahead::net
