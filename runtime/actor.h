// Actors: an object with a mailbox of messages of one type M (a std::variant of message
// structs), handled one at a time, in the order they were accepted, on the system's threads.
//
//   struct Ping { int n; };  struct Pong { int n; };
//   using EchoMessage = std::variant<Ping, Pong>;
//   class Echo : public Actor<EchoMessage> {
//     void on_message(EchoMessage message) override {
//       std::visit(Overloaded{[&](Ping& ping) { ... }, [&](Pong& pong) { ... }}, message);
//     }
//   };
//   auto echo = system.spawn<Echo>("echo");   // Result<ActorRef<EchoMessage>>
//   Status sent = echo->tell(Ping{1});
//
// A handler runs to completion before the next message of the same actor starts; different
// actors run in parallel on the system's threads. Timers and cancellation are per actor and are
// used from its handlers.
#pragma once

#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <asio/post.hpp>

#include "core/log.h"
#include "core/status.h"
#include "runtime/actor_system.h"
#include "runtime/cancellation.h"

namespace runahead::runtime {

template <typename M>
class Actor;

namespace detail {

// An actor's mailbox and timers; owns the actor. Shared by the system and every ActorRef.
template <typename M>
class Cell final : public CellBase, public std::enable_shared_from_this<Cell<M>> {
 public:
  Cell(ActorSystem& system, std::string name, size_t capacity, std::unique_ptr<Actor<M>> actor)
      : system_(system), name_(std::move(name)), capacity_(capacity), actor_(std::move(actor)) {}

  const std::string& name() const override { return name_; }
  ActorSystem& system() const { return system_; }
  Actor<M>& actor() { return *actor_; }

  Status push(M message) { return push_entry(Entry{std::move(message), 0}); }

  size_t queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

  TimerId start_timer(Duration delay, Duration period, std::optional<M> once,
                      std::function<M()> every) {
    std::lock_guard lock(mutex_);
    if (closed_) return 0;
    TimerId id = system_.timers().schedule(system_.now() + delay, period, this->weak_from_this());
    timers_.emplace(id, TimerRecord{std::move(once), std::move(every)});
    return id;
  }

  bool cancel_timer(TimerId id) {
    bool known = false;
    {
      std::lock_guard lock(mutex_);
      known = timers_.erase(id) > 0;
    }
    system_.timers().cancel(id);
    return known;
  }

  void timer_fired(TimerId id) override {
    std::optional<M> message;
    {
      std::lock_guard lock(mutex_);
      auto it = timers_.find(id);
      if (it == timers_.end() || closed_) return;
      if (it->second.once) {
        message = std::move(it->second.once);
        it->second.once.reset();
      } else if (it->second.every) {
        message = it->second.every();
      } else {
        return;  // a one-shot timer whose message is already queued
      }
    }
    Status queued = push_entry(Entry{std::move(*message), id});
    if (!queued.is_ok()) {
      logger("actor")->warn("timer {} of actor {} dropped: {}", id, name_, queued.to_string());
    }
  }

  void close(bool drop_queued) override {
    std::list<Entry> dropped;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      timers_.clear();
      if (drop_queued) dropped.swap(queue_);
    }
    // Destroyed outside the lock: a message's destructor may release other actors' references.
    dropped.clear();
    system_.notify_idle();
  }

  bool idle() const override {
    std::lock_guard lock(mutex_);
    return queue_.empty() && !running_;
  }

  void finish() override {
    if (actor_) actor_->on_stop();
    actor_.reset();
  }

  // Handles one message, then schedules the next: each message is one Asio handler.
  void run_one() {
    std::list<Entry> taken;  // the front node, spliced out without a copy
    bool stale_timer = false;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) {
        scheduled_ = false;
        return;
      }
      taken.splice(taken.begin(), queue_, queue_.begin());
      running_ = true;
      const TimerId timer = taken.front().timer;
      if (timer != 0) {
        // A timer cancelled after it fired must not deliver: the record is the truth.
        auto it = timers_.find(timer);
        if (it == timers_.end()) {
          stale_timer = true;
        } else if (!it->second.every) {
          timers_.erase(it);
        }
      }
    }
    if (!stale_timer && actor_) {
      try {
        actor_->on_message(std::move(taken.front().message));
      } catch (const std::exception& error) {
        logger("actor")->error("actor {}: handler threw: {}", name_, error.what());
      }
    }
    taken.clear();
    bool now_idle = false;
    {
      std::lock_guard lock(mutex_);
      running_ = false;
      if (queue_.empty()) {
        scheduled_ = false;
        now_idle = true;
      } else {
        post_locked();
      }
    }
    if (now_idle) system_.notify_idle();
  }

 private:
  struct Entry {
    M message;
    TimerId timer;  // 0: not from a timer
  };
  struct TimerRecord {
    std::optional<M> once;
    std::function<M()> every;
  };

  Status push_entry(Entry entry) {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return make_error(ErrorCode::kUnavailable, fmt::format("actor {} is stopped", name_));
    }
    if (queue_.size() >= capacity_) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("mailbox of actor {} is full ({} messages)", name_, capacity_));
    }
    queue_.push_back(std::move(entry));
    if (!scheduled_) post_locked();
    return Status::ok();
  }

  void post_locked() {
    scheduled_ = true;
    asio::post(system_.io(), [self = this->shared_from_this()] { self->run_one(); });
  }

  ActorSystem& system_;
  const std::string name_;
  const size_t capacity_;
  std::unique_ptr<Actor<M>> actor_;

  mutable std::mutex mutex_;
  std::list<Entry> queue_;
  bool scheduled_ = false;  // a run_one() is posted: at most one at a time
  bool running_ = false;
  bool closed_ = false;
  std::unordered_map<TimerId, TimerRecord> timers_;
};

}  // namespace detail

