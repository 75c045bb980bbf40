// Timers of an actor system: one queue ordered by deadline, woken by one Asio timer in
// real time, or fired by hand when a test advances a manual clock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "runtime/clock.h"

namespace runahead::runtime {

using TimerId = uint64_t;

// Whatever a timer fires into (an actor's mailbox).
class TimerTarget {
 public:
  virtual ~TimerTarget() = default;
  virtual void timer_fired(TimerId id) = 0;
};

class TimerService {
 public:
  // `io` null: manual mode, fire_due() is called by whoever advances the clock.
  TimerService(asio::io_context* io, const Clock& clock);
  ~TimerService();
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  // Fires once at `deadline`, then every `period` if it is positive, until cancelled.
  TimerId schedule(TimePoint deadline, Duration period, std::weak_ptr<TimerTarget> target);
  // Returns whether the timer was still scheduled.
  bool cancel(TimerId id);
  // Fires every timer due by now, in deadline order (ties: creation order); a periodic timer
  // fires once per period elapsed.
  void fire_due();
  // Cancels every timer; later schedule() calls return timers that never fire.
  void shutdown();
  size_t pending() const;

 private:
  struct Entry {
    Duration period;
    std::weak_ptr<TimerTarget> target;
  };
  using Key = std::pair<TimePoint, TimerId>;
  void rearm_locked();

  asio::io_context* io_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  bool shut_down_ = false;
  TimerId next_id_ = 1;
  std::map<Key, Entry> queue_;
  std::unordered_map<TimerId, TimePoint> deadlines_;
  std::optional<asio::steady_timer> wake_;
  std::optional<TimePoint> armed_for_;
};

}  // namespace runahead::runtime
