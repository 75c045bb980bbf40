#include "tools/calibration_requests.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace runahead::cli {
namespace {

// One request's TTFT and, per worker of the chain, its compute time.
Result<TimedRequest> time_once(Client& client, const std::vector<WorkerState>& workers, int vocab,
                               int64_t timeout_ms, const Partition& cuts) {
  RequestOptions request;
  request.max_new_tokens = 1;
  const int64_t tokens = cuts.back();
  request.prompt_tokens.resize(static_cast<size_t>(tokens));
  for (int64_t i = 0; i < tokens; ++i) {
    request.prompt_tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % vocab);
  }
  request.partition.scheme = PartitionOptions::Scheme::kExplicit;
  request.partition.cuts.assign(cuts.begin(), cuts.end());
  RUNAHEAD_ASSIGN_OR_RETURN(RequestHandle handle, client.submit(request));
  RUNAHEAD_ASSIGN_OR_RETURN(RequestResult result, handle.result_within(timeout_ms));
  TimedRequest m;
  m.ttft_seconds = result.ttft_ms / 1e3;
  m.compute_seconds.assign(workers.size(), 0.0);
  std::vector<int> layers(workers.size(), 0);
  double first_bytes = 0.0;
  for (const LayerTimeline& layer : result.timeline) {
    auto it = std::find_if(workers.begin(), workers.end(),
                           [&](const WorkerState& w) { return w.id == layer.worker_id; });
    if (it == workers.end()) {
      return make_error(ErrorCode::kUnavailable,
                        "worker id " + std::to_string(layer.worker_id) +
                            " ran a calibration request but was not in the cluster at the "
                            "start; did a worker join or restart?");
    }
    const auto position = static_cast<size_t>(it - workers.begin());
    m.compute_seconds[position] += layer.compute_ms / 1e3;
    ++layers[position];
    if (position == 0) first_bytes += static_cast<double>(layer.bytes_out);
  }
  for (size_t i = 0; i < workers.size(); ++i) {
    if (layers[i] == 0 || layers[i] != layers[0]) {
      return make_error(ErrorCode::kUnavailable,
                        "the timeline of a request over " + cuts_text(cuts) + " has " +
                            std::to_string(layers[i]) + " layers from worker " + workers[i].name +
                            " (" + std::to_string(layers[0]) +
                            " from the first); were all workers in the chain?");
    }
  }
  m.layers = layers[0];
  m.first_bytes_out_per_layer = first_bytes / m.layers;
  return m;
}

}  // namespace

Result<std::vector<WorkerState>> calibration_workers(Client& client, const std::string& address) {
  RUNAHEAD_ASSIGN_OR_RETURN(ClusterStatus status, client.status());
  std::vector<WorkerState> workers = std::move(status.workers);
  if (workers.empty()) {
    return make_error(ErrorCode::kUnavailable, "the coordinator at " + address + " has no workers");
  }
  // Requests over every worker run in the order the workers joined.
  std::sort(workers.begin(), workers.end(),
            [](const WorkerState& a, const WorkerState& b) { return a.id < b.id; });
  for (const WorkerState& w : workers) {
    if (w.model_hash != workers.front().model_hash) {
      return make_error(ErrorCode::kInvalidArgument, "workers " + workers.front().name + " and " +
                                                         w.name + " run different models");
    }
    if (!w.healthy) {
      return make_error(ErrorCode::kUnavailable, "worker " + w.name + " is not healthy");
    }
  }
  return workers;
}

TimeRequest client_request_timer(Client& client, std::vector<WorkerState> workers, int vocab,
                                 int64_t timeout_ms) {
  auto chain = std::make_shared<const std::vector<WorkerState>>(std::move(workers));
  return [&client, chain, vocab, timeout_ms](const Partition& cuts) {
    return time_once(client, *chain, vocab, timeout_ms, cuts);
  };
}

}  // namespace runahead::cli
