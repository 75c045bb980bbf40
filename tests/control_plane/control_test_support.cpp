#include "tests/control_plane/control_test_support.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <asio/connect.hpp>
#include <asio/write.hpp>
#include <cstring>

#include "core/log.h"
#include "core/log_limiter.h"
#include "net/control/control_codec.h"
#include "net/control/frame.h"
#include "runtime/overloaded.h"

namespace runahead::net::testing {

ServerOwner::ServerOwner(ServerOwnerOptions options, ServerEvents* log,
                         std::promise<uint16_t>* port)
    : options_(options), log_(log), port_(port) {}

Status ServerOwner::on_start() {
  auto server =
      ControlServer::listen(system().io(), "127.0.0.1:0", deliver_to<ToCoordinator>(self()),
                            options_.limits, options_.auth);
  if (!server.is_ok()) return server.status();
  server_ = std::move(server).value();
  port_->set_value(server_->port());
  return Status::ok();
}

void ServerOwner::on_message(ServerOwnerMessage message) {
  using runtime::Overloaded;
  std::visit(
      Overloaded{
          [&](ControlReceived<ToCoordinator>& received) {
            if (std::holds_alternative<Hello>(received.message)) {
              HelloAck ack;
              ack.accepted = options_.accept;
              ack.reason = options_.accept ? "" : "model hash differs";
              ack.peer_id = received.connection;
              EXPECT_TRUE(server_->send(received.connection, ack).is_ok());
              if (!options_.accept) {
                server_->close(received.connection,
                               make_error(ErrorCode::kInvalidArgument, "refused"), true);
              }
            } else if (auto* submit = std::get_if<SubmitRequest>(&received.message)) {
              Token token;
              token.request_id = submit->request_id;
              token.token = static_cast<int32_t>(submit->prompt_tokens.size());
              token.is_last = true;
              EXPECT_TRUE(server_->send(received.connection, token).is_ok());
            } else if (auto* ready = std::get_if<SliceReady>(&received.message)) {
              StartSlice start;
              start.request_id = ready->request_id;
              start.successor_kv_target = ready->kv_target;
              EXPECT_TRUE(server_->send(received.connection, start).is_ok());
            }
            log_->push(std::move(received));
          },
          [&](ControlClosed& closed_event) { log_->push(std::move(closed_event)); },
          [&](SendTo& send) { send.sent->set_value(server_->send(send.connection, send.message)); },
          [&](Block& block) {
            block.started->set_value();
            block.until.wait();
          },
      },
      message);
}

void ServerOwner::on_stop() {
  if (server_) server_->shutdown();
  server_.reset();
}

TestServer::TestServer(ServerOwnerOptions options) : system_(runtime::ActorSystemOptions{2}) {
  system_.start();
  std::promise<uint16_t> port;
  auto port_future = port.get_future();
  runtime::SpawnOptions spawn;
  spawn.mailbox_capacity = options.mailbox_capacity;
  auto owner = system_.spawn<ServerOwner>("server-owner", spawn, options, &events_, &port);
  if (!owner.is_ok()) {
    ADD_FAILURE() << owner.error().to_string();
    return;
  }
  owner_ = *owner;
  port_ = port_future.get();
}

TestServer::~TestServer() {
  system_.stop(runtime::StopMode::kDrop);
}

Status TestServer::send(ConnectionId connection, ToClient message) {
  auto sent = std::make_shared<std::promise<Status>>();
  auto future = sent->get_future();
  RUNAHEAD_RETURN_IF_ERROR(owner_.tell(SendTo{connection, std::move(message), sent}));
  return future.get();
}

Status TestServer::block(std::shared_future<void> until) {
  auto started = std::make_shared<std::promise<void>>();
  auto started_future = started->get_future();
  RUNAHEAD_RETURN_IF_ERROR(owner_.tell(Block{std::move(until), started}));
  started_future.wait();
  return Status::ok();
}

Hello client_hello(std::string name) {
  Hello hello;
  hello.role = PeerRole::kClient;
  hello.name = std::move(name);
  return hello;
}

RawPeer::RawPeer(uint16_t port) : socket_(io_) {
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  socket_.connect(endpoint);
}

bool RawPeer::write(const std::vector<uint8_t>& bytes) {
  std::error_code error;
  asio::write(socket_, asio::buffer(bytes), error);
  return !error;
}

void RawPeer::write_message(const ToCoordinator& message) {
  auto frame = encode_frame(message, ControlLimits{});
  ASSERT_TRUE(frame.is_ok()) << frame.error().to_string();
  ASSERT_TRUE(write(*frame)) << "the server closed the connection";
}

void RawPeer::shutdown_send() {
  std::error_code ignored;  // the server may have closed already
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

bool RawPeer::read_exact(uint8_t* out, size_t bytes,
                         std::chrono::steady_clock::time_point deadline) {
  size_t done = 0;
  while (done < bytes) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd descriptor{socket_.native_handle(), POLLIN, 0};
    if (::poll(&descriptor, 1, static_cast<int>(left.count())) <= 0) return false;
    std::error_code error;
    const size_t got = socket_.read_some(asio::buffer(out + done, bytes - done), error);
    if (error) return false;
    done += got;
  }
  return true;
}

std::optional<std::vector<uint64_t>> RawPeer::read_body(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  FrameHeaderBytes header{};
  if (!read_exact(header.data(), header.size(), deadline)) return std::nullopt;
  auto length = decode_frame_header(header, ControlLimits{}.max_frame_bytes);
  if (!length.is_ok()) return std::nullopt;
  std::vector<uint64_t> body(*length / 8);
  if (!read_exact(reinterpret_cast<uint8_t*>(body.data()), *length, deadline)) {
    return std::nullopt;
  }
  return body;
}

std::optional<HelloAck> RawPeer::read_ack(std::chrono::milliseconds timeout) {
  auto body = read_body(timeout);
  if (!body) return std::nullopt;
  auto ack = decode_message<HelloAck>(*body, ControlLimits{});
  if (!ack.is_ok()) return std::nullopt;
  return std::move(ack).value();
}

std::optional<HandshakeAnswer> RawPeer::read_answer(std::chrono::milliseconds timeout) {
  auto body = read_body(timeout);
  if (!body) return std::nullopt;
  auto answer = decode_message<HandshakeAnswer>(*body, ControlLimits{});
  if (!answer.is_ok()) return std::nullopt;
  return std::move(answer).value();
}

void RawPeer::write_proof(const HelloProof& proof) {
  auto frame = encode_frame(proof, ControlLimits{});
  ASSERT_TRUE(frame.is_ok()) << frame.error().to_string();
  ASSERT_TRUE(write(*frame)) << "the server closed the connection";
}

std::optional<ToClient> RawPeer::read_message(std::chrono::milliseconds timeout) {
  auto body = read_body(timeout);
  if (!body) return std::nullopt;
  auto message = decode_message<ToClient>(*body, ControlLimits{});
  if (!message.is_ok()) return std::nullopt;
  return std::move(message).value();
}

bool RawPeer::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  uint8_t scratch[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd descriptor{socket_.native_handle(), POLLIN, 0};
    if (::poll(&descriptor, 1, static_cast<int>(left.count())) <= 0) return false;
    std::error_code error;
    socket_.read_some(asio::buffer(scratch), error);
    if (error) return true;  // eof or reset
  }
}

std::string RawPeer::local_address() const {
  auto endpoint = socket_.local_endpoint();
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

namespace {

std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> control_capture() {
  static std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = [] {
    auto created = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
    created->set_level(spdlog::level::warn);
    created->set_pattern("%v");
    logger("control")->sinks().push_back(created);
    return created;
  }();
  return sink;
}

// Created before any test starts a network thread.
const bool g_capture_installed = [] {
  control_capture();
  return true;
}();

}  // namespace

std::vector<std::string> captured_control_warnings() {
  return control_capture()->last_formatted();
}

void clear_captured_control_warnings() {
  // Lines looked for must not be suppressed by what earlier tests of the process logged.
  shared_log_limiter().reset();
  // The ring buffer cannot be emptied: mark the point instead.
  logger("control")->warn("---- mark ----");
}

bool any_warning_contains(const std::string& text) {
  auto lines = captured_control_warnings();
  // Only lines after the last mark count.
  size_t begin = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("---- mark ----") != std::string::npos) begin = i + 1;
  }
  for (size_t i = begin; i < lines.size(); ++i) {
    if (lines[i].find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace runahead::net::testing
