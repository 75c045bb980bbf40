#include "net/control/control_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include <cstring>
#include <string>

#include "net/control/control_wire.h"
#include "net/control/frame.h"
#include "net/control/schema/control.capnp.h"
#include "runtime/overloaded.h"

namespace runahead::net {
namespace {

using wire::read;
using wire::write;

static_assert(kProtocolVersion == schema::PROTOCOL_VERSION,
              "kProtocolVersion must equal protocolVersion in net/control/schema/control.capnp");
// Peers of different versions read each other's Hello and HelloAck to say so.
static_assert(static_cast<unsigned>(schema::Envelope::HELLO) == 0 &&
                  static_cast<unsigned>(schema::Envelope::HELLO_ACK) == 1,
              "Hello and HelloAck keep their place in the Envelope across versions");

void write(schema::Envelope::Builder envelope, const ToCoordinator& message) {
  using runtime::Overloaded;
  std::visit(
      Overloaded{
          [&](const Hello& in) { write(envelope.initHello(), in); },
          [&](const Heartbeat& in) { write(envelope.initToCoordinator().initHeartbeat(), in); },
          [&](const SubmitRequest& in) {
            write(envelope.initToCoordinator().initSubmitRequest(), in);
          },
          [&](const Cancel& in) { write(envelope.initToCoordinator().initCancel(), in); },
          [&](const StatusQuery& in) { write(envelope.initToCoordinator().initStatusQuery(), in); },
          [&](const SliceReady& in) { write(envelope.initToCoordinator().initSliceReady(), in); },
          [&](const SliceDone& in) { write(envelope.initToCoordinator().initSliceDone(), in); },
          [&](const Token& in) { write(envelope.initToCoordinator().initToken(), in); },
          [&](const RequestError& in) {
            write(envelope.initToCoordinator().initRequestError(), in);
          },
      },
      message);
}

void write(schema::Envelope::Builder envelope, const ToWorker& message) {
  using runtime::Overloaded;
  std::visit(
      Overloaded{
          [&](const AssignSlice& in) { write(envelope.initToWorker().initAssignSlice(), in); },
          [&](const StartSlice& in) { write(envelope.initToWorker().initStartSlice(), in); },
          [&](const Cancel& in) { write(envelope.initToWorker().initCancel(), in); },
          [&](const Heartbeat& in) { write(envelope.initToWorker().initHeartbeat(), in); },
      },
      message);
}

void write(schema::Envelope::Builder envelope, const ToClient& message) {
  using runtime::Overloaded;
  std::visit(
      Overloaded{
          [&](const Token& in) { write(envelope.initToClient().initToken(), in); },
          [&](const RequestResult& in) { write(envelope.initToClient().initRequestResult(), in); },
          [&](const RequestError& in) { write(envelope.initToClient().initRequestError(), in); },
          [&](const StatusReply& in) { write(envelope.initToClient().initStatusReply(), in); },
          [&](const Heartbeat& in) { write(envelope.initToClient().initHeartbeat(), in); },
      },
      message);
}

void write(schema::Envelope::Builder envelope, const HelloAck& message) {
  write(envelope.initHelloAck(), message);
}

void write(schema::Envelope::Builder envelope, const HelloChallenge& message) {
  write(envelope.initHelloChallenge(), message);
}

void write(schema::Envelope::Builder envelope, const HelloProof& message) {
  write(envelope.initHelloProof(), message);
}

// A decoded message of one type as its direction's variant, or the decoding's error.
template <typename Variant, typename T>
Result<Variant> as(Result<T> decoded) {
  if (!decoded) return decoded.error();
  return Variant(std::move(decoded).value());
}

Result<ToCoordinator> read_to_coordinator(schema::ToCoordinator::Reader in,
                                          const ControlLimits& limits) {
  switch (in.which()) {
    case schema::ToCoordinator::HEARTBEAT:
      return ToCoordinator(read(in.getHeartbeat()));
    case schema::ToCoordinator::SUBMIT_REQUEST:
      return as<ToCoordinator>(read(in.getSubmitRequest(), limits));
    case schema::ToCoordinator::CANCEL:
      return ToCoordinator(read(in.getCancel()));
    case schema::ToCoordinator::STATUS_QUERY:
      return ToCoordinator(StatusQuery{});
    case schema::ToCoordinator::SLICE_READY:
      return as<ToCoordinator>(read(in.getSliceReady()));
    case schema::ToCoordinator::SLICE_DONE:
      return as<ToCoordinator>(read(in.getSliceDone(), limits));
    case schema::ToCoordinator::TOKEN:
      return as<ToCoordinator>(read(in.getToken(), limits));
    case schema::ToCoordinator::REQUEST_ERROR:
      return as<ToCoordinator>(read(in.getRequestError()));
  }
  // A kind from a newer schema, or garbage in the discriminant.
  return make_error(ErrorCode::kProtocol, fmt::format("unknown message kind {} to the coordinator",
                                                      static_cast<unsigned>(in.which())));
}

Result<ToWorker> read_to_worker(schema::ToWorker::Reader in, const ControlLimits& limits) {
  switch (in.which()) {
    case schema::ToWorker::ASSIGN_SLICE:
      return as<ToWorker>(read(in.getAssignSlice(), limits));
    case schema::ToWorker::START_SLICE:
      return as<ToWorker>(read(in.getStartSlice(), limits));
    case schema::ToWorker::CANCEL:
      return ToWorker(read(in.getCancel()));
    case schema::ToWorker::HEARTBEAT:
      return ToWorker(read(in.getHeartbeat()));
  }
  return make_error(ErrorCode::kProtocol, fmt::format("unknown message kind {} to a worker",
                                                      static_cast<unsigned>(in.which())));
}

Result<ToClient> read_to_client(schema::ToClient::Reader in, const ControlLimits& limits) {
  switch (in.which()) {
    case schema::ToClient::TOKEN:
      return as<ToClient>(read(in.getToken(), limits));
    case schema::ToClient::REQUEST_RESULT:
      return as<ToClient>(read(in.getRequestResult(), limits));
    case schema::ToClient::REQUEST_ERROR:
      return as<ToClient>(read(in.getRequestError()));
    case schema::ToClient::STATUS_REPLY:
      return as<ToClient>(read(in.getStatusReply(), limits));
    case schema::ToClient::HEARTBEAT:
      return ToClient(read(in.getHeartbeat()));
  }
  return make_error(ErrorCode::kProtocol, fmt::format("unknown message kind {} to a client",
                                                      static_cast<unsigned>(in.which())));
}

// ---- directions --------------------------------------------------------------------------

// Which direction a decoder takes, for the error that refuses another.
enum class Direction : uint8_t {
  kToCoordinator,
  kToWorker,
  kToClient,
  kHandshakeAnswer,
  kHandshakeProof
};

const char* direction_name(Direction direction) {
  switch (direction) {
    case Direction::kToCoordinator:
      return "a message to the coordinator";
    case Direction::kToWorker:
      return "a message to a worker";
    case Direction::kToClient:
      return "a message to a client";
    case Direction::kHandshakeAnswer:
      return "the coordinator's answer to Hello";
    case Direction::kHandshakeProof:
      return "the peer's answer to HelloChallenge";
  }
  return "a message";
}

// The name of an envelope's message, read from the discriminants only.
std::string envelope_message_name(schema::Envelope::Reader envelope) {
  switch (envelope.which()) {
    case schema::Envelope::HELLO:
      return "Hello";
    case schema::Envelope::HELLO_ACK:
      return "HelloAck";
    case schema::Envelope::HELLO_CHALLENGE:
      return "HelloChallenge";
    case schema::Envelope::HELLO_PROOF:
      return "HelloProof";
    case schema::Envelope::TO_COORDINATOR:
      switch (envelope.getToCoordinator().which()) {
        case schema::ToCoordinator::HEARTBEAT:
          return "Heartbeat";
        case schema::ToCoordinator::SUBMIT_REQUEST:
          return "SubmitRequest";
        case schema::ToCoordinator::CANCEL:
          return "Cancel";
        case schema::ToCoordinator::STATUS_QUERY:
          return "StatusQuery";
        case schema::ToCoordinator::SLICE_READY:
          return "SliceReady";
        case schema::ToCoordinator::SLICE_DONE:
          return "SliceDone";
        case schema::ToCoordinator::TOKEN:
          return "Token";
        case schema::ToCoordinator::REQUEST_ERROR:
          return "RequestError";
      }
      return "an unknown message";
    case schema::Envelope::TO_WORKER:
      switch (envelope.getToWorker().which()) {
        case schema::ToWorker::ASSIGN_SLICE:
          return "AssignSlice";
        case schema::ToWorker::START_SLICE:
          return "StartSlice";
        case schema::ToWorker::CANCEL:
          return "Cancel";
        case schema::ToWorker::HEARTBEAT:
          return "Heartbeat";
      }
      return "an unknown message";
    case schema::Envelope::TO_CLIENT:
      switch (envelope.getToClient().which()) {
        case schema::ToClient::TOKEN:
          return "Token";
        case schema::ToClient::REQUEST_RESULT:
          return "RequestResult";
        case schema::ToClient::REQUEST_ERROR:
          return "RequestError";
        case schema::ToClient::STATUS_REPLY:
          return "StatusReply";
        case schema::ToClient::HEARTBEAT:
          return "Heartbeat";
      }
      return "an unknown message";
  }
  return "an unknown message";
}

Result<Direction> direction_of(schema::Envelope::Reader envelope) {
  switch (envelope.which()) {
    case schema::Envelope::HELLO:
    case schema::Envelope::TO_COORDINATOR:
      return Direction::kToCoordinator;
    case schema::Envelope::HELLO_ACK:
    case schema::Envelope::HELLO_CHALLENGE:
      return Direction::kHandshakeAnswer;
    case schema::Envelope::HELLO_PROOF:
      return Direction::kHandshakeProof;
    case schema::Envelope::TO_WORKER:
      return Direction::kToWorker;
    case schema::Envelope::TO_CLIENT:
      return Direction::kToClient;
  }
  // A direction from a newer schema, or garbage in the discriminant.
  return make_error(ErrorCode::kProtocol, fmt::format("unknown message direction {}",
                                                      static_cast<unsigned>(envelope.which())));
}

// kProtocol naming the message unless the envelope goes the `expected` way.
Status check_direction(schema::Envelope::Reader envelope, Direction expected) {
  RUNAHEAD_ASSIGN_OR_RETURN(const Direction actual, direction_of(envelope));
  if (actual == expected) return Status::ok();
  return make_error(
      ErrorCode::kProtocol,
      fmt::format("received {}, {}, where {} was expected", envelope_message_name(envelope),
                  direction_name(actual), direction_name(expected)));
}

Result<ToCoordinator> read_envelope(schema::Envelope::Reader envelope, const ControlLimits& limits,
                                    const ToCoordinator*) {
  RUNAHEAD_RETURN_IF_ERROR(check_direction(envelope, Direction::kToCoordinator));
  if (envelope.which() == schema::Envelope::HELLO) {
    return as<ToCoordinator>(read(envelope.getHello()));
  }
  return read_to_coordinator(envelope.getToCoordinator(), limits);
}

Result<ToWorker> read_envelope(schema::Envelope::Reader envelope, const ControlLimits& limits,
                               const ToWorker*) {
  RUNAHEAD_RETURN_IF_ERROR(check_direction(envelope, Direction::kToWorker));
  return read_to_worker(envelope.getToWorker(), limits);
}

Result<ToClient> read_envelope(schema::Envelope::Reader envelope, const ControlLimits& limits,
                               const ToClient*) {
  RUNAHEAD_RETURN_IF_ERROR(check_direction(envelope, Direction::kToClient));
  return read_to_client(envelope.getToClient(), limits);
}

Result<HelloAck> read_envelope(schema::Envelope::Reader envelope, const ControlLimits&,
                               const HelloAck*) {
  RUNAHEAD_RETURN_IF_ERROR(check_direction(envelope, Direction::kHandshakeAnswer));
  if (envelope.which() != schema::Envelope::HELLO_ACK) {
    return make_error(ErrorCode::kProtocol, fmt::format("received {} where HelloAck was expected",
                                                        envelope_message_name(envelope)));
  }
  return read(envelope.getHelloAck());
}

Result<HandshakeAnswer> read_envelope(schema::Envelope::Reader envelope, const ControlLimits&,
                                      const HandshakeAnswer*) {
  RUNAHEAD_RETURN_IF_ERROR(check_direction(envelope, Direction::kHandshakeAnswer));
  if (envelope.which() == schema::Envelope::HELLO_CHALLENGE) {
    return HandshakeAnswer(read(envelope.getHelloChallenge()));
  }
  return HandshakeAnswer(read(envelope.getHelloAck()));
}

Result<HelloProof> read_envelope(schema::Envelope::Reader envelope, const ControlLimits&,
                                 const HelloProof*) {
  RUNAHEAD_RETURN_IF_ERROR(check_direction(envelope, Direction::kHandshakeProof));
  return read(envelope.getHelloProof());
}

template <typename Message>
Result<std::vector<uint8_t>> encode(const Message& message, const ControlLimits& limits) {
  capnp::MallocMessageBuilder builder;
  write(builder.initRoot<schema::Envelope>(), message);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  const size_t body_bytes = words.asBytes().size();
  if (body_bytes > limits.max_frame_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} message of {} bytes exceeds the control frame limit of {} "
                                  "bytes",
                                  message_kind_name(message), body_bytes, limits.max_frame_bytes));
  }
  std::vector<uint8_t> frame(kFrameHeaderBytes + body_bytes);
  const FrameHeaderBytes header = encode_frame_header(static_cast<uint32_t>(body_bytes));
  std::memcpy(frame.data(), header.data(), kFrameHeaderBytes);
  std::memcpy(frame.data() + kFrameHeaderBytes, words.asBytes().begin(), body_bytes);
  return frame;
}

