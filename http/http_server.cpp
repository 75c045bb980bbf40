#include "runahead/http_server.h"

#include <openssl/crypto.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "http/api_error.h"
#include "http/bounded_task_queue.h"
#include "http/completion_session.h"
#include "http/metrics.h"
#include "http/openai_request.h"
#include "http/serving_model.h"

namespace runahead {

namespace {

using http::ApiError;
using nlohmann::json;

constexpr const char* kJson = "application/json";

void send_json(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

void send_error(httplib::Response& response, const ApiError& error, int retry_after_seconds = 0) {
  if (error.status == 429 && retry_after_seconds > 0) {
    response.set_header("Retry-After", std::to_string(retry_after_seconds));
  }
  send_json(response, error.status, http::error_json(error));
}

// The error object for a status httplib answered by itself (unknown path, body too large).
ApiError status_error(int status, const std::string& path) {
  switch (status) {
    case 404:
      return ApiError{.status = 404,
                      .message = "no such endpoint: " + path,
                      .type = "invalid_request_error",
                      .param = {},
                      .code = "not_found"};
    case 405:
      return ApiError{.status = 405,
                      .message = "method not allowed on " + path,
                      .type = "invalid_request_error",
                      .param = {},
                      .code = {}};
    case 413:
      return ApiError{.status = 413,
                      .message = "the request body is larger than this server accepts",
                      .type = "invalid_request_error",
                      .param = {},
                      .code = "request_too_large"};
    default:
      return ApiError{.status = status,
                      .message = "HTTP status " + std::to_string(status) + " on " + path,
                      .type = status >= 500 ? "server_error" : "invalid_request_error",
                      .param = {},
                      .code = {}};
  }
}

Result<std::vector<std::string>> read_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, path + ": cannot read the HTTP API key file");
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    keys.push_back(line.substr(start));
  }
  if (keys.empty()) {
    return make_error(ErrorCode::kInvalidArgument, path + ": the HTTP API key file holds no key");
  }
  return keys;
}

