// One filled-in message of every control kind, per direction, for round trips.
#pragma once

#include <vector>

#include "net/control/control_messages.h"

namespace runahead::net::testing {

inline WorkerInfo sample_worker_info() {
  return WorkerInfo{
      {1, 2, 3, 0, 255}, "cpu", 24ull << 30, "sha256:abc", 1e-4, 2e-7, 4096, 32768, 49152};
}

inline SamplingOptions sample_sampling() {
  return SamplingOptions{0.7f, 40, 0.9f, 1.1f, 1234};
}

inline std::vector<LayerTiming> sample_timeline() {
  using std::chrono::nanoseconds;
  return {LayerTiming{1, 0, nanoseconds(1000), nanoseconds(200), 4096, 8192},
          LayerTiming{2, 1, nanoseconds(900), nanoseconds(0), 0, 1}};
}

inline Token sample_token() {
  return Token{77, 13, 0, false, {0.5f, -1.25f}, -0.75f, {13, 2}, {-0.75f, -1.5f}};
}

inline RequestError sample_request_error() {
  return RequestError{77, ErrorCode::kUnavailable, "worker w2 (10.0.0.3:7001) died"};
}

inline HelloAck sample_hello_ack() {
  return HelloAck{kProtocolVersion, false, "model hash differs", 42};
}

inline HelloChallenge sample_hello_challenge() {
  return HelloChallenge{{1, 2, 3, 4}, {200, 201, 0, 5}};
}

inline HelloProof sample_hello_proof() {
  return HelloProof{{9, 0, 8, 255}};
}

inline std::vector<ToCoordinator> sample_to_coordinator() {
  std::vector<ToCoordinator> all;
  all.emplace_back(
      Hello{kProtocolVersion, PeerRole::kWorker, "w1", sample_worker_info(), {7, 0, 255, 7}});
  all.emplace_back(Heartbeat{9, 3, 1ull << 33});
  all.emplace_back(SubmitRequest{77,
                                 {1, -2, 3, 50000},
                                 16,
                                 sample_sampling(),
                                 true,
                                 PartitionChoice{PartitionScheme::kExplicit, 2, {0, 3, 4}},
                                 5,
                                 true,
                                 2500});
  all.emplace_back(Cancel{77, "client went away"});
  all.emplace_back(StatusQuery{});
  all.emplace_back(SliceReady{77, 2, 1, {9, 8, 7}, true});
  all.emplace_back(SliceDone{77, 2, 1, sample_timeline()});
  all.emplace_back(sample_token());
  all.emplace_back(sample_request_error());
  return all;
}

inline std::vector<ToWorker> sample_to_worker() {
  std::vector<ToWorker> all;
  AssignSlice assign;
  assign.request_id = 77;
  assign.chain = {ChainMember{1, {9, 8}}, ChainMember{2, {}}};
  assign.index = 1;
  assign.slice_begin = 3;
  assign.slice_end = 4;
  assign.tokens = {50000};
  assign.total_prompt_tokens = 4;
  assign.max_new_tokens = 16;
  assign.sampling = sample_sampling();
  assign.history_tokens = {1, -2, 3};
  assign.top_logprobs = 3;
  assign.ignore_eos = true;
  for (size_t i = 0; i < assign.kv_capability.size(); ++i) {
    assign.kv_capability[i] = static_cast<uint8_t>(0xa0 + i);
  }
  all.emplace_back(assign);
  all.emplace_back(StartSlice{77, {1, 2, 3, 4}, true, {{1, 2, 3, 4}, {5, 6}}});
  all.emplace_back(Cancel{77, "worker w2 died"});
  all.emplace_back(Heartbeat{12, 3, 1u << 30});
  return all;
}

inline std::vector<ToClient> sample_to_client() {
  std::vector<ToClient> all;
  all.emplace_back(sample_token());
  all.emplace_back(RequestResult{77, {13, 14}, 123456, 234567, sample_timeline(), {0, 1, 2}});
  all.emplace_back(sample_request_error());
  WorkerRecord record{1, "w1", sample_worker_info(), true, std::chrono::milliseconds(120), 2};
  all.emplace_back(StatusReply{{record}, 3, 2, 64});
  all.emplace_back(Heartbeat{13, 0, 0});
  return all;
}

}  // namespace runahead::net::testing
