#include "net/control/control_wire.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>

namespace runahead::net::wire {
namespace {

// ---- enums -------------------------------------------------------------------------------

schema::Role to_wire(PeerRole role) {
  switch (role) {
    case PeerRole::kWorker:
      return schema::Role::WORKER;
    case PeerRole::kClient:
      return schema::Role::CLIENT;
  }
  return schema::Role::CLIENT;
}

Result<PeerRole> from_wire(schema::Role role) {
  switch (role) {
    case schema::Role::WORKER:
      return PeerRole::kWorker;
    case schema::Role::CLIENT:
      return PeerRole::kClient;
  }
  return make_error(ErrorCode::kProtocol,
                    fmt::format("unknown peer role {}", static_cast<unsigned>(role)));
}

schema::ErrorCode to_wire(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return schema::ErrorCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound:
      return schema::ErrorCode::NOT_FOUND;
    case ErrorCode::kOutOfRange:
      return schema::ErrorCode::OUT_OF_RANGE;
    case ErrorCode::kCorruptData:
      return schema::ErrorCode::CORRUPT_DATA;
    case ErrorCode::kUnsupported:
      return schema::ErrorCode::UNSUPPORTED;
    case ErrorCode::kResourceExhausted:
      return schema::ErrorCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kUnavailable:
      return schema::ErrorCode::UNAVAILABLE;
    case ErrorCode::kTimeout:
      return schema::ErrorCode::TIMEOUT;
    case ErrorCode::kCancelled:
      return schema::ErrorCode::CANCELLED;
    case ErrorCode::kProtocol:
      return schema::ErrorCode::PROTOCOL;
    case ErrorCode::kInternal:
      return schema::ErrorCode::INTERNAL;
    case ErrorCode::kDevice:
      return schema::ErrorCode::DEVICE;
  }
  return schema::ErrorCode::INTERNAL;
}

Result<ErrorCode> from_wire(schema::ErrorCode code) {
  switch (code) {
    case schema::ErrorCode::INVALID_ARGUMENT:
      return ErrorCode::kInvalidArgument;
    case schema::ErrorCode::NOT_FOUND:
      return ErrorCode::kNotFound;
    case schema::ErrorCode::OUT_OF_RANGE:
      return ErrorCode::kOutOfRange;
    case schema::ErrorCode::CORRUPT_DATA:
      return ErrorCode::kCorruptData;
    case schema::ErrorCode::UNSUPPORTED:
      return ErrorCode::kUnsupported;
    case schema::ErrorCode::RESOURCE_EXHAUSTED:
      return ErrorCode::kResourceExhausted;
    case schema::ErrorCode::UNAVAILABLE:
      return ErrorCode::kUnavailable;
    case schema::ErrorCode::TIMEOUT:
      return ErrorCode::kTimeout;
    case schema::ErrorCode::CANCELLED:
      return ErrorCode::kCancelled;
    case schema::ErrorCode::PROTOCOL:
      return ErrorCode::kProtocol;
    case schema::ErrorCode::INTERNAL:
      return ErrorCode::kInternal;
    case schema::ErrorCode::DEVICE:
      return ErrorCode::kDevice;
  }
  return make_error(ErrorCode::kProtocol,
                    fmt::format("unknown error code {}", static_cast<unsigned>(code)));
}

schema::PartitionScheme to_wire(std::optional<PartitionScheme> scheme) {
  if (!scheme) return schema::PartitionScheme::UNSET;
  switch (*scheme) {
    case PartitionScheme::kBalanced:
      return schema::PartitionScheme::BALANCED;
    case PartitionScheme::kEven:
      return schema::PartitionScheme::EVEN;
    case PartitionScheme::kExplicit:
      return schema::PartitionScheme::EXPLICIT;
    case PartitionScheme::kSearched:
      return schema::PartitionScheme::SEARCHED;
  }
  return schema::PartitionScheme::UNSET;
}

Result<std::optional<PartitionScheme>> from_wire(schema::PartitionScheme scheme) {
  switch (scheme) {
    case schema::PartitionScheme::UNSET:
      return std::optional<PartitionScheme>();
    case schema::PartitionScheme::BALANCED:
      return std::optional<PartitionScheme>(PartitionScheme::kBalanced);
    case schema::PartitionScheme::EVEN:
      return std::optional<PartitionScheme>(PartitionScheme::kEven);
    case schema::PartitionScheme::EXPLICIT:
      return std::optional<PartitionScheme>(PartitionScheme::kExplicit);
    case schema::PartitionScheme::SEARCHED:
      return std::optional<PartitionScheme>(PartitionScheme::kSearched);
  }
  return make_error(ErrorCode::kProtocol,
                    fmt::format("unknown partition scheme {}", static_cast<unsigned>(scheme)));
}

// ---- writing -----------------------------------------------------------------------------

capnp::Text::Reader text(const std::string& value) {
  return capnp::Text::Reader(value.c_str(), value.size());
}

capnp::Data::Reader data(const std::vector<uint8_t>& value) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(value.data()), value.size());
}

