// Where a request's answers go: a remote client's connection, or an in-process caller of the
// embeddable API. The coordinator calls exactly one of result() or error() per request, after
// any number of token() calls; the messages carry the coordinator's request id.
#pragma once

#include "net/control/control_messages.h"

namespace runahead {

class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void token(const net::Token& token) = 0;
  virtual void result(const net::RequestResult& result) = 0;
  virtual void error(const net::RequestError& error) = 0;
};

}  // namespace runahead
