// The control-plane messages as plain C++ values (the wire form is
// net/control/schema/control.capnp), grouped by direction: ToCoordinator, ToWorker, ToClient,
// and the handshake's HelloAck. Each actor receives exactly its direction's variant. Actors
// build and receive these; only net/control/control_codec.cpp knows Cap'n Proto.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/layer_timing.h"
#include "core/partition_scheme.h"
#include "core/sampling_options.h"
#include "core/status.h"
#include "core/worker_record.h"

namespace runahead::net {

// Must equal protocolVersion in net/control/schema/control.capnp (checked at compile time).
// 2: top log-probabilities and ignore_eos in requests, slices and tokens.
// 3: one message union per direction; the partition scheme an enum; calibration messages gone.
// 4: admission: the worker's context and vocabulary in Hello, a per-request timeout;
//    AssignSlice carries the request's data-plane capability; Heartbeat from the coordinator;
//    authentication at Hello: a nonce in Hello, HelloChallenge and HelloProof.
inline constexpr uint32_t kProtocolVersion = 4;

enum class PeerRole : uint8_t { kWorker, kClient };

struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  PeerRole role = PeerRole::kClient;
  std::string name;
  WorkerInfo worker;  // meaningful when role is kWorker
  // The peer's fresh random challenge when it holds the key of its role (net/control/
  // handshake_proof.h); empty when it has none.
  std::vector<uint8_t> nonce;

  bool operator==(const Hello&) const = default;
};

// The coordinator's answer to a Hello with a nonce when it holds the key of the peer's role.
struct HelloChallenge {
  std::vector<uint8_t> nonce;  // the coordinator's fresh random challenge
  std::vector<uint8_t> proof;  // the coordinator's proof of the key

  bool operator==(const HelloChallenge&) const = default;
};

// The peer's answer to HelloChallenge; HelloAck follows.
struct HelloProof {
  std::vector<uint8_t> proof;

  bool operator==(const HelloProof&) const = default;
};

struct HelloAck {
  uint32_t protocol_version = kProtocolVersion;
  bool accepted = false;
  std::string reason;
  uint64_t peer_id = 0;

  bool operator==(const HelloAck&) const = default;
};

// What a connecting end may receive after its Hello: the answer, or a challenge first.
using HandshakeAnswer = std::variant<HelloAck, HelloChallenge>;

struct Heartbeat {
  uint64_t sequence = 0;
  uint32_t active_requests = 0;
  uint64_t free_memory_bytes = 0;

  bool operator==(const Heartbeat&) const = default;
};

struct SubmitRequest {
  uint64_t request_id = 0;
  std::vector<int32_t> prompt_tokens;
  uint32_t max_new_tokens = 0;
  SamplingOptions sampling;
  bool return_logits = false;
  PartitionChoice partition;
  uint32_t top_logprobs = 0;  // K > 0: each Token carries the top K log-probabilities
  bool ignore_eos = false;    // decode past EOS, up to max_new_tokens
  // The request's deadline, counted from the coordinator's receipt (clocks differ between
  // hosts); 0: the coordinator's own request timeout, which also caps it.
  uint64_t timeout_millis = 0;

  bool operator==(const SubmitRequest&) const = default;
};

struct Cancel {
  uint64_t request_id = 0;
  std::string reason;

  bool operator==(const Cancel&) const = default;
};

// Bytes of a request's data-plane capability (AssignSlice::kv_capability).
inline constexpr size_t kKvCapabilityBytes = 16;

struct ChainMember {
  uint64_t worker_id = 0;
  std::vector<uint8_t> data_plane_address;

  bool operator==(const ChainMember&) const = default;
};

struct AssignSlice {
  uint64_t request_id = 0;
  std::vector<ChainMember> chain;
  uint32_t index = 0;  // position of the receiving worker in chain
  uint64_t slice_begin = 0;
  uint64_t slice_end = 0;
  std::vector<int32_t> tokens;  // prompt tokens [slice_begin, slice_end)
  uint64_t total_prompt_tokens = 0;
  uint32_t max_new_tokens = 0;
  SamplingOptions sampling;
  bool return_logits = false;
  std::vector<int32_t> history_tokens;  // the last worker only: prompt tokens [0, slice_begin)
  uint32_t top_logprobs = 0;
  bool ignore_eos = false;
  // The request's data-plane capability (net::KvCapability): drawn by the coordinator for this
  // request, sent to the workers of its chain only; every K/V block of the request carries it.
  std::array<uint8_t, kKvCapabilityBytes> kv_capability{};

