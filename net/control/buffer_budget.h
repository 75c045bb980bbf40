// The bytes a server's connections may hold in buffers together: frames partly received and
// frames queued to be written. Each connection charges what it allocates and releases what it
// frees; a charge past the limit is refused and the connection that asked is closed, so a flood
// of connections cannot take the process's memory past the limit.
#pragma once

#include <atomic>
#include <cstddef>

namespace runahead::net {

class BufferBudget {
 public:
  explicit BufferBudget(size_t limit_bytes) : limit_(limit_bytes) {}
  BufferBudget(const BufferBudget&) = delete;
  BufferBudget& operator=(const BufferBudget&) = delete;

  // Charges `bytes` unless that would pass the limit. Thread-safe.
  [[nodiscard]] bool try_charge(size_t bytes);
  void release(size_t bytes);

  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_; }
  // The most ever charged at once.
  size_t peak() const { return peak_.load(std::memory_order_relaxed); }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
  std::atomic<size_t> peak_{0};
};

}  // namespace runahead::net
