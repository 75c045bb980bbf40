// Between the public API's types and the control plane's messages.
#pragma once

#include "net/control/control_limits.h"
#include "net/control/control_messages.h"
#include "runahead/coordinator.h"
#include "runahead/request.h"

namespace runahead {

net::SubmitRequest to_submit(const RequestOptions& options);
// What can be refused before a request leaves the caller: a negative or oversized top_logprobs
// (the limits of net/control/control_limits.h), naming the option.
[[nodiscard]] Status validate_options(const RequestOptions& options);
ClusterStatus to_cluster_status(const net::StatusReply& reply);

}  // namespace runahead