  bool operator==(const AssignSlice&) const = default;
};

// The worker holds the request's cache and may receive its predecessor's K/V.
struct SliceReady {
  uint64_t request_id = 0;
  uint64_t worker_id = 0;
  uint32_t index = 0;
  // Opaque (SliceRun::kv_target()): where a predecessor on this host may write the K/V
  // directly; empty when it cannot.
  std::vector<uint8_t> kv_target;
  bool direct_to_all = false;  // direct writes reach every other worker of the chain

  bool operator==(const SliceReady&) const = default;
};

// Every worker of the chain is ready: K/V may flow to the successor.
struct StartSlice {
  uint64_t request_id = 0;
  std::vector<uint8_t> successor_kv_target;  // the successor's SliceReady::kv_target
  // Every pair of the chain is direct: own K/V goes straight to every later worker (their
  // kv_targets, in chain order), nothing is forwarded.
  bool fan_out = false;
  std::vector<std::vector<uint8_t>> later_kv_targets;

  bool operator==(const StartSlice&) const = default;
};

struct SliceDone {
  uint64_t request_id = 0;
  uint64_t worker_id = 0;
  uint32_t index = 0;
  std::vector<LayerTiming> timeline;

  bool operator==(const SliceDone&) const = default;
};

struct Token {
  uint64_t request_id = 0;
  int32_t token = 0;
  uint32_t index = 0;
  bool is_last = false;
  std::vector<float> logits;
  // With top_logprobs K > 0: the token's log-probability and the K likeliest ids with theirs,
  // likeliest first (equal lengths).
  float logprob = 0.0f;
  std::vector<int32_t> top_tokens;
  std::vector<float> top_logprobs;

  bool operator==(const Token&) const = default;
};

struct RequestResult {
  uint64_t request_id = 0;
  std::vector<int32_t> tokens;
  uint64_t ttft_nanos = 0;
  uint64_t total_nanos = 0;
  std::vector<LayerTiming> timeline;
  std::vector<uint64_t> cuts;  // the partition the request ran with

  bool operator==(const RequestResult&) const = default;
};

struct RequestError {
  uint64_t request_id = 0;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  bool operator==(const RequestError&) const = default;
};

struct StatusQuery {
  bool operator==(const StatusQuery&) const = default;
};

struct StatusReply {
  std::vector<WorkerRecord> workers;
  uint32_t queued_requests = 0;
  uint32_t active_requests = 0;
  uint32_t queue_capacity = 0;

  bool operator==(const StatusReply&) const = default;
};

// From a worker or a client to the coordinator. Hello opens every connection; the rest are
// taken from the role it gave: SubmitRequest, Cancel and StatusQuery from clients, SliceReady,
// SliceDone, Token and RequestError from workers, Heartbeat from either.
using ToCoordinator = std::variant<Hello, Heartbeat, SubmitRequest, Cancel, StatusQuery, SliceReady,
                                   SliceDone, Token, RequestError>;
// From the coordinator to a worker, after the HelloAck; Heartbeat tells it the coordinator lives.
using ToWorker = std::variant<AssignSlice, StartSlice, Cancel, Heartbeat>;
// From the coordinator to a client, after the HelloAck; Heartbeat as to a worker.
using ToClient = std::variant<Token, RequestResult, RequestError, StatusReply, Heartbeat>;

// "Hello", "AssignSlice", ... for logs and errors.
const char* message_kind_name(const ToCoordinator& message);
const char* message_kind_name(const ToWorker& message);
const char* message_kind_name(const ToClient& message);
const char* message_kind_name(const HelloAck& message);
const char* message_kind_name(const HelloChallenge& message);
const char* message_kind_name(const HelloProof& message);
const char* message_kind_name(const HandshakeAnswer& message);

}  // namespace runahead::net
