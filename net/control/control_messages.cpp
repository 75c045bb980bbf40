#include "net/control/control_messages.h"

namespace runahead::net {
namespace {

// One name per message type, whichever direction carries it.
const char* name_of(const Hello&) {
  return "Hello";
}
const char* name_of(const HelloAck&) {
  return "HelloAck";
}
const char* name_of(const HelloChallenge&) {
  return "HelloChallenge";
}
const char* name_of(const HelloProof&) {
  return "HelloProof";
}
const char* name_of(const Heartbeat&) {
  return "Heartbeat";
}
const char* name_of(const SubmitRequest&) {
  return "SubmitRequest";
}
const char* name_of(const Cancel&) {
  return "Cancel";
}
const char* name_of(const StatusQuery&) {
  return "StatusQuery";
}
const char* name_of(const SliceReady&) {
  return "SliceReady";
}
const char* name_of(const SliceDone&) {
  return "SliceDone";
}
const char* name_of(const Token&) {
  return "Token";
}
const char* name_of(const RequestError&) {
  return "RequestError";
}
const char* name_of(const AssignSlice&) {
  return "AssignSlice";
}
const char* name_of(const StartSlice&) {
  return "StartSlice";
}
const char* name_of(const RequestResult&) {
  return "RequestResult";
}
const char* name_of(const StatusReply&) {
  return "StatusReply";
}

template <typename Variant>
const char* variant_name(const Variant& message) {
  return std::visit([](const auto& alternative) { return name_of(alternative); }, message);
}

}  // namespace

const char* message_kind_name(const ToCoordinator& message) {
  return variant_name(message);
}
const char* message_kind_name(const ToWorker& message) {
  return variant_name(message);
}
const char* message_kind_name(const ToClient& message) {
  return variant_name(message);
}
const char* message_kind_name(const HelloAck& message) {
  return name_of(message);
}
const char* message_kind_name(const HelloChallenge& message) {
  return name_of(message);
}
const char* message_kind_name(const HelloProof& message) {
  return name_of(message);
}
const char* message_kind_name(const HandshakeAnswer& message) {
  return variant_name(message);
}

}  // namespace runahead::net