template <typename ListBuilder, typename T>
void fill_scalars(ListBuilder list, const std::vector<T>& values) {
  for (size_t i = 0; i < values.size(); ++i) list.set(static_cast<unsigned>(i), values[i]);
}

void write(schema::WorkerInfo::Builder out, const WorkerInfo& in) {
  out.setDataPlaneAddress(data(in.data_plane_address));
  out.setBackend(text(in.backend));
  out.setFreeMemoryBytes(in.free_memory_bytes);
  out.setModelHash(text(in.model_hash));
  out.setPerTokenSeconds(in.per_token_seconds);
  out.setPerKeySeconds(in.per_key_seconds);
  out.setSlidingWindow(in.sliding_window);
  out.setMaxPositions(in.max_positions);
  out.setVocabSize(in.vocab_size);
}

void write(schema::SamplingOptions::Builder out, const SamplingOptions& in) {
  out.setTemperature(in.temperature);
  out.setTopK(static_cast<uint32_t>(std::max(in.top_k, 0)));
  out.setTopP(in.top_p);
  out.setSeed(in.seed);
  out.setRepetitionPenalty(in.repetition_penalty);
}

void write(capnp::List<schema::LayerTiming>::Builder out, const std::vector<LayerTiming>& in) {
  for (size_t i = 0; i < in.size(); ++i) {
    auto layer = out[static_cast<unsigned>(i)];
    layer.setWorkerId(in[i].worker_id);
    layer.setLayer(in[i].layer);
    layer.setComputeNanos(static_cast<uint64_t>(in[i].compute.count()));
    layer.setWaitNanos(static_cast<uint64_t>(in[i].wait.count()));
    layer.setBytesIn(in[i].bytes_in);
    layer.setBytesOut(in[i].bytes_out);
  }
}

// ---- reading helpers
// -----------------------------------------------------------------------------

std::string copy_text(capnp::Text::Reader value) {
  return std::string(value.cStr(), value.size());
}

// A kv target is a few hundred bytes (a CUDA IPC handle and a layout); anything far larger is
// not one.
constexpr uint32_t kMaxKvTargetBytes = 4096;

std::vector<uint8_t> copy_data(capnp::Data::Reader value) {
  return std::vector<uint8_t>(value.begin(), value.end());
}

Status check_length(size_t length, uint32_t max, const char* what) {
  if (length > max) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("{} has {} elements, above the limit of {}", what, length, max));
  }
  return Status::ok();
}

template <typename T, typename ListReader>
Result<std::vector<T>> copy_scalars(ListReader list, const ControlLimits& limits,
                                    const char* what) {
  RUNAHEAD_RETURN_IF_ERROR(check_length(list.size(), limits.max_list_elements, what));
  std::vector<T> values;
  values.reserve(list.size());
  for (auto value : list) values.push_back(value);
  return values;
}

// A duration the wire carries as unsigned; beyond int64 it is no duration a peer measured.
template <typename Duration>
Result<Duration> read_duration(uint64_t count, const char* what) {
  if (count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return make_error(ErrorCode::kProtocol, fmt::format("{} of {} is out of range", what, count));
  }
  return Duration(static_cast<int64_t>(count));
}

WorkerInfo read(schema::WorkerInfo::Reader in) {
  WorkerInfo out;
  out.data_plane_address = copy_data(in.getDataPlaneAddress());
  out.backend = copy_text(in.getBackend());
  out.free_memory_bytes = in.getFreeMemoryBytes();
  out.model_hash = copy_text(in.getModelHash());
  out.per_token_seconds = in.getPerTokenSeconds();
  out.per_key_seconds = in.getPerKeySeconds();
  out.sliding_window = in.getSlidingWindow();
  out.max_positions = in.getMaxPositions();
  out.vocab_size = in.getVocabSize();
  return out;
}

