// A client of a remote coordinator (`runahead coordinator` or a service embedding one).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "runahead/coordinator.h"
#include "runahead/request.h"

namespace runahead {

struct ClientConfig {
  std::string coordinator_address;  // host:port
  std::chrono::milliseconds timeout{10000};
  // The client key (a key file as `runahead keygen` writes it) when the coordinator asks for
  // one; empty: none. With a key the coordinator must prove it too, or is refused.
  std::string client_key_file;
};

class Client {
 public:
  // `timeout` bounds the connection and, once connected, the coordinator's silence: it sends a
  // heartbeat every 500 ms by default, and a coordinator not heard from for `timeout` (counted
  // while this process runs) is taken for gone. Then, as when its connection closes or resets,
  // every request still running ends with an error (kTimeout or kUnavailable), never a hang.
  [[nodiscard]] static Result<std::unique_ptr<Client>> connect(const ClientConfig& config);
  // The same with no key.
  [[nodiscard]] static Result<std::unique_ptr<Client>> connect(
      const std::string& coordinator_address,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~Client();  // close()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  [[nodiscard]] Result<RequestHandle> submit(RequestOptions options, TokenCallback on_token = {});
  Status cancel(uint64_t request_id, const std::string& reason = "cancelled by the client");
  [[nodiscard]] Result<ClusterStatus> status(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Requests still running end with an error.
  void close();

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runahead
