#include "actors/compute_queue.h"

#include <exception>

#include "core/log.h"

namespace runahead {

ComputeQueue::ComputeQueue(std::string name)
    : name_(std::move(name)), thread_([this] { loop(); }) {}

ComputeQueue::~ComputeQueue() {
  stop();
}

bool ComputeQueue::push(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
  }
  changed_.notify_one();
  return true;
}

void ComputeQueue::stop() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    dropped.swap(jobs_);
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t ComputeQueue::queued() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void ComputeQueue::loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& error) {
      logger("worker")->error("{}: compute job threw: {}", name_, error.what());
    }
  }
}

}  // namespace runahead
