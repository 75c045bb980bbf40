// A worker played by a test: it joins a coordinator speaking the control protocol directly,
// says of itself what the test wants (model hash, context, vocabulary), and what the
// coordinator sends it lands in a queue the test reads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "net/control/control_client.h"
#include "runtime/actor_system.h"

namespace runahead::testing {

class ScriptedWorker {
 public:
  // Joins with the model hash alone (a CPU worker of no stated context or vocabulary).
  Status join(const std::string& address, const std::string& model_hash) {
    WorkerInfo info;
    info.model_hash = model_hash;
    return join(address, std::move(info));
  }

  Status join(const std::string& address, WorkerInfo info, const std::string& name = "scripted") {
    system_.start();
    net::Hello hello;
    hello.role = net::PeerRole::kWorker;
    hello.name = name;
    hello.worker = std::move(info);
    if (hello.worker.backend.empty()) hello.worker.backend = "cpu";
    auto client = net::WorkerControlClient::connect(
        system_.io(), address, hello,
        [this](net::ControlEvent<net::ToWorker> event) {
          if (auto* received = std::get_if<net::ControlReceived<net::ToWorker>>(&event)) {
            std::lock_guard lock(mutex_);
            inbox_.push_back(std::move(received->message));
            changed_.notify_all();
          }
          return Status::ok();
        },
        std::chrono::seconds(5));
    if (!client) return client.status();
    client_ = std::move(client).value();
    return Status::ok();
  }

  // The next message of kind T, skipping none of the others (they stay queued).
  template <typename T>
  std::optional<T> next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
        if (auto* found = std::get_if<T>(&*it)) {
          T value = std::move(*found);
          inbox_.erase(it);
          return value;
        }
      }
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return std::nullopt;
    }
  }

  uint64_t id() const { return client_->ack().peer_id; }
  Status send(const net::ToCoordinator& message) { return client_->send(message); }

 private:
  // Declared first, destroyed last: the client's thread may push into the inbox until the
  // client and the actor system below are gone.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<net::ToWorker> inbox_;
  runtime::ActorSystem system_{runtime::ActorSystemOptions{.threads = 1}};
  std::unique_ptr<net::WorkerControlClient> client_;
};

}  // namespace runahead::testing
