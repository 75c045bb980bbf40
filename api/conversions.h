// Between the public API's types and the control plane's messages.
#pragma once

#include "net/control_messages.h"
#include "runahead/coordinator.h"
#include "runahead/request.h"

namespace runahead {

net::SubmitRequest to_submit(const RequestOptions& options);
ClusterStatus to_cluster_status(const net::StatusReply& reply);

}  // namespace runahead
