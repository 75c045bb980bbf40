#include "api/conversions.h"

namespace runahead {

net::SubmitRequest to_submit(const RequestOptions& options) {
  net::SubmitRequest submit;
  submit.prompt_tokens = options.prompt_tokens;
  submit.max_new_tokens = static_cast<uint32_t>(std::max(options.max_new_tokens, 0));
  submit.sampling.temperature = options.sampling.temperature;
  submit.sampling.top_k = static_cast<uint32_t>(std::max(options.sampling.top_k, 0));
  submit.sampling.top_p = options.sampling.top_p;
  submit.sampling.repetition_penalty = options.sampling.repetition_penalty;
  submit.sampling.seed = options.sampling.seed;
  submit.return_logits = options.return_logits;
  submit.top_logprobs = static_cast<uint32_t>(std::max(options.top_logprobs, 0));
  submit.ignore_eos = options.ignore_eos;
  switch (options.partition.scheme) {
    case PartitionOptions::Scheme::kDefault:
      break;
    case PartitionOptions::Scheme::kBalanced:
      submit.partition.scheme = "balanced";
      break;
    case PartitionOptions::Scheme::kEven:
      submit.partition.scheme = "even";
      break;
    case PartitionOptions::Scheme::kExplicit:
      submit.partition.scheme = "explicit";
      break;
    case PartitionOptions::Scheme::kSearched:
      submit.partition.scheme = "searched";
      break;
  }
  submit.partition.workers = static_cast<uint32_t>(std::max(options.partition.workers, 0));
  for (int64_t cut : options.partition.cuts) {
    submit.partition.cuts.push_back(static_cast<uint64_t>(std::max<int64_t>(cut, 0)));
  }
  return submit;
}

Status validate_options(const RequestOptions& options) {
  const uint32_t most = net::ControlLimits{}.max_top_logprobs;
  if (options.top_logprobs < 0 || static_cast<uint32_t>(options.top_logprobs) > most) {
    return make_error(ErrorCode::kInvalidArgument,
                      "top_logprobs is " + std::to_string(options.top_logprobs) +
                          "; it must be between 0 (none) and " + std::to_string(most));
  }
  return Status::ok();
}

ClusterStatus to_cluster_status(const net::StatusReply& reply) {
  ClusterStatus status;
  for (const net::WorkerStatus& worker : reply.workers) {
    status.workers.push_back(WorkerState{.id = worker.worker_id,
                                         .name = worker.name,
                                         .backend = worker.info.backend,
                                         .model_hash = worker.info.model_hash,
                                         .healthy = worker.healthy,
                                         .last_heartbeat_age_ms = worker.last_heartbeat_age_millis,
                                         .active_requests = worker.active_requests,
                                         .free_memory_bytes = worker.info.free_memory_bytes});
  }
  status.queued_requests = reply.queued_requests;
  status.active_requests = reply.active_requests;
  status.queue_capacity = reply.queue_capacity;
  return status;
}

}  // namespace runahead