Result<SamplingOptions> read(schema::SamplingOptions::Reader in) {
  SamplingOptions out;
  out.temperature = in.getTemperature();
  const uint32_t top_k = in.getTopK();
  if (top_k > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    return make_error(ErrorCode::kProtocol, fmt::format("top-k {} is out of range", top_k));
  }
  out.top_k = static_cast<int>(top_k);
  out.top_p = in.getTopP();
  out.seed = in.getSeed();
  out.repetition_penalty = in.getRepetitionPenalty();
  return out;
}

// K of a request's top-K log-probabilities: bounded before any Token is built for it.
Result<uint32_t> read_top_logprobs(uint32_t k, const ControlLimits& limits) {
  if (k > limits.max_top_logprobs) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("top log-probabilities K={} is above the limit of {}", k,
                                  limits.max_top_logprobs));
  }
  return k;
}

Result<std::vector<LayerTiming>> read(capnp::List<schema::LayerTiming>::Reader layers,
                                      const ControlLimits& limits) {
  RUNAHEAD_RETURN_IF_ERROR(
      check_length(layers.size(), limits.max_struct_list_elements, "timeline"));
  std::vector<LayerTiming> out;
  out.reserve(layers.size());
  for (auto layer : layers) {
    LayerTiming timing;
    timing.worker_id = layer.getWorkerId();
    timing.layer = layer.getLayer();
    RUNAHEAD_ASSIGN_OR_RETURN(timing.compute, read_duration<std::chrono::nanoseconds>(
                                                  layer.getComputeNanos(), "compute time"));
    RUNAHEAD_ASSIGN_OR_RETURN(
        timing.wait, read_duration<std::chrono::nanoseconds>(layer.getWaitNanos(), "wait time"));
    timing.bytes_in = layer.getBytesIn();
    timing.bytes_out = layer.getBytesOut();
    out.push_back(timing);
  }
  return out;
}

}  // namespace

// ---- messages ----------------------------------------------------------------------------

void write(schema::Hello::Builder out, const Hello& in) {
  out.setProtocolVersion(in.protocol_version);
  out.setRole(to_wire(in.role));
  out.setName(text(in.name));
  write(out.initWorker(), in.worker);
  out.setNonce(data(in.nonce));
}

void write(schema::HelloChallenge::Builder out, const HelloChallenge& in) {
  out.setNonce(data(in.nonce));
  out.setProof(data(in.proof));
}

void write(schema::HelloProof::Builder out, const HelloProof& in) {
  out.setProof(data(in.proof));
}

void write(schema::HelloAck::Builder out, const HelloAck& in) {
  out.setProtocolVersion(in.protocol_version);
  out.setAccepted(in.accepted);
  out.setReason(text(in.reason));
  out.setPeerId(in.peer_id);
}

void write(schema::Heartbeat::Builder out, const Heartbeat& in) {
  out.setSequence(in.sequence);
  out.setActiveRequests(in.active_requests);
  out.setFreeMemoryBytes(in.free_memory_bytes);
}

void write(schema::SubmitRequest::Builder out, const SubmitRequest& in) {
  out.setRequestId(in.request_id);
  fill_scalars(out.initPromptTokens(static_cast<unsigned>(in.prompt_tokens.size())),
               in.prompt_tokens);
  out.setMaxNewTokens(in.max_new_tokens);
  write(out.initSampling(), in.sampling);
  out.setReturnLogits(in.return_logits);
  auto partition = out.initPartition();
  partition.setScheme(to_wire(in.partition.scheme));
  partition.setWorkers(in.partition.workers);
  fill_scalars(partition.initCuts(static_cast<unsigned>(in.partition.cuts.size())),
               in.partition.cuts);
  out.setTopLogprobs(in.top_logprobs);
  out.setIgnoreEos(in.ignore_eos);
  out.setTimeoutMillis(in.timeout_millis);
}

void write(schema::Cancel::Builder out, const Cancel& in) {
  out.setRequestId(in.request_id);
  out.setReason(text(in.reason));
}

void write(schema::StatusQuery::Builder, const StatusQuery&) {}

void write(schema::SliceReady::Builder out, const SliceReady& in) {
  out.setRequestId(in.request_id);
  out.setWorkerId(in.worker_id);
  out.setIndex(in.index);
  out.setKvTarget(data(in.kv_target));
  out.setDirectToAll(in.direct_to_all);
}

void write(schema::SliceDone::Builder out, const SliceDone& in) {
  out.setRequestId(in.request_id);
  out.setWorkerId(in.worker_id);
  out.setIndex(in.index);
  write(out.initTimeline(static_cast<unsigned>(in.timeline.size())), in.timeline);
}

