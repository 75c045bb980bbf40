// An OpenAI-compatible HTTP API in front of an embedded coordinator: POST /v1/completions and
// /v1/chat/completions (plain or streamed as server-sent events), GET /v1/models, /health,
// /ready and /metrics (Prometheus text format).
//
//   auto coordinator = runahead::Coordinator::start(config);
//   runahead::HttpServerConfig http;
//   http.listen = "127.0.0.1:8080";
//   http.model_path = "SmolLM2-135M-Instruct.Q4_1.gguf";  // tokenizer and chat template
//   auto server = runahead::HttpServer::start(**coordinator, http);
//
// Link runahead_http. The coordinator must outlive the server.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "runahead/coordinator.h"

namespace runahead {

struct HttpServerConfig {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  // The model's tokenizer and chat template: a .gguf file, a checkpoint directory or a
  // tokenizer file. Required.
  std::string model_path;
  std::string model_name;  // the id of /v1/models and of "model"; empty: model_path's file name
  // Bearer keys that /v1/ endpoints accept; none: no key is asked for. The file holds one key
  // per line (blank lines and lines starting with # are skipped).
  std::vector<std::string> api_keys;
  std::string api_key_file;
  size_t max_body_bytes = 8 << 20;      // larger request bodies get 413
  size_t max_connections = 64;          // served at once; more wait in the listen backlog
  int max_tokens = 4096;                // a larger max_tokens gets 400
  int retry_after_seconds = 1;          // the Retry-After of a 429 (full queue)
  std::chrono::seconds io_timeout{60};  // reading a request, writing to a stalled client
};

class HttpServer {
 public:
  // Loads the tokenizer, binds and starts serving; errors name the address or the file.
  [[nodiscard]] static Result<std::unique_ptr<HttpServer>> start(Coordinator& coordinator,
                                                                 const HttpServerConfig& config);
  ~HttpServer();  // shutdown()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // HOST:PORT with the chosen port.
  std::string address() const;
  // Ends streams (cancelling their requests) and stops listening. Idempotent.
  void shutdown();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runahead
