// The thread a worker computes on: jobs run one at a time, in the order they were queued, so
// requests pass through a worker in order (request B starts here while A is on later workers).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace runahead {

class ComputeQueue {
 public:
  explicit ComputeQueue(std::string name);
  ~ComputeQueue();  // stop(): queued jobs are dropped, the running one completes
  ComputeQueue(const ComputeQueue&) = delete;
  ComputeQueue& operator=(const ComputeQueue&) = delete;

  // False once stopped.
  bool push(std::function<void()> job);
  void stop();
  size_t queued() const;

 private:
  void loop();

  const std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace runahead
