#include "tests/support/deferred_copy_backend.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "kernels/forwarding_backend.h"

namespace runahead::testing {
namespace {

// One copy engine: runs queued copies in order, each after a random delay of up to 300 us.
class CopyQueue {
 public:
  explicit CopyQueue(uint64_t seed) : random_(seed), thread_([this] { loop(); }) {}
  ~CopyQueue() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
    thread_.join();
  }
  void push(std::function<void()> copy) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(copy));
    }
    ready_.notify_all();
  }

 private:
  void loop() {
    std::uniform_int_distribution<int> delay_us(0, 300);
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued ran
      std::function<void()> copy = std::move(queue_.front());
      queue_.pop_front();
      const int delay = delay_us(random_);
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(delay));
      copy();
      lock.lock();
    }
  }

  std::mt19937_64 random_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

class DeferredCopyBackend final : public ForwardingBackend {
 public:
  DeferredCopyBackend(std::unique_ptr<Backend> inner, uint64_t seed)
      : ForwardingBackend(*inner), owned_(std::move(inner)), to_host_(seed), from_host_(seed + 1) {}

  Status copy_to_host_async(Tensor src, void* dst, CopyDone done) override {
    to_host_.push(
        [this, src, dst, done = std::move(done)] { done(inner().copy_to_host(src, dst)); });
    return Status::ok();
  }
  Status copy_from_host_async(const void* src, Tensor dst, CopyDone done) override {
    from_host_.push(
        [this, src, dst, done = std::move(done)] { done(inner().copy_from_host(src, dst)); });
    return Status::ok();
  }

 private:
  std::unique_ptr<Backend> owned_;
  // Declared last: destroyed first, so queued copies finish while the inner backend exists.
  CopyQueue to_host_;
  CopyQueue from_host_;
};

}  // namespace

std::unique_ptr<Backend> make_deferred_copy_backend(std::unique_ptr<Backend> inner, uint64_t seed) {
  return std::make_unique<DeferredCopyBackend>(std::move(inner), seed);
}

}  // namespace runahead::testing