template <typename Message>
Result<Message> decode(std::span<const uint64_t> body, const ControlLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.effective_traversal_limit_words();
  options.nestingLimit = limits.nesting_limit;
  static_assert(sizeof(capnp::word) == sizeof(uint64_t));
  kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(body.data()),
                                        body.size());
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) {
      return make_error(
          ErrorCode::kProtocol,
          fmt::format("frame carries {} words after its message", words.end() - reader.getEnd()));
    }
    return read_envelope(reader.getRoot<schema::Envelope>(), limits,
                         static_cast<const Message*>(nullptr));
  } catch (const kj::Exception& error) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("malformed message: {}", error.getDescription().cStr()));
  }
}

}  // namespace

Result<std::vector<uint8_t>> encode_frame(const ToCoordinator& message,
                                          const ControlLimits& limits) {
  return encode(message, limits);
}
Result<std::vector<uint8_t>> encode_frame(const ToWorker& message, const ControlLimits& limits) {
  return encode(message, limits);
}
Result<std::vector<uint8_t>> encode_frame(const ToClient& message, const ControlLimits& limits) {
  return encode(message, limits);
}
Result<std::vector<uint8_t>> encode_frame(const HelloAck& message, const ControlLimits& limits) {
  return encode(message, limits);
}
Result<std::vector<uint8_t>> encode_frame(const HelloChallenge& message,
                                          const ControlLimits& limits) {
  return encode(message, limits);
}
Result<std::vector<uint8_t>> encode_frame(const HelloProof& message, const ControlLimits& limits) {
  return encode(message, limits);
}

template <>
Result<ToCoordinator> decode_message<ToCoordinator>(std::span<const uint64_t> body,
                                                    const ControlLimits& limits) {
  return decode<ToCoordinator>(body, limits);
}
template <>
Result<ToWorker> decode_message<ToWorker>(std::span<const uint64_t> body,
                                          const ControlLimits& limits) {
  return decode<ToWorker>(body, limits);
}
template <>
Result<ToClient> decode_message<ToClient>(std::span<const uint64_t> body,
                                          const ControlLimits& limits) {
  return decode<ToClient>(body, limits);
}
template <>
Result<HelloAck> decode_message<HelloAck>(std::span<const uint64_t> body,
                                          const ControlLimits& limits) {
  return decode<HelloAck>(body, limits);
}

template <>
Result<HandshakeAnswer> decode_message<HandshakeAnswer>(std::span<const uint64_t> body,
                                                        const ControlLimits& limits) {
  return decode<HandshakeAnswer>(body, limits);
}
template <>
Result<HelloProof> decode_message<HelloProof>(std::span<const uint64_t> body,
                                              const ControlLimits& limits) {
  return decode<HelloProof>(body, limits);
}

}  // namespace runahead::net
