#include "runtime/actor_system.h"

#include <stdexcept>

#include <asio/post.hpp>

#include "core/log.h"

namespace runahead::runtime {

ActorSystem::ActorSystem(ActorSystemOptions options) : options_(options) {
  if (options_.deterministic) {
    auto manual = std::make_unique<ManualClock>();
    manual_clock_ = manual.get();
    clock_ = std::move(manual);
    timers_ = std::make_unique<TimerService>(nullptr, *clock_);
  } else {
    if (options_.threads < 1) {
      throw std::invalid_argument("ActorSystem: threaded mode needs at least one thread");
    }
    clock_ = std::make_unique<SteadyClock>();
    timers_ = std::make_unique<TimerService>(&io_, *clock_);
  }
  if (options_.default_mailbox_capacity == 0) {
    throw std::invalid_argument("ActorSystem: default_mailbox_capacity must be positive");
  }
}

ActorSystem::~ActorSystem() {
  stop(StopMode::kDrop);
}

void ActorSystem::start() {
  std::lock_guard lock(mutex_);
  if (started_ || stopped_ || options_.deterministic) return;
  started_ = true;
  work_.emplace(io_.get_executor());
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] {
      try {
        io_.run();
      } catch (const std::exception& error) {
        // Handlers catch their own errors; anything else is a bug worth seeing in the logs.
        logger("actor")->critical("actor system thread stopped: {}", error.what());
      }
    });
  }
}

bool ActorSystem::stopped() const {
  std::lock_guard lock(mutex_);
  return stopped_;
}

void ActorSystem::register_cell(std::shared_ptr<detail::CellBase> cell) {
  std::lock_guard lock(mutex_);
  cells_.push_back(std::move(cell));
}

void ActorSystem::notify_idle() {
  { std::lock_guard lock(mutex_); }
  idle_changed_.notify_all();
}

void ActorSystem::wait_all_idle() {
  auto all_idle = [this] {
    for (const auto& cell : cells_) {
      if (!cell->idle()) return false;
    }
    return true;
  };
  if (options_.deterministic || threads_.empty()) {
    // Nobody else runs handlers: run them here until every mailbox is empty.
    if (io_.stopped()) io_.restart();
    while (!all_idle()) {
      if (io_.poll_one() == 0) break;
    }
    return;
  }
  std::unique_lock lock(mutex_);
  idle_changed_.wait(lock, all_idle);
}

void ActorSystem::stop(StopMode mode) {
  std::vector<std::shared_ptr<detail::CellBase>> cells;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  timers_->shutdown();
  {
    std::lock_guard lock(mutex_);
    cells = cells_;
  }
  for (auto& cell : cells) cell->close(mode == StopMode::kDrop);
  wait_all_idle();
  // Quiescent: no handler runs and none can be queued, so on_stop() may run here.
  for (auto& cell : cells) cell->finish();
  // Let what on_stop() started (closing sockets, final writes) run before the loop stops.
  settle_io();
  work_.reset();
  io_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  std::lock_guard lock(mutex_);
  cells_.clear();
}

void ActorSystem::settle_io() {
  if (options_.deterministic || threads_.empty()) {
    if (io_.stopped()) io_.restart();
    for (int i = 0; i < 1024 && io_.poll_one() > 0; ++i) {
    }
    return;
  }
  // A barrier that occupies every thread: once all have reached it, every handler queued
  // before it has run. Twice, for handlers those handlers posted.
  struct Barrier {
    std::mutex mutex;
    std::condition_variable changed;
    size_t arrived = 0;
  };
  const size_t threads = threads_.size();
  for (int round = 0; round < 2; ++round) {
    auto barrier = std::make_shared<Barrier>();
    for (size_t i = 0; i < threads; ++i) {
      asio::post(io_, [barrier, threads] {
        std::unique_lock lock(barrier->mutex);
        ++barrier->arrived;
        barrier->changed.notify_all();
        barrier->changed.wait_for(lock, std::chrono::seconds(1),
                                  [&] { return barrier->arrived >= threads; });
      });
    }
    std::unique_lock lock(barrier->mutex);
    if (!barrier->changed.wait_for(lock, std::chrono::seconds(2),
                                   [&] { return barrier->arrived >= threads; })) {
      logger("actor")->warn("actor system: handlers still busy at stop; stopping anyway");
      return;
    }
  }
}

size_t ActorSystem::run_one() {
  if (io_.stopped()) io_.restart();
  return io_.run_one();
}

size_t ActorSystem::poll_one() {
  if (io_.stopped()) io_.restart();
  return io_.poll_one();
}

size_t ActorSystem::poll() {
  if (io_.stopped()) io_.restart();
  return io_.poll();
}

void ActorSystem::advance(Duration by) {
  if (manual_clock_ == nullptr) {
    throw std::logic_error("ActorSystem::advance: only a deterministic system has a manual clock");
  }
  manual_clock_->advance(by);
  timers_->fire_due();
}

}  // namespace runahead::runtime
