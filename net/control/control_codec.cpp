#include "net/control/control_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include <cstring>

#include "net/control/frame.h"
#include "net/control/schema/control.capnp.h"
#include "runtime/overloaded.h"

namespace runahead::net {
namespace {

static_assert(kProtocolVersion == schema::PROTOCOL_VERSION,
              "kProtocolVersion must equal protocolVersion in net/control/schema/control.capnp");

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
  out.setListenAddress(text(in.listen_address));
  out.setDataPlaneAddress(data(in.data_plane_address));
  out.setBackend(text(in.backend));
  out.setFreeMemoryBytes(in.free_memory_bytes);
  out.setModelHash(text(in.model_hash));
  out.setPerTokenSeconds(in.per_token_seconds);
  out.setPerKeySeconds(in.per_key_seconds);
  out.setSlidingWindow(in.sliding_window);
}

void write(schema::SamplingParams::Builder out, const SamplingParams& in) {
  out.setTemperature(in.temperature);
  out.setTopK(in.top_k);
  out.setTopP(in.top_p);
  out.setSeed(in.seed);
  out.setRepetitionPenalty(in.repetition_penalty);
}

void write(schema::Timeline::Builder out, const Timeline& in) {
  auto layers = out.initLayers(static_cast<unsigned>(in.layers.size()));
  for (size_t i = 0; i < in.layers.size(); ++i) {
    auto layer = layers[static_cast<unsigned>(i)];
    const LayerTiming& timing = in.layers[i];
    layer.setWorkerId(timing.worker_id);
    layer.setLayer(timing.layer);
    layer.setComputeNanos(timing.compute_nanos);
    layer.setWaitNanos(timing.wait_nanos);
    layer.setBytesIn(timing.bytes_in);
    layer.setBytesOut(timing.bytes_out);
  }
}

void write(schema::Envelope::Builder envelope, const ControlMessage& message) {
  using runtime::Overloaded;
  std::visit(
      Overloaded{
          [&](const Hello& in) {
            auto out = envelope.initHello();
            out.setProtocolVersion(in.protocol_version);
            out.setRole(to_wire(in.role));
            out.setName(text(in.name));
            write(out.initWorker(), in.worker);
          },
          [&](const HelloAck& in) {
            auto out = envelope.initHelloAck();
            out.setProtocolVersion(in.protocol_version);
            out.setAccepted(in.accepted);
            out.setReason(text(in.reason));
            out.setPeerId(in.peer_id);
          },
          [&](const Heartbeat& in) {
            auto out = envelope.initHeartbeat();
            out.setSequence(in.sequence);
            out.setActiveRequests(in.active_requests);
            out.setFreeMemoryBytes(in.free_memory_bytes);
          },
          [&](const SubmitRequest& in) {
            auto out = envelope.initSubmitRequest();
            out.setRequestId(in.request_id);
            fill_scalars(out.initPromptTokens(static_cast<unsigned>(in.prompt_tokens.size())),
                         in.prompt_tokens);
            out.setMaxNewTokens(in.max_new_tokens);
            write(out.initSampling(), in.sampling);
            out.setReturnLogits(in.return_logits);
            auto partition = out.initPartition();
            partition.setScheme(text(in.partition.scheme));
            partition.setWorkers(in.partition.workers);
            fill_scalars(partition.initCuts(static_cast<unsigned>(in.partition.cuts.size())),
                         in.partition.cuts);
            out.setTopLogprobs(in.top_logprobs);
            out.setIgnoreEos(in.ignore_eos);
          },
          [&](const Cancel& in) {
            auto out = envelope.initCancel();
            out.setRequestId(in.request_id);
            out.setReason(text(in.reason));
          },
          [&](const AssignSlice& in) {
            auto out = envelope.initAssignSlice();
            out.setRequestId(in.request_id);
            auto chain = out.initChain(static_cast<unsigned>(in.chain.size()));
            for (size_t i = 0; i < in.chain.size(); ++i) {
              chain[static_cast<unsigned>(i)].setWorkerId(in.chain[i].worker_id);
              chain[static_cast<unsigned>(i)].setDataPlaneAddress(
                  data(in.chain[i].data_plane_address));
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
          },
          [&](const SliceDone& in) {
            auto out = envelope.initSliceDone();
            out.setRequestId(in.request_id);
            out.setWorkerId(in.worker_id);
            out.setIndex(in.index);
            write(out.initTimeline(), in.timeline);
          },
          [&](const Token& in) {
            auto out = envelope.initToken();
            out.setRequestId(in.request_id);
            out.setToken(in.token);
            out.setIndex(in.index);
            out.setIsLast(in.is_last);
            fill_scalars(out.initLogits(static_cast<unsigned>(in.logits.size())), in.logits);
            out.setLogprob(in.logprob);
            fill_scalars(out.initTopTokens(static_cast<unsigned>(in.top_tokens.size())),
                         in.top_tokens);
            fill_scalars(out.initTopLogprobs(static_cast<unsigned>(in.top_logprobs.size())),
                         in.top_logprobs);
          },
          [&](const RequestResult& in) {
            auto out = envelope.initRequestResult();
            out.setRequestId(in.request_id);
            fill_scalars(out.initTokens(static_cast<unsigned>(in.tokens.size())), in.tokens);
            out.setTtftNanos(in.ttft_nanos);
            out.setTotalNanos(in.total_nanos);
            write(out.initTimeline(), in.timeline);
            fill_scalars(out.initCuts(static_cast<unsigned>(in.cuts.size())), in.cuts);
          },
          [&](const RequestError& in) {
            auto out = envelope.initRequestError();
            out.setRequestId(in.request_id);
            out.setCode(to_wire(in.code));
            out.setMessage(text(in.message));
          },
          [&](const StatusQuery&) { envelope.initStatusQuery(); },
          [&](const StatusReply& in) {
            auto out = envelope.initStatusReply();
            auto workers = out.initWorkers(static_cast<unsigned>(in.workers.size()));
            for (size_t i = 0; i < in.workers.size(); ++i) {
              auto worker = workers[static_cast<unsigned>(i)];
              const WorkerStatus& status = in.workers[i];
              worker.setWorkerId(status.worker_id);
              worker.setName(text(status.name));
              write(worker.initInfo(), status.info);
              worker.setHealthy(status.healthy);
              worker.setLastHeartbeatAgeMillis(status.last_heartbeat_age_millis);
              worker.setActiveRequests(status.active_requests);
            }
            out.setQueuedRequests(in.queued_requests);
            out.setActiveRequests(in.active_requests);
            out.setQueueCapacity(in.queue_capacity);
          },
          [&](const CalibrateRequest& in) {
            auto out = envelope.initCalibrateRequest();
            out.setProbeId(in.probe_id);
            auto points = out.initPoints(static_cast<unsigned>(in.points.size()));
            for (size_t i = 0; i < in.points.size(); ++i) {
              points[static_cast<unsigned>(i)].setPrefixTokens(in.points[i].prefix_tokens);
              points[static_cast<unsigned>(i)].setSliceTokens(in.points[i].slice_tokens);
            }
          },
          [&](const CalibrateReply& in) {
            auto out = envelope.initCalibrateReply();
            out.setProbeId(in.probe_id);
            fill_scalars(out.initNanos(static_cast<unsigned>(in.nanos.size())), in.nanos);
          },
          [&](const SliceReady& in) {
            auto out = envelope.initSliceReady();
            out.setRequestId(in.request_id);
            out.setWorkerId(in.worker_id);
            out.setIndex(in.index);
            out.setKvTarget(data(in.kv_target));
            out.setDirectToAll(in.direct_to_all);
          },
          [&](const StartSlice& in) {
            auto out = envelope.initStartSlice();
            out.setRequestId(in.request_id);
            out.setSuccessorKvTarget(data(in.successor_kv_target));
            out.setFanOut(in.fan_out);
            auto later = out.initLaterKvTargets(static_cast<unsigned>(in.later_kv_targets.size()));
            for (size_t i = 0; i < in.later_kv_targets.size(); ++i) {
              later.set(static_cast<unsigned>(i), data(in.later_kv_targets[i]));
            }
          },
      },
      message);
}

// ---- reading -----------------------------------------------------------------------------

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

WorkerInfo read(schema::WorkerInfo::Reader in) {
  WorkerInfo out;
  out.listen_address = copy_text(in.getListenAddress());
  out.data_plane_address = copy_data(in.getDataPlaneAddress());
  out.backend = copy_text(in.getBackend());
  out.free_memory_bytes = in.getFreeMemoryBytes();
  out.model_hash = copy_text(in.getModelHash());
  out.per_token_seconds = in.getPerTokenSeconds();
  out.per_key_seconds = in.getPerKeySeconds();
  out.sliding_window = in.getSlidingWindow();
  return out;
}

SamplingParams read(schema::SamplingParams::Reader in) {
  SamplingParams out;
  out.temperature = in.getTemperature();
  out.top_k = in.getTopK();
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

Result<Timeline> read(schema::Timeline::Reader in, const ControlLimits& limits) {
  auto layers = in.getLayers();
  RUNAHEAD_RETURN_IF_ERROR(
      check_length(layers.size(), limits.max_struct_list_elements, "timeline"));
  Timeline out;
  out.layers.reserve(layers.size());
  for (auto layer : layers) {
    out.layers.push_back(LayerTiming{layer.getWorkerId(), layer.getLayer(), layer.getComputeNanos(),
                                     layer.getWaitNanos(), layer.getBytesIn(),
                                     layer.getBytesOut()});
  }
  return out;
}

Result<ControlMessage> read(schema::Envelope::Reader envelope, const ControlLimits& limits) {
  switch (envelope.which()) {
    case schema::Envelope::HELLO: {
      auto in = envelope.getHello();
      Hello out;
      out.protocol_version = in.getProtocolVersion();
      RUNAHEAD_ASSIGN_OR_RETURN(out.role, from_wire(in.getRole()));
      out.name = copy_text(in.getName());
      out.worker = read(in.getWorker());
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::HELLO_ACK: {
      auto in = envelope.getHelloAck();
      HelloAck out;
      out.protocol_version = in.getProtocolVersion();
      out.accepted = in.getAccepted();
      out.reason = copy_text(in.getReason());
      out.peer_id = in.getPeerId();
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::HEARTBEAT: {
      auto in = envelope.getHeartbeat();
      return ControlMessage(
          Heartbeat{in.getSequence(), in.getActiveRequests(), in.getFreeMemoryBytes()});
    }
    case schema::Envelope::SUBMIT_REQUEST: {
      auto in = envelope.getSubmitRequest();
      SubmitRequest out;
      out.request_id = in.getRequestId();
      RUNAHEAD_ASSIGN_OR_RETURN(out.prompt_tokens,
                                copy_scalars<int32_t>(in.getPromptTokens(), limits, "prompt"));
      out.max_new_tokens = in.getMaxNewTokens();
      out.sampling = read(in.getSampling());
      out.return_logits = in.getReturnLogits();
      auto partition = in.getPartition();
      RUNAHEAD_RETURN_IF_ERROR(check_length(partition.getScheme().size(), 64, "partition scheme"));
      out.partition.scheme = copy_text(partition.getScheme());
      out.partition.workers = partition.getWorkers();
      RUNAHEAD_ASSIGN_OR_RETURN(out.partition.cuts,
                                copy_scalars<uint64_t>(partition.getCuts(), limits, "cuts"));
      RUNAHEAD_ASSIGN_OR_RETURN(out.top_logprobs, read_top_logprobs(in.getTopLogprobs(), limits));
      out.ignore_eos = in.getIgnoreEos();
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::CANCEL: {
      auto in = envelope.getCancel();
      return ControlMessage(Cancel{in.getRequestId(), copy_text(in.getReason())});
    }
    case schema::Envelope::ASSIGN_SLICE: {
      auto in = envelope.getAssignSlice();
      AssignSlice out;
      out.request_id = in.getRequestId();
      auto chain = in.getChain();
      RUNAHEAD_RETURN_IF_ERROR(
          check_length(chain.size(), limits.max_struct_list_elements, "worker chain"));
      out.chain.reserve(chain.size());
      for (auto member : chain) {
        out.chain.push_back(
            ChainMember{member.getWorkerId(), copy_data(member.getDataPlaneAddress())});
      }
      out.index = in.getIndex();
      out.slice_begin = in.getSliceBegin();
      out.slice_end = in.getSliceEnd();
      RUNAHEAD_ASSIGN_OR_RETURN(out.tokens,
                                copy_scalars<int32_t>(in.getTokens(), limits, "slice tokens"));
      out.total_prompt_tokens = in.getTotalPromptTokens();
      out.max_new_tokens = in.getMaxNewTokens();
      out.sampling = read(in.getSampling());
      out.return_logits = in.getReturnLogits();
      RUNAHEAD_ASSIGN_OR_RETURN(out.history_tokens,
                                copy_scalars<int32_t>(in.getHistoryTokens(), limits, "history"));
      RUNAHEAD_ASSIGN_OR_RETURN(out.top_logprobs, read_top_logprobs(in.getTopLogprobs(), limits));
      out.ignore_eos = in.getIgnoreEos();
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::SLICE_DONE: {
      auto in = envelope.getSliceDone();
      SliceDone out;
      out.request_id = in.getRequestId();
      out.worker_id = in.getWorkerId();
      out.index = in.getIndex();
      RUNAHEAD_ASSIGN_OR_RETURN(out.timeline, read(in.getTimeline(), limits));
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::TOKEN: {
      auto in = envelope.getToken();
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
      RUNAHEAD_ASSIGN_OR_RETURN(
          out.top_tokens, copy_scalars<int32_t>(top_tokens, limits, "top log-probability ids"));
      RUNAHEAD_ASSIGN_OR_RETURN(out.top_logprobs,
                                copy_scalars<float>(top_logprobs, limits, "top log-probabilities"));
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::REQUEST_RESULT: {
      auto in = envelope.getRequestResult();
      RequestResult out;
      out.request_id = in.getRequestId();
      RUNAHEAD_ASSIGN_OR_RETURN(out.tokens,
                                copy_scalars<int32_t>(in.getTokens(), limits, "result tokens"));
      out.ttft_nanos = in.getTtftNanos();
      out.total_nanos = in.getTotalNanos();
      RUNAHEAD_ASSIGN_OR_RETURN(out.timeline, read(in.getTimeline(), limits));
      RUNAHEAD_ASSIGN_OR_RETURN(out.cuts, copy_scalars<uint64_t>(in.getCuts(), limits, "cuts"));
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::REQUEST_ERROR: {
      auto in = envelope.getRequestError();
      RequestError out;
      out.request_id = in.getRequestId();
      RUNAHEAD_ASSIGN_OR_RETURN(out.code, from_wire(in.getCode()));
      out.message = copy_text(in.getMessage());
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::STATUS_QUERY:
      return ControlMessage(StatusQuery{});
    case schema::Envelope::STATUS_REPLY: {
      auto in = envelope.getStatusReply();
      StatusReply out;
      auto workers = in.getWorkers();
      RUNAHEAD_RETURN_IF_ERROR(
          check_length(workers.size(), limits.max_struct_list_elements, "worker list"));
      out.workers.reserve(workers.size());
      for (auto worker : workers) {
        WorkerStatus status;
        status.worker_id = worker.getWorkerId();
        status.name = copy_text(worker.getName());
        status.info = read(worker.getInfo());
        status.healthy = worker.getHealthy();
        status.last_heartbeat_age_millis = worker.getLastHeartbeatAgeMillis();
        status.active_requests = worker.getActiveRequests();
        out.workers.push_back(std::move(status));
      }
      out.queued_requests = in.getQueuedRequests();
      out.active_requests = in.getActiveRequests();
      out.queue_capacity = in.getQueueCapacity();
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::CALIBRATE_REQUEST: {
      auto in = envelope.getCalibrateRequest();
      CalibrateRequest out;
      out.probe_id = in.getProbeId();
      auto points = in.getPoints();
      RUNAHEAD_RETURN_IF_ERROR(
          check_length(points.size(), limits.max_struct_list_elements, "calibration points"));
      out.points.reserve(points.size());
      for (auto point : points) {
        out.points.push_back(CalibrationPoint{point.getPrefixTokens(), point.getSliceTokens()});
      }
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::SLICE_READY: {
      auto in = envelope.getSliceReady();
      RUNAHEAD_RETURN_IF_ERROR(
          check_length(in.getKvTarget().size(), kMaxKvTargetBytes, "kv target"));
      return ControlMessage(SliceReady{in.getRequestId(), in.getWorkerId(), in.getIndex(),
                                       copy_data(in.getKvTarget()), in.getDirectToAll()});
    }
    case schema::Envelope::START_SLICE: {
      auto in = envelope.getStartSlice();
      RUNAHEAD_RETURN_IF_ERROR(
          check_length(in.getSuccessorKvTarget().size(), kMaxKvTargetBytes, "successor kv target"));
      StartSlice out{in.getRequestId(), copy_data(in.getSuccessorKvTarget()), in.getFanOut(), {}};
      auto later = in.getLaterKvTargets();
      RUNAHEAD_RETURN_IF_ERROR(check_length(later.size(), limits.max_list_elements, "kv targets"));
      for (auto target : later) {
        RUNAHEAD_RETURN_IF_ERROR(check_length(target.size(), kMaxKvTargetBytes, "kv target"));
        out.later_kv_targets.push_back(copy_data(target));
      }
      return ControlMessage(std::move(out));
    }
    case schema::Envelope::CALIBRATE_REPLY: {
      auto in = envelope.getCalibrateReply();
      CalibrateReply out;
      out.probe_id = in.getProbeId();
      RUNAHEAD_ASSIGN_OR_RETURN(out.nanos,
                                copy_scalars<uint64_t>(in.getNanos(), limits, "calibration times"));
      return ControlMessage(std::move(out));
    }
  }
  // A kind from a newer schema, or garbage in the discriminant.
  return make_error(ErrorCode::kProtocol, fmt::format("unknown message kind {}",
                                                      static_cast<unsigned>(envelope.which())));
}

}  // namespace

Status ControlLimits::validate() const {
  if (max_frame_bytes < 64 || max_frame_bytes > (1u << 30) || max_frame_bytes % 8 != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit max_frame_bytes={} must be a multiple of 8 in "
                                  "[64, 1 GiB]",
                                  max_frame_bytes));
  }
  if (max_top_logprobs == 0 || max_top_logprobs > max_list_elements) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit max_top_logprobs={} must be in [1, "
                                  "max_list_elements={}]",
                                  max_top_logprobs, max_list_elements));
  }
  if (nesting_limit < 4) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit nesting_limit={} is below 4", nesting_limit));
  }
  if (max_outgoing_messages == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "control limit max_outgoing_messages must be positive");
  }
  if (max_connections == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "control limit max_connections must be positive");
  }
  return Status::ok();
}

Result<std::vector<uint8_t>> encode_frame(const ControlMessage& message,
                                          const ControlLimits& limits) {
  capnp::MallocMessageBuilder builder;
  write(builder.initRoot<schema::Envelope>(), message);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  const size_t body_bytes = words.asBytes().size();
  if (body_bytes > limits.max_frame_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} message of {} bytes exceeds the control frame limit of {} "
                                  "bytes",
                                  message_kind_name(message), body_bytes, limits.max_frame_bytes));
  }
  std::vector<uint8_t> frame(kFrameHeaderBytes + body_bytes);
  const FrameHeaderBytes header = encode_frame_header(static_cast<uint32_t>(body_bytes));
  std::memcpy(frame.data(), header.data(), kFrameHeaderBytes);
  std::memcpy(frame.data() + kFrameHeaderBytes, words.asBytes().begin(), body_bytes);
  return frame;
}

Result<ControlMessage> decode_message(std::span<const uint64_t> body, const ControlLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.effective_traversal_limit_words();
  options.nestingLimit = limits.nesting_limit;
  static_assert(sizeof(capnp::word) == sizeof(uint64_t));
  kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(body.data()),
                                        body.size());
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) {
      return make_error(
          ErrorCode::kProtocol,
          fmt::format("frame carries {} words after its message", words.end() - reader.getEnd()));
    }
    return read(reader.getRoot<schema::Envelope>(), limits);
  } catch (const kj::Exception& error) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("malformed message: {}", error.getDescription().cStr()));
  }
}

}  // namespace runahead::net
