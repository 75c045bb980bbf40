// Each control message to and from its Cap'n Proto struct (net/control/schema/control.capnp),
// for net/control/control_codec.cpp, which puts them in an Envelope by direction. Reading
// treats its input as hostile: list lengths, K of top-K log-probabilities, enum values and
// numbers the domain types cannot hold are checked, each refused with kProtocol naming it.
// Private to net/control (it includes the generated schema).
#pragma once

#include "core/status.h"
#include "net/control/control_limits.h"
#include "net/control/control_messages.h"
#include "net/control/schema/control.capnp.h"

namespace runahead::net::wire {

void write(schema::Hello::Builder out, const Hello& in);
void write(schema::HelloAck::Builder out, const HelloAck& in);
void write(schema::HelloChallenge::Builder out, const HelloChallenge& in);
void write(schema::HelloProof::Builder out, const HelloProof& in);
void write(schema::Heartbeat::Builder out, const Heartbeat& in);
void write(schema::SubmitRequest::Builder out, const SubmitRequest& in);
void write(schema::Cancel::Builder out, const Cancel& in);
void write(schema::StatusQuery::Builder out, const StatusQuery& in);
void write(schema::SliceReady::Builder out, const SliceReady& in);
void write(schema::SliceDone::Builder out, const SliceDone& in);
void write(schema::Token::Builder out, const Token& in);
void write(schema::RequestError::Builder out, const RequestError& in);
void write(schema::AssignSlice::Builder out, const AssignSlice& in);
void write(schema::StartSlice::Builder out, const StartSlice& in);
void write(schema::RequestResult::Builder out, const RequestResult& in);
void write(schema::StatusReply::Builder out, const StatusReply& in);

Result<Hello> read(schema::Hello::Reader in);
HelloAck read(schema::HelloAck::Reader in);
HelloChallenge read(schema::HelloChallenge::Reader in);
HelloProof read(schema::HelloProof::Reader in);
Heartbeat read(schema::Heartbeat::Reader in);
Result<SubmitRequest> read(schema::SubmitRequest::Reader in, const ControlLimits& limits);
Cancel read(schema::Cancel::Reader in);
Result<SliceReady> read(schema::SliceReady::Reader in);
Result<SliceDone> read(schema::SliceDone::Reader in, const ControlLimits& limits);
Result<Token> read(schema::Token::Reader in, const ControlLimits& limits);
Result<RequestError> read(schema::RequestError::Reader in);
Result<AssignSlice> read(schema::AssignSlice::Reader in, const ControlLimits& limits);
Result<StartSlice> read(schema::StartSlice::Reader in, const ControlLimits& limits);
Result<RequestResult> read(schema::RequestResult::Reader in, const ControlLimits& limits);
Result<StatusReply> read(schema::StatusReply::Reader in, const ControlLimits& limits);

}  // namespace runahead::net::wire
