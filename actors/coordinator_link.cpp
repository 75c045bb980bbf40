#include "actors/coordinator_link.h"

#include <future>
#include <mutex>

#include <fmt/format.h>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "core/log.h"

namespace runahead {

using Clock = std::chrono::steady_clock;

// Shared with the handlers of attempts and waits, which may outlive a call into the link.
class CoordinatorLink::State : public std::enable_shared_from_this<CoordinatorLink::State> {
 public:
  State(asio::io_context& io, CoordinatorLinkOptions options, CoordinatorLinkCallbacks callbacks)
      : io_(io),
        strand_(asio::make_strand(io)),
        timer_(strand_),
        options_(std::move(options)),
        callbacks_(std::move(callbacks)),
        backoff_(options_.backoff,
                 std::hash<std::string>{}(options_.name) ^
                     static_cast<uint64_t>(Clock::now().time_since_epoch().count())) {}

  Status join() {
    std::promise<Status> joined;
    auto outcome = joined.get_future();
    attempt([&joined](Status status) { joined.set_value(std::move(status)); });
    Status status = outcome.get();
    if (!status.is_ok()) {
      return make_error(status.code(), options_.name + ": cannot join the coordinator at " +
                                           options_.address + ": " + status.message());
    }
    return Status::ok();
  }

  void rejoin(const Status& why) {
    {
      std::lock_guard lock(mutex_);
      if (stopped_ || rejoining_) return;
      rejoining_ = true;
      client_.reset();  // closed already; its close was what brought us here
      lost_at_ = Clock::now();
      last_failure_.clear();
    }
    logger("worker")->warn(
        "{}: lost the coordinator at {} ({}); keeping the model loaded and "
        "joining again",
        options_.name, options_.address, why.message());
    asio::post(strand_, [self = shared_from_this()] {
      self->backoff_.reset();
      self->wait_then_attempt();
    });
  }

  void drop(Status why) {
    std::lock_guard lock(mutex_);
    if (client_) client_->close(std::move(why));
  }

  Status send(const net::ToCoordinator& message) {
    std::lock_guard lock(mutex_);
    if (!client_) {
      return make_error(ErrorCode::kUnavailable,
                        "not connected to the coordinator at " + options_.address);
    }
    return client_->send(message);
  }

  void stop() {
    std::unique_ptr<net::WorkerControlClient> closing;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      closing = std::move(client_);
    }
    asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
    if (closing) closing->close(true);
  }

 private:
  // On the strand: waits out the next backoff, then tries again.
  void wait_then_attempt() {
    if (is_stopped()) return;
    const auto wait = backoff_.next();
    timer_.expires_after(wait);
    timer_.async_wait([self = shared_from_this()](const std::error_code& error) {
      if (error || self->is_stopped()) return;
      self->attempt([self](Status status) {
        asio::post(self->strand_, [self, status = std::move(status)]() mutable {
          self->after_rejoin_attempt(std::move(status));
        });
      });
    });
  }

  // On the strand.
  void after_rejoin_attempt(Status status) {
    if (status.is_ok() || is_stopped()) return;
    const auto away = Clock::now() - lost_at_;
    const auto away_ms = std::chrono::duration_cast<std::chrono::milliseconds>(away).count();
    if (status.code() == ErrorCode::kProtocol) {
      return give_up(make_error(ErrorCode::kProtocol,
                                fmt::format("{}: cannot join the coordinator at {} again: {}",
                                            options_.name, options_.address, status.message())));
    }
    if (options_.give_up_after.count() > 0 && away >= options_.give_up_after) {
      return give_up(make_error(
          ErrorCode::kUnavailable,
          fmt::format("{}: no coordinator at {} for {} ms (the limit is {} ms); last attempt: {}",
                      options_.name, options_.address, away_ms, options_.give_up_after.count(),
                      status.message())));
    }
    // One line per kind of failure, not one per attempt.
    if (status.message() != last_failure_) {
      last_failure_ = status.message();
      logger("worker")->warn(
          "{}: joining {} again failed ({} ms without a coordinator): {}; "
          "retrying with backoff up to {} ms",
          options_.name, options_.address, away_ms, status.message(), options_.backoff.max.count());
    }
    wait_then_attempt();
  }

  void give_up(Status why) {
    logger("worker")->error("{}", why.message());
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
    }
    if (callbacks_.gave_up) callbacks_.gave_up(std::move(why));
  }

  bool is_stopped() {
    std::lock_guard lock(mutex_);
    return stopped_;
  }

  // One connection attempt; `done` gets its outcome once it is settled (after `joined` ran).
  void attempt(std::function<void(Status)> done) {
    net::WorkerControlClient::connect_async(
        io_, options_.address, callbacks_.hello(), callbacks_.sink, options_.connect_timeout, {},
        [self = shared_from_this(),
         done = std::move(done)](Result<std::unique_ptr<net::WorkerControlClient>> connected) {
          if (!connected) return done(connected.status());
          std::unique_ptr<net::WorkerControlClient> client = std::move(connected).value();
          const uint64_t id = client->ack().peer_id;
          const net::ConnectionId connection = client->id();
          bool rejoined = false;
          {
            std::lock_guard lock(self->mutex_);
            if (self->stopped_) {
              client->close(true);
              return done(make_error(ErrorCode::kCancelled, self->options_.name + " stopped"));
            }
            rejoined = self->rejoining_;
            self->rejoining_ = false;
            self->client_ = std::move(client);
          }
          if (rejoined) {
            // A warning, as the loss was: whoever saw that sees the recovery.
            logger("worker")->warn(
                "{}: joined the coordinator at {} again as id {} after {} ms", self->options_.name,
                self->options_.address, id,
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - self->lost_at_)
                    .count());
          }
          // Runs on the connection's strand while it handles the HelloAck: before any later
          // message of this connection reaches the sink.
          if (self->callbacks_.joined) self->callbacks_.joined(id, connection, rejoined);
          done(Status::ok());
        },
        options_.cluster_key);
  }

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;  // the backoff wait; strand only
  const CoordinatorLinkOptions options_;
  const CoordinatorLinkCallbacks callbacks_;
  net::ReconnectBackoff backoff_;  // strand only
  std::string last_failure_;       // strand only
  Clock::time_point lost_at_;

  std::mutex mutex_;
  std::unique_ptr<net::WorkerControlClient> client_;
  bool rejoining_ = false;
  bool stopped_ = false;
};

CoordinatorLink::CoordinatorLink(asio::io_context& io, CoordinatorLinkOptions options,
                                 CoordinatorLinkCallbacks callbacks)
    : state_(std::make_shared<State>(io, std::move(options), std::move(callbacks))) {}

CoordinatorLink::~CoordinatorLink() {
  stop();
}

Status CoordinatorLink::join() {
  return state_->join();
}
void CoordinatorLink::rejoin(const Status& why) {
  state_->rejoin(why);
}
void CoordinatorLink::drop(Status why) {
  state_->drop(std::move(why));
}
Status CoordinatorLink::send(const net::ToCoordinator& message) {
  return state_->send(message);
}
void CoordinatorLink::stop() {
  state_->stop();
}

}  // namespace runahead
