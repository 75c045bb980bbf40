#include "api/conversions.h"

#include <algorithm>

namespace runahead {

CoordinatorOptions to_coordinator_options(const CoordinatorConfig& config) {
  CoordinatorOptions options;
  options.listen = config.listen;
  options.queue_capacity = config.queue_capacity;
  options.max_in_flight = config.max_in_flight;
  options.heartbeat_timeout = config.heartbeat_timeout;
  options.heartbeat_interval = config.heartbeat_interval;
  options.request_timeout = config.request_timeout;
  options.no_worker_timeout = config.no_worker_timeout;
  options.max_requests_per_client = config.max_requests_per_client;
  options.partition =
      config.balanced_partition ? PartitionScheme::kBalanced : PartitionScheme::kEven;
  options.min_tokens_per_worker = config.min_tokens_per_worker;
  options.max_workers_per_request = config.max_workers_per_request;
  options.expected_model_hash = config.expected_model_hash;
  options.adopt_first_model = config.adopt_first_model;
  options.profile_path = config.profile_path;
  return options;
}

SamplingOptions to_sampling_options(const Sampling& sampling) {
  SamplingOptions options;
  options.temperature = sampling.temperature;
  options.top_k = std::max(sampling.top_k, 0);  // negative: no limit, as 0
  options.top_p = sampling.top_p;
  options.repetition_penalty = sampling.repetition_penalty;
  options.seed = sampling.seed;
  return options;
}

PartitionChoice to_partition_choice(const PartitionOptions& partition) {
  PartitionChoice choice;
  switch (partition.scheme) {
    case PartitionOptions::Scheme::kDefault:
      break;
    case PartitionOptions::Scheme::kBalanced:
      choice.scheme = PartitionScheme::kBalanced;
      break;
    case PartitionOptions::Scheme::kEven:
      choice.scheme = PartitionScheme::kEven;
      break;
    case PartitionOptions::Scheme::kExplicit:
      choice.scheme = PartitionScheme::kExplicit;
      break;
    case PartitionOptions::Scheme::kSearched:
      choice.scheme = PartitionScheme::kSearched;
      break;
  }
  choice.workers = static_cast<uint32_t>(std::max(partition.workers, 0));
  for (int64_t cut : partition.cuts) {
    choice.cuts.push_back(static_cast<uint64_t>(std::max<int64_t>(cut, 0)));
  }
  return choice;
}

net::SubmitRequest to_submit(const RequestOptions& options) {
  net::SubmitRequest submit;
  submit.prompt_tokens = options.prompt_tokens;
  submit.max_new_tokens = static_cast<uint32_t>(std::max(options.max_new_tokens, 0));
  submit.sampling = to_sampling_options(options.sampling);
  submit.return_logits = options.return_logits;
  submit.top_logprobs = static_cast<uint32_t>(std::max(options.top_logprobs, 0));
  submit.ignore_eos = options.ignore_eos;
  submit.partition = to_partition_choice(options.partition);
  submit.timeout_millis = static_cast<uint64_t>(std::max<int64_t>(options.timeout_ms, 0));
  return submit;
}

Status validate_options(const RequestOptions& options) {
  const uint32_t most = net::ControlLimits{}.max_top_logprobs;
  if (options.top_logprobs < 0 || static_cast<uint32_t>(options.top_logprobs) > most) {
    return make_error(ErrorCode::kInvalidArgument,
                      "top_logprobs is " + std::to_string(options.top_logprobs) +
                          "; it must be between 0 (none) and " + std::to_string(most));
  }
  if (options.timeout_ms < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "timeout_ms is " + std::to_string(options.timeout_ms) +
                          "; it must be 0 (the coordinator's request timeout) or positive");
  }
  return Status::ok();
}

RequestResult to_request_result(const net::RequestResult& result) {
  RequestResult out;
  out.request_id = result.request_id;
  out.tokens = result.tokens;
  out.ttft_ms = static_cast<double>(result.ttft_nanos) / 1e6;
  out.cuts.assign(result.cuts.begin(), result.cuts.end());
  out.total_ms = static_cast<double>(result.total_nanos) / 1e6;
  for (const LayerTiming& layer : result.timeline) {
    out.timeline.push_back(
        LayerTimeline{.worker_id = layer.worker_id,
                      .layer = static_cast<int>(layer.layer),
                      .compute_ms = static_cast<double>(layer.compute.count()) / 1e6,
                      .wait_ms = static_cast<double>(layer.wait.count()) / 1e6,
                      .bytes_in = layer.bytes_in,
                      .bytes_out = layer.bytes_out});
  }
  return out;
}

ClusterStatus to_cluster_status(const net::StatusReply& reply) {
  ClusterStatus status;
  for (const WorkerRecord& worker : reply.workers) {
    status.workers.push_back(WorkerState{
        .id = worker.id,
        .name = worker.name,
        .backend = worker.info.backend,
        .model_hash = worker.info.model_hash,
        .healthy = worker.healthy,
        .last_heartbeat_age_ms = static_cast<uint64_t>(worker.last_heartbeat_age.count()),
        .active_requests = worker.active_requests,
        .free_memory_bytes = worker.info.free_memory_bytes});
  }
  status.queued_requests = reply.queued_requests;
  status.active_requests = reply.active_requests;
  status.queue_capacity = reply.queue_capacity;
  return status;
}

}  // namespace runahead