// The address of an actor: copyable, usable from any thread, safe after the actor stopped
// (tell() then fails).
template <typename M>
class ActorRef {
 public:
  ActorRef() = default;

  // Queues `message`. Fails with kUnavailable once the actor is stopped (or for an empty ref),
  // kResourceExhausted when its mailbox is full.
  Status tell(M message) const {
    auto cell = cell_.lock();
    if (!cell) return make_error(ErrorCode::kUnavailable, "actor is gone");
    return cell->push(std::move(message));
  }
  bool valid() const { return !cell_.expired(); }
  std::string name() const {
    auto cell = cell_.lock();
    return cell ? cell->name() : std::string("(gone)");
  }

 private:
  friend class ActorSystem;
  template <typename>
  friend class Actor;
  explicit ActorRef(std::weak_ptr<detail::Cell<M>> cell) : cell_(std::move(cell)) {}
  std::weak_ptr<detail::Cell<M>> cell_;
};

template <typename M>
class Actor {
 public:
  using Message = M;
  virtual ~Actor() = default;
  Actor() = default;
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

 protected:
  // Runs in spawn(), before anyone else can reach the actor; an error fails the spawn.
  virtual Status on_start() { return Status::ok(); }
  // Handles one message; visit every alternative of M explicitly (runtime/overloaded.h).
  virtual void on_message(M message) = 0;
  // Runs once in ActorSystem::stop(), after the last message.
  virtual void on_stop() {}

  ActorRef<M> self() const { return ActorRef<M>(cell_); }
  ActorSystem& system() const { return *system_; }
  const std::string& name() const { return name_; }
  TimePoint now() const { return system_->now(); }

  // Delivers `message` to this actor after `delay`. A non-zero `request` ties the timer to that
  // request's scope: cancel_request() cancels it.
  TimerId start_timer(Duration delay, M message, RequestId request = 0) {
    auto cell = cell_.lock();
    if (!cell) return 0;
    TimerId id = cell->start_timer(delay, Duration::zero(), std::move(message), nullptr);
    tie_to_request(id, request);
    return id;
  }
  // Delivers make() every `period` (first after one period) until cancelled.
  TimerId start_periodic(Duration period, std::function<M()> make, RequestId request = 0) {
    auto cell = cell_.lock();
    if (!cell || period <= Duration::zero()) return 0;
    TimerId id = cell->start_timer(period, period, std::nullopt, std::move(make));
    tie_to_request(id, request);
    return id;
  }
  // Returns whether the timer was live; a cancelled timer delivers nothing more, even a
  // message it already queued.
  bool cancel_timer(TimerId id) {
    auto cell = cell_.lock();
    return cell && cell->cancel_timer(id);
  }

  RequestScopes& requests() { return requests_; }
  CancellationToken request_token(RequestId request) { return requests_.token(request); }
  // Cancels the request's token, its timers and every undo action registered under it.
  bool cancel_request(RequestId request, const std::string& reason) {
    return requests_.cancel(request, reason);
  }
  void finish_request(RequestId request) { requests_.finish(request); }

 private:
  friend class detail::Cell<M>;
  friend class ActorSystem;

  void tie_to_request(TimerId id, RequestId request) {
    if (request == 0 || id == 0) return;
    requests_.on_cancel(request, [this, id] { cancel_timer(id); });
  }

  ActorSystem* system_ = nullptr;
  std::string name_;
  std::weak_ptr<detail::Cell<M>> cell_;
  RequestScopes requests_;
};

template <typename A, typename... Args>
Result<ActorRef<typename A::Message>> ActorSystem::spawn(std::string name, SpawnOptions options,
                                                         Args&&... args) {
  using M = typename A::Message;
  static_assert(std::is_base_of_v<Actor<M>, A>, "spawn<A>: A must derive from Actor<A::Message>");
  {
    std::lock_guard lock(mutex_);
    if (stopped_) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("cannot spawn actor {}: the actor system is stopped", name));
    }
  }
  auto actor = std::make_unique<A>(std::forward<Args>(args)...);
  Actor<M>* base = actor.get();
  const size_t capacity =
      options.mailbox_capacity > 0 ? options.mailbox_capacity : default_capacity();
  auto cell = std::make_shared<detail::Cell<M>>(*this, name, capacity, std::move(actor));
  base->system_ = this;
  base->name_ = name;
  base->cell_ = cell;
  Status started = base->on_start();
  if (!started.is_ok()) {
    cell->close(/*drop_queued=*/true);
    return make_error(started.code(),
                      fmt::format("actor {} failed to start: {}", name, started.message()));
  }
  register_cell(cell);
  return ActorRef<M>(cell);
}

}  // namespace runahead::runtime