// Constant-time in the key's content, so that a wrong key's timing tells nothing about a right one.
bool key_matches(const std::string& given, const std::vector<std::string>& keys) {
  bool match = false;
  for (const std::string& key : keys) {
    if (given.size() == key.size() && CRYPTO_memcmp(given.data(), key.data(), key.size()) == 0) {
      match = true;
    }
  }
  return match;
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(Coordinator& coordinator, HttpServerConfig config)
      : coordinator_(coordinator), config_(std::move(config)) {}

  ~Impl() { shutdown(); }

  Status start() {
    RUNAHEAD_ASSIGN_OR_RETURN(model_,
                              http::ServingModel::load(config_.model_path, config_.model_name));
    keys_ = config_.api_keys;
    if (!config_.api_key_file.empty()) {
      RUNAHEAD_ASSIGN_OR_RETURN(auto from_file, read_key_file(config_.api_key_file));
      keys_.insert(keys_.end(), from_file.begin(), from_file.end());
    }
    limits_.max_tokens = config_.max_tokens;
    const size_t colon = config_.listen.rfind(':');
    if (colon == std::string::npos) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--http " + config_.listen + ": expected HOST:PORT");
    }
    host_ = config_.listen.substr(0, colon);
    if (host_.size() >= 2 && host_.front() == '[' && host_.back() == ']') {
      host_ = host_.substr(1, host_.size() - 2);
    }
    int port = 0;
    try {
      port = std::stoi(config_.listen.substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
    if (port < 0 || port > 65535) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--http " + config_.listen + ": the port is not a number in 0..65535");
    }
    configure();
    if (port == 0) {
      port_ = server_.bind_to_any_port(host_);
      if (port_ < 0) port_ = 0;
    } else if (server_.bind_to_port(host_, port)) {
      port_ = port;
    }
    if (port_ == 0) {
      return make_error(ErrorCode::kUnavailable, "HTTP API: cannot listen on " + config_.listen);
    }
    listener_ = std::thread([this] { server_.listen_after_bind(); });
    logger("http")->info("HTTP API on {} serving model {}", address(), model_.name);
    return Status::ok();
  }

  std::string address() const {
    const bool v6 = host_.find(':') != std::string::npos;
    return (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
  }

  void shutdown() {
    if (stopping_.exchange(true)) return;
    server_.stop();
    if (listener_.joinable()) listener_.join();
  }

 private:
  void configure() {
    const size_t connections = std::max<size_t>(config_.max_connections, 1);
    server_.new_task_queue = [connections] { return new http::BoundedTaskQueue(connections); };
    server_.set_payload_max_length(config_.max_body_bytes);
    server_.set_read_timeout(config_.io_timeout);
    server_.set_write_timeout(config_.io_timeout);
    server_.set_keep_alive_max_count(100);
    server_.set_pre_routing_handler([this](const httplib::Request& request,
                                           httplib::Response& response) {
      if (keys_.empty() || request.path.rfind("/v1/", 0) != 0) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      const std::string header = request.get_header_value("Authorization");
      constexpr std::string_view kBearer = "Bearer ";
      if (header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0 &&
          key_matches(header.substr(kBearer.size()), keys_)) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      metrics_.count(http::Outcome::kUnauthorized);
      response.set_header("WWW-Authenticate", "Bearer");
      send_error(
          response,
          ApiError{.status = 401,
                   .message = header.empty() ? "no API key: send Authorization: Bearer KEY"
                                             : "the API key given in Authorization is not accepted",
                   .type = "invalid_request_error",
                   .param = {},
                   .code = "invalid_api_key"});
      return httplib::Server::HandlerResponse::Handled;
    });
    server_.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
      if (!response.body.empty()) return;
      send_error(response, status_error(response.status, request.path));
    });
    server_.set_exception_handler(
        [](const httplib::Request& request, httplib::Response& response, std::exception_ptr error) {
          std::string what = "unknown";
          try {
            if (error) std::rethrow_exception(error);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          logger("http")->error("{} {}: {}", request.method, request.path, what);
          send_error(response, ApiError{.status = 500,
                                        .message = "internal error on " + request.path,
                                        .type = "server_error",
                                        .param = {},
                                        .code = {}});
        });

    server_.Get("/health", [](const httplib::Request&, httplib::Response& response) {
      send_json(response, 200, {{"status", "ok"}});
    });
    server_.Get("/ready", [this](const httplib::Request&, httplib::Response& response) {
      auto status = coordinator_.status();
      size_t healthy = 0;
      if (status) {
        for (const WorkerState& worker : status->workers) healthy += worker.healthy ? 1 : 0;
      }
      if (healthy > 0) {
        send_json(response, 200, {{"status", "ready"}, {"workers", healthy}});
        return;
      }
      send_error(response, ApiError{.status = 503,
                                    .message = "no healthy worker is registered yet",
                                    .type = "server_error",
                                    .param = {},
                                    .code = "not_ready"});
    });
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      auto status = coordinator_.status();
      response.set_content(metrics_.render(status ? &*status : nullptr),
                           "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& response) {
      send_json(response, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
    });
    server_.Get(R"(/v1/models/(.+))",
                [this](const httplib::Request& request, httplib::Response& response) {
                  if (request.matches[1] == model_.name) {
                    send_json(response, 200, model_json());
                    return;
                  }
                  send_error(response, model_not_found(request.matches[1]));
                });
    server_.Post("/v1/completions",
                 [this](const httplib::Request& request, httplib::Response& response) {
                   complete(request, response, http::Endpoint::kCompletions);
                 });
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& request, httplib::Response& response) {
                   complete(request, response, http::Endpoint::kChat);
                 });
  }

  json model_json() const {
    return {{"id", model_.name},
            {"object", "model"},
            {"created", model_.created},
            {"owned_by", "runahead"}};
  }

  static ApiError model_not_found(const std::string& name) {
    return ApiError{.status = 404,
                    .message = "The model `" + name + "` does not exist (GET /v1/models lists it)",
                    .type = "invalid_request_error",
                    .param = "model",
                    .code = "model_not_found"};
  }

  void complete(const httplib::Request& request, httplib::Response& response,
                http::Endpoint endpoint) {
    const auto arrived = std::chrono::steady_clock::now();
    auto parsed = http::parse_completion_request(request.body, endpoint, limits_);
    if (auto* error = std::get_if<ApiError>(&parsed)) {
      metrics_.count(http::Outcome::kInvalid);
      send_error(response, *error);
      return;
    }
    auto& body = std::get<http::CompletionRequest>(parsed);
    if (body.model != model_.name) {
      metrics_.count(http::Outcome::kInvalid);
      send_error(response, model_not_found(body.model));
      return;
    }
    const bool stream = body.stream;
    auto session = std::make_shared<http::CompletionSession>(coordinator_, model_, metrics_,
                                                             std::move(body), arrived);
    if (auto error = session->start()) {
      send_error(response, *error, config_.retry_after_seconds);
      return;
    }
    if (!stream) {
      auto answer = session->complete();
      if (auto* error = std::get_if<ApiError>(&answer)) {
        send_error(response, *error, config_.retry_after_seconds);
      } else {
        send_json(response, 200, std::get<json>(answer));
      }
      return;
    }
    response.set_header("Cache-Control", "no-cache");
    response.set_header("X-Accel-Buffering", "no");
    response.set_chunked_content_provider(
        "text/event-stream",
        [this, session](size_t, httplib::DataSink& sink) {
          session->stream(
              [&sink](const std::string& event) {
                return sink.is_writable() && sink.write(event.data(), event.size());
              },
              [this] { return stopping_.load(); });
          sink.done();
          return true;
        },
        // Runs however the response ended; the session's end cancels a request still running.
        [session](bool) {});
  }

  Coordinator& coordinator_;
  HttpServerConfig config_;
  http::ServingModel model_;
  http::ServingMetrics metrics_;
  http::RequestLimits limits_;
  std::vector<std::string> keys_;
  httplib::Server server_;
  std::string host_;
  int port_ = 0;
  std::thread listener_;
  std::atomic<bool> stopping_{false};
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(Coordinator& coordinator,
                                                      const HttpServerConfig& config) {
  auto impl = std::make_unique<Impl>(coordinator, config);
  RUNAHEAD_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  shutdown();
}

std::string HttpServer::address() const {
  return impl_->address();
}

void HttpServer::shutdown() {
  if (impl_) impl_->shutdown();
}

}  // namespace runahead