void write(schema::Token::Builder out, const Token& in) {
  out.setRequestId(in.request_id);
  out.setToken(in.token);
  out.setIndex(in.index);
  out.setIsLast(in.is_last);
  fill_scalars(out.initLogits(static_cast<unsigned>(in.logits.size())), in.logits);
  out.setLogprob(in.logprob);
  fill_scalars(out.initTopTokens(static_cast<unsigned>(in.top_tokens.size())), in.top_tokens);
  fill_scalars(out.initTopLogprobs(static_cast<unsigned>(in.top_logprobs.size())), in.top_logprobs);
}

void write(schema::RequestError::Builder out, const RequestError& in) {
  out.setRequestId(in.request_id);
  out.setCode(to_wire(in.code));
  out.setMessage(text(in.message));
}

void write(schema::AssignSlice::Builder out, const AssignSlice& in) {
  out.setRequestId(in.request_id);
  auto chain = out.initChain(static_cast<unsigned>(in.chain.size()));
  for (size_t i = 0; i < in.chain.size(); ++i) {
    chain[static_cast<unsigned>(i)].setWorkerId(in.chain[i].worker_id);
    chain[static_cast<unsigned>(i)].setDataPlaneAddress(data(in.chain[i].data_plane_address));
  }
  out.setIndex(in.index);
  out.setSliceBegin(in.slice_begin);
  out.setSliceEnd(in.slice_end);
  fill_scalars(out.initTokens(static_cast<unsigned>(in.tokens.size())), in.tokens);
  out.setTotalPromptTokens(in.total_prompt_tokens);
  out.setMaxNewTokens(in.max_new_tokens);
  fill_scalars(out.initHistoryTokens(static_cast<unsigned>(in.history_tokens.size())),
               in.history_tokens);
  write(out.initSampling(), in.sampling);
  out.setReturnLogits(in.return_logits);
  out.setTopLogprobs(in.top_logprobs);
  out.setIgnoreEos(in.ignore_eos);
  out.setKvCapability(kj::arrayPtr(in.kv_capability.data(), in.kv_capability.size()));
}

void write(schema::StartSlice::Builder out, const StartSlice& in) {
  out.setRequestId(in.request_id);
  out.setSuccessorKvTarget(data(in.successor_kv_target));
  out.setFanOut(in.fan_out);
  auto later = out.initLaterKvTargets(static_cast<unsigned>(in.later_kv_targets.size()));
  for (size_t i = 0; i < in.later_kv_targets.size(); ++i) {
    later.set(static_cast<unsigned>(i), data(in.later_kv_targets[i]));
  }
}

void write(schema::RequestResult::Builder out, const RequestResult& in) {
  out.setRequestId(in.request_id);
  fill_scalars(out.initTokens(static_cast<unsigned>(in.tokens.size())), in.tokens);
  out.setTtftNanos(in.ttft_nanos);
  out.setTotalNanos(in.total_nanos);
  write(out.initTimeline(static_cast<unsigned>(in.timeline.size())), in.timeline);
  fill_scalars(out.initCuts(static_cast<unsigned>(in.cuts.size())), in.cuts);
}

void write(schema::StatusReply::Builder out, const StatusReply& in) {
  auto workers = out.initWorkers(static_cast<unsigned>(in.workers.size()));
  for (size_t i = 0; i < in.workers.size(); ++i) {
    auto worker = workers[static_cast<unsigned>(i)];
    const WorkerRecord& record = in.workers[i];
    worker.setWorkerId(record.id);
    worker.setName(text(record.name));
    write(worker.initInfo(), record.info);
    worker.setHealthy(record.healthy);
    worker.setLastHeartbeatAgeMillis(static_cast<uint64_t>(record.last_heartbeat_age.count()));
    worker.setActiveRequests(record.active_requests);
  }
  out.setQueuedRequests(in.queued_requests);
  out.setActiveRequests(in.active_requests);
  out.setQueueCapacity(in.queue_capacity);
}

Result<Hello> read(schema::Hello::Reader in) {
  Hello out;
  out.protocol_version = in.getProtocolVersion();
  RUNAHEAD_ASSIGN_OR_RETURN(out.role, from_wire(in.getRole()));
  out.name = copy_text(in.getName());
  out.worker = read(in.getWorker());
  out.nonce = copy_data(in.getNonce());
  return out;
}

