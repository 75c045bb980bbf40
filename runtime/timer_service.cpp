#include "runtime/timer_service.h"

#include <vector>

namespace runahead::runtime {

TimerService::TimerService(asio::io_context* io, const Clock& clock) : io_(io), clock_(clock) {
  if (io_ != nullptr) wake_.emplace(*io_);
}

TimerService::~TimerService() {
  shutdown();
}

TimerId TimerService::schedule(TimePoint deadline, Duration period,
                               std::weak_ptr<TimerTarget> target) {
  std::lock_guard lock(mutex_);
  TimerId id = next_id_++;
  if (shut_down_) return id;
  queue_.emplace(Key{deadline, id}, Entry{period, std::move(target)});
  deadlines_.emplace(id, deadline);
  rearm_locked();
  return id;
}

bool TimerService::cancel(TimerId id) {
  std::lock_guard lock(mutex_);
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) return false;
  queue_.erase(Key{it->second, id});
  deadlines_.erase(it);
  return true;
}

void TimerService::fire_due() {
  std::vector<std::pair<TimerId, std::weak_ptr<TimerTarget>>> due;
  {
    std::lock_guard lock(mutex_);
    const TimePoint now = clock_.now();
    while (!queue_.empty() && queue_.begin()->first.first <= now) {
      auto node = queue_.extract(queue_.begin());
      const auto [deadline, id] = node.key();
      due.emplace_back(id, node.mapped().target);
      if (node.mapped().period > Duration::zero()) {
        node.key() = Key{deadline + node.mapped().period, id};
        deadlines_[id] = node.key().first;
        queue_.insert(std::move(node));
      } else {
        deadlines_.erase(id);
      }
    }
    armed_for_.reset();
    rearm_locked();
  }
  // Targets are called without the lock: they may schedule or cancel timers.
  for (auto& [id, weak_target] : due) {
    if (auto target = weak_target.lock()) target->timer_fired(id);
  }
}

void TimerService::shutdown() {
  std::lock_guard lock(mutex_);
  shut_down_ = true;
  queue_.clear();
  deadlines_.clear();
  if (wake_) wake_->cancel();
  armed_for_.reset();
}

size_t TimerService::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void TimerService::rearm_locked() {
  if (!wake_ || shut_down_ || queue_.empty()) return;
  const TimePoint earliest = queue_.begin()->first.first;
  if (armed_for_ && *armed_for_ <= earliest) return;
  armed_for_ = earliest;
  // The real-time mode uses the steady clock, so its time points are the Asio timer's.
  wake_->expires_at(earliest);
  wake_->async_wait([this](const std::error_code& error) {
    if (error) return;  // re-armed for an earlier deadline, or shut down
    fire_due();
  });
}

}  // namespace runahead::runtime
