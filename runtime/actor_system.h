// The actor system: an Asio io_context run by a few threads (or stepped by a test), the timers,
// and the actors spawned on it. Actors are declared in runtime/actor.h.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "core/status.h"
#include "runtime/clock.h"
#include "runtime/timer_service.h"

namespace runahead::runtime {

template <typename M>
class ActorRef;

namespace detail {
// What the system needs of an actor, whatever its message type (runtime/actor.h).
class CellBase : public TimerTarget {
 public:
  virtual const std::string& name() const = 0;
  // Refuses new messages; kDrop also destroys the queued ones.
  virtual void close(bool drop_queued) = 0;
  // Nothing queued and no handler running.
  virtual bool idle() const = 0;
  // Runs the actor's on_stop() and destroys the actor.
  virtual void finish() = 0;
};
}  // namespace detail

enum class StopMode {
  kDrain,  // messages accepted before stop() are handled, then the actors stop
  kDrop,   // queued messages are destroyed unhandled; a handler already running completes
};

struct ActorSystemOptions {
  // Threads running the io_context (threaded mode).
  int threads = 1;
  // Deterministic mode: no threads and a manual clock; the test steps the system with
  // run_one()/poll_one()/poll() and moves time with advance().
  bool deterministic = false;
  size_t default_mailbox_capacity = 1 << 16;
};

struct SpawnOptions {
  size_t mailbox_capacity = 0;  // 0: the system's default
};

class ActorSystem {
 public:
  explicit ActorSystem(ActorSystemOptions options = {});
  ~ActorSystem();  // stop(kDrop) if still running
  ActorSystem(const ActorSystem&) = delete;
  ActorSystem& operator=(const ActorSystem&) = delete;

  static ActorSystemOptions deterministic_options() {
    ActorSystemOptions options;
    options.deterministic = true;
    options.threads = 0;
    return options;
  }

  // Starts the threads (threaded mode; nothing in deterministic mode). Actors may be spawned
  // before or after: their messages wait in the mailbox.
  void start();
  // Stops every actor (closing mailboxes, cancelling timers), runs each actor's on_stop(),
  // joins the threads. Idempotent. Must not be called from a handler.
  void stop(StopMode mode = StopMode::kDrain);
  bool stopped() const;

  // Creates actor A (constructed from `args`), runs its on_start() and returns its address,
  // or the error on_start() returned.
  template <typename A, typename... Args>
  Result<ActorRef<typename A::Message>> spawn(std::string name, SpawnOptions options,
                                              Args&&... args);
  template <typename A, typename... Args>
  Result<ActorRef<typename A::Message>> spawn(std::string name, Args&&... args) {
    return spawn<A>(std::move(name), SpawnOptions{}, std::forward<Args>(args)...);
  }

  asio::io_context& io() { return io_; }
  TimePoint now() const { return clock_->now(); }
  TimerService& timers() { return *timers_; }
  bool deterministic() const { return options_.deterministic; }

  // Deterministic mode: each handler run by Asio is one step (one actor message, one timer
  // delivery, one network completion). run_one() blocks while work is outstanding but none is
  // ready (a pending socket read); poll_one() and poll() never block.
  size_t run_one();
  size_t poll_one();
  size_t poll();
  // Moves the manual clock and fires the timers that became due (their messages are queued;
  // poll() handles them).
  void advance(Duration by);

  // For actor cells: called when a cell becomes idle, so that stop() can wait for a drain.
  void notify_idle();

 private:
  void register_cell(std::shared_ptr<detail::CellBase> cell);
  size_t default_capacity() const { return options_.default_mailbox_capacity; }
  void wait_all_idle();
  void settle_io();

  ActorSystemOptions options_;
  asio::io_context io_;
  std::unique_ptr<Clock> clock_;
  ManualClock* manual_clock_ = nullptr;
  std::unique_ptr<TimerService> timers_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;

  mutable std::mutex mutex_;
  std::condition_variable idle_changed_;
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::shared_ptr<detail::CellBase>> cells_;
};

}  // namespace runahead::runtime
