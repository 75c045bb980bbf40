// The requests of a calibration (planner/calibration.h) through an ordinary client: requests
// with explicit partitions over every worker, timed by their results' timelines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "planner/calibration.h"
#include "runahead/client.h"

namespace runahead::cli {

// The cluster's workers in the chain order of requests over all of them (the order they
// joined); errors when there are none, one is not healthy or two run different models.
[[nodiscard]] Result<std::vector<WorkerState>> calibration_workers(Client& client,
                                                                   const std::string& address);

// Times requests over `workers` (in chain order) through `client`: prompts of token ids below
// `vocab`, one new token, each request's result awaited at most `timeout_ms`. The client must
// outlive the returned function.
TimeRequest client_request_timer(Client& client, std::vector<WorkerState> workers, int vocab,
                                 int64_t timeout_ms);

}  // namespace runahead::cli
