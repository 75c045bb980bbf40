#include "net/control/control_messages.h"

#include "runtime/overloaded.h"

namespace runahead::net {

const char* message_kind_name(const ControlMessage& message) {
  using runtime::Overloaded;
  return std::visit(Overloaded{
                        [](const Hello&) { return "Hello"; },
                        [](const HelloAck&) { return "HelloAck"; },
                        [](const Heartbeat&) { return "Heartbeat"; },
                        [](const SubmitRequest&) { return "SubmitRequest"; },
                        [](const Cancel&) { return "Cancel"; },
                        [](const AssignSlice&) { return "AssignSlice"; },
                        [](const SliceDone&) { return "SliceDone"; },
                        [](const Token&) { return "Token"; },
                        [](const RequestResult&) { return "RequestResult"; },
                        [](const RequestError&) { return "RequestError"; },
                        [](const StatusQuery&) { return "StatusQuery"; },
                        [](const StatusReply&) { return "StatusReply"; },
                        [](const CalibrateRequest&) { return "CalibrateRequest"; },
                        [](const CalibrateReply&) { return "CalibrateReply"; },
                        [](const SliceReady&) { return "SliceReady"; },
                        [](const StartSlice&) { return "StartSlice"; },
                    },
                    message);
}

}  // namespace runahead::net
