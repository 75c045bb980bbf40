#include "tests/support/deferred_copy_backend.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

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

class DeferredCopyBackend final : public Backend {
 public:
  DeferredCopyBackend(std::unique_ptr<Backend> inner, uint64_t seed)
      : inner_(std::move(inner)), to_host_(seed), from_host_(seed + 1) {}

  std::string name() const override { return inner_->name(); }
  DeviceKind device_kind() const override { return inner_->device_kind(); }
  int device_index() const override { return inner_->device_index(); }
  DType compute_dtype() const override { return inner_->compute_dtype(); }
  size_t free_memory_bytes() const override { return inner_->free_memory_bytes(); }
  Result<Buffer> allocate(size_t bytes) override { return inner_->allocate(bytes); }
  Result<Buffer> allocate_host(size_t bytes) override { return inner_->allocate_host(bytes); }
  Status copy_from_host(const void* src, Tensor dst) override {
    return inner_->copy_from_host(src, dst);
  }
  Status copy_to_host(Tensor src, void* dst) override { return inner_->copy_to_host(src, dst); }
  Status synchronize() override { return inner_->synchronize(); }

  Status copy_to_host_async(Tensor src, void* dst, CopyDone done) override {
    to_host_.push(
        [this, src, dst, done = std::move(done)] { done(inner_->copy_to_host(src, dst)); });
    return Status::ok();
  }
  Status copy_from_host_async(const void* src, Tensor dst, CopyDone done) override {
    from_host_.push(
        [this, src, dst, done = std::move(done)] { done(inner_->copy_from_host(src, dst)); });
    return Status::ok();
  }

  Result<int32_t> argmax(Tensor row) override { return inner_->argmax(row); }
  Status fill_uniform(Tensor dst, uint64_t seed, float scale, float offset) override {
    return inner_->fill_uniform(dst, seed, scale, offset);
  }
  void embed(Tensor table, const int32_t* tokens, Tensor out) override {
    inner_->embed(table, tokens, out);
  }
  void rms_norm(Tensor x, Tensor weight, float eps, Tensor out) override {
    inner_->rms_norm(x, weight, eps, out);
  }
  void layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) override {
    inner_->layer_norm(x, weight, bias, eps, out);
  }
  void add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor out) override {
    inner_->add_rms_norm(residual, delta, weight, eps, out);
  }
  void add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias, float eps,
                      Tensor out) override {
    inner_->add_layer_norm(residual, delta, weight, bias, eps, out);
  }
  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override {
    inner_->matmul(x, w, bias, out);
  }
  void rope(const RopeArgs& args) override { inner_->rope(args); }
  void attention(const AttentionArgs& args) override { inner_->attention(args); }
  void swiglu(Tensor gate_up, Tensor out) override { inner_->swiglu(gate_up, out); }
  void gelu(Tensor x, Tensor out) override { inner_->gelu(x, out); }
  void add(Tensor a, Tensor b, Tensor out) override { inner_->add(a, b, out); }
  void copy(Tensor src, Tensor dst) override { inner_->copy(src, dst); }

 private:
  std::unique_ptr<Backend> inner_;
  // Declared last: destroyed first, so queued copies finish while inner_ still exists.
  CopyQueue to_host_;
  CopyQueue from_host_;
};

}  // namespace

std::unique_ptr<Backend> make_deferred_copy_backend(std::unique_ptr<Backend> inner, uint64_t seed) {
  return std::make_unique<DeferredCopyBackend>(std::move(inner), seed);
}

}  // namespace runahead::testing