HelloChallenge read(schema::HelloChallenge::Reader in) {
  return HelloChallenge{copy_data(in.getNonce()), copy_data(in.getProof())};
}

HelloProof read(schema::HelloProof::Reader in) {
  return HelloProof{copy_data(in.getProof())};
}

HelloAck read(schema::HelloAck::Reader in) {
  HelloAck out;
  out.protocol_version = in.getProtocolVersion();
  out.accepted = in.getAccepted();
  out.reason = copy_text(in.getReason());
  out.peer_id = in.getPeerId();
  return out;
}

Heartbeat read(schema::Heartbeat::Reader in) {
  return Heartbeat{in.getSequence(), in.getActiveRequests(), in.getFreeMemoryBytes()};
}

Result<SubmitRequest> read(schema::SubmitRequest::Reader in, const ControlLimits& limits) {
  SubmitRequest out;
  out.request_id = in.getRequestId();
  RUNAHEAD_ASSIGN_OR_RETURN(out.prompt_tokens,
                            copy_scalars<int32_t>(in.getPromptTokens(), limits, "prompt"));
  out.max_new_tokens = in.getMaxNewTokens();
  RUNAHEAD_ASSIGN_OR_RETURN(out.sampling, read(in.getSampling()));
  out.return_logits = in.getReturnLogits();
  auto partition = in.getPartition();
  RUNAHEAD_ASSIGN_OR_RETURN(out.partition.scheme, from_wire(partition.getScheme()));
  out.partition.workers = partition.getWorkers();
  RUNAHEAD_ASSIGN_OR_RETURN(out.partition.cuts,
                            copy_scalars<uint64_t>(partition.getCuts(), limits, "cuts"));
  RUNAHEAD_ASSIGN_OR_RETURN(out.top_logprobs, read_top_logprobs(in.getTopLogprobs(), limits));
  out.ignore_eos = in.getIgnoreEos();
  out.timeout_millis = in.getTimeoutMillis();
  return out;
}

Cancel read(schema::Cancel::Reader in) {
  return Cancel{in.getRequestId(), copy_text(in.getReason())};
}

Result<SliceReady> read(schema::SliceReady::Reader in) {
  RUNAHEAD_RETURN_IF_ERROR(check_length(in.getKvTarget().size(), kMaxKvTargetBytes, "kv target"));
  return SliceReady{in.getRequestId(), in.getWorkerId(), in.getIndex(), copy_data(in.getKvTarget()),
                    in.getDirectToAll()};
}

Result<SliceDone> read(schema::SliceDone::Reader in, const ControlLimits& limits) {
  SliceDone out;
  out.request_id = in.getRequestId();
  out.worker_id = in.getWorkerId();
  out.index = in.getIndex();
  RUNAHEAD_ASSIGN_OR_RETURN(out.timeline, read(in.getTimeline(), limits));
  return out;
}

Result<Token> read(schema::Token::Reader in, const ControlLimits& limits) {
  Token out;
  out.request_id = in.getRequestId();
  out.token = in.getToken();
  out.index = in.getIndex();
  out.is_last = in.getIsLast();
  RUNAHEAD_ASSIGN_OR_RETURN(out.logits, copy_scalars<float>(in.getLogits(), limits, "logits"));
  out.logprob = in.getLogprob();
  auto top_tokens = in.getTopTokens();
  auto top_logprobs = in.getTopLogprobs();
  RUNAHEAD_RETURN_IF_ERROR(
      check_length(top_tokens.size(), limits.max_top_logprobs, "top log-probability ids"));
  if (top_logprobs.size() != top_tokens.size()) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("token carries {} top log-probabilities for {} ids",
                                  top_logprobs.size(), top_tokens.size()));
  }
  RUNAHEAD_ASSIGN_OR_RETURN(out.top_tokens,
                            copy_scalars<int32_t>(top_tokens, limits, "top log-probability ids"));
  RUNAHEAD_ASSIGN_OR_RETURN(out.top_logprobs,
                            copy_scalars<float>(top_logprobs, limits, "top log-probabilities"));
  return out;
}

Result<RequestError> read(schema::RequestError::Reader in) {
  RequestError out;
  out.request_id = in.getRequestId();
  RUNAHEAD_ASSIGN_OR_RETURN(out.code, from_wire(in.getCode()));
  out.message = copy_text(in.getMessage());
  return out;
}

