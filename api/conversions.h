// The API edge: between the public API's types (api/include/runahead) and the domain types and
// messages behind it. No other place converts between them.
#pragma once

#include "actors/coordinator_actor.h"
#include "net/control/control_limits.h"
#include "net/control/control_messages.h"
#include "runahead/coordinator.h"
#include "runahead/request.h"

namespace runahead {

CoordinatorOptions to_coordinator_options(const CoordinatorConfig& config);
SamplingOptions to_sampling_options(const Sampling& sampling);
PartitionChoice to_partition_choice(const PartitionOptions& partition);
net::SubmitRequest to_submit(const RequestOptions& options);
// What can be refused before a request leaves the caller: a negative or oversized top_logprobs
// (the limits of net/control/control_limits.h), naming the option.
[[nodiscard]] Status validate_options(const RequestOptions& options);

// The result as the API reports it; the logits and log-probabilities come with the tokens and
// are added by the caller.
RequestResult to_request_result(const net::RequestResult& result);
ClusterStatus to_cluster_status(const net::StatusReply& reply);

}  // namespace runahead