Result<AssignSlice> read(schema::AssignSlice::Reader in, const ControlLimits& limits) {
  AssignSlice out;
  out.request_id = in.getRequestId();
  auto chain = in.getChain();
  RUNAHEAD_RETURN_IF_ERROR(
      check_length(chain.size(), limits.max_struct_list_elements, "worker chain"));
  out.chain.reserve(chain.size());
  for (auto member : chain) {
    out.chain.push_back(ChainMember{member.getWorkerId(), copy_data(member.getDataPlaneAddress())});
  }
  out.index = in.getIndex();
  out.slice_begin = in.getSliceBegin();
  out.slice_end = in.getSliceEnd();
  RUNAHEAD_ASSIGN_OR_RETURN(out.tokens,
                            copy_scalars<int32_t>(in.getTokens(), limits, "slice tokens"));
  out.total_prompt_tokens = in.getTotalPromptTokens();
  out.max_new_tokens = in.getMaxNewTokens();
  RUNAHEAD_ASSIGN_OR_RETURN(out.sampling, read(in.getSampling()));
  out.return_logits = in.getReturnLogits();
  RUNAHEAD_ASSIGN_OR_RETURN(out.history_tokens,
                            copy_scalars<int32_t>(in.getHistoryTokens(), limits, "history"));
  RUNAHEAD_ASSIGN_OR_RETURN(out.top_logprobs, read_top_logprobs(in.getTopLogprobs(), limits));
  out.ignore_eos = in.getIgnoreEos();
  const auto capability = in.getKvCapability();
  if (capability.size() != out.kv_capability.size()) {
    return make_error(ErrorCode::kProtocol,
                      "AssignSlice of request " + std::to_string(out.request_id) +
                          ": a data-plane capability of " + std::to_string(capability.size()) +
                          " bytes, expected " + std::to_string(out.kv_capability.size()));
  }
  std::copy(capability.begin(), capability.end(), out.kv_capability.begin());
  return out;
}

Result<StartSlice> read(schema::StartSlice::Reader in, const ControlLimits& limits) {
  RUNAHEAD_RETURN_IF_ERROR(
      check_length(in.getSuccessorKvTarget().size(), kMaxKvTargetBytes, "successor kv target"));
  StartSlice out{in.getRequestId(), copy_data(in.getSuccessorKvTarget()), in.getFanOut(), {}};
  auto later = in.getLaterKvTargets();
  RUNAHEAD_RETURN_IF_ERROR(check_length(later.size(), limits.max_list_elements, "kv targets"));
  for (auto target : later) {
    RUNAHEAD_RETURN_IF_ERROR(check_length(target.size(), kMaxKvTargetBytes, "kv target"));
    out.later_kv_targets.push_back(copy_data(target));
  }
  return out;
}

Result<RequestResult> read(schema::RequestResult::Reader in, const ControlLimits& limits) {
  RequestResult out;
  out.request_id = in.getRequestId();
  RUNAHEAD_ASSIGN_OR_RETURN(out.tokens,
                            copy_scalars<int32_t>(in.getTokens(), limits, "result tokens"));
  out.ttft_nanos = in.getTtftNanos();
  out.total_nanos = in.getTotalNanos();
  RUNAHEAD_ASSIGN_OR_RETURN(out.timeline, read(in.getTimeline(), limits));
  RUNAHEAD_ASSIGN_OR_RETURN(out.cuts, copy_scalars<uint64_t>(in.getCuts(), limits, "cuts"));
  return out;
}

Result<StatusReply> read(schema::StatusReply::Reader in, const ControlLimits& limits) {
  StatusReply out;
  auto workers = in.getWorkers();
  RUNAHEAD_RETURN_IF_ERROR(
      check_length(workers.size(), limits.max_struct_list_elements, "worker list"));
  out.workers.reserve(workers.size());
  for (auto worker : workers) {
    WorkerRecord record;
    record.id = worker.getWorkerId();
    record.name = copy_text(worker.getName());
    record.info = read(worker.getInfo());
    record.healthy = worker.getHealthy();
    RUNAHEAD_ASSIGN_OR_RETURN(record.last_heartbeat_age,
                              read_duration<std::chrono::milliseconds>(
                                  worker.getLastHeartbeatAgeMillis(), "heartbeat age"));
    record.active_requests = worker.getActiveRequests();
    out.workers.push_back(std::move(record));
  }
  out.queued_requests = in.getQueuedRequests();
  out.active_requests = in.getActiveRequests();
  out.queue_capacity = in.getQueueCapacity();
  return out;
}

}  // namespace runahead::net::wire
