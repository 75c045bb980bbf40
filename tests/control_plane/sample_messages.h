// One filled-in message of every control kind, for round trips.
#pragma once

#include <vector>

#include "net/control/control_messages.h"

namespace runahead::net::testing {

inline WorkerInfo sample_worker_info() {
  return WorkerInfo{
      "10.0.0.2:7001", {1, 2, 3, 0, 255}, "cpu", 24ull << 30, "sha256:abc", 1e-4, 2e-7, 4096};
}

inline std::vector<ControlMessage> sample_messages() {
  SamplingParams sampling{0.7f, 40, 0.9f, 1234};
  Timeline timeline{{LayerTiming{1, 0, 1000, 200, 4096, 8192}, LayerTiming{2, 1, 900, 0, 0, 1}}};
  std::vector<ControlMessage> all;
  all.emplace_back(Hello{kProtocolVersion, PeerRole::kWorker, "w1", sample_worker_info()});
  all.emplace_back(HelloAck{kProtocolVersion, false, "model hash differs", 42});
  all.emplace_back(Heartbeat{9, 3, 1ull << 33});
  all.emplace_back(SubmitRequest{
      77, {1, -2, 3, 50000}, 16, sampling, true, {"explicit", 2, {0, 3, 4}}, 5, true});
  all.emplace_back(Cancel{77, "client went away"});
  AssignSlice assign;
  assign.request_id = 77;
  assign.chain = {ChainMember{1, {9, 8}}, ChainMember{2, {}}};
  assign.index = 1;
  assign.slice_begin = 3;
  assign.slice_end = 4;
  assign.tokens = {50000};
  assign.total_prompt_tokens = 4;
  assign.max_new_tokens = 16;
  assign.sampling = sampling;
  assign.history_tokens = {1, -2, 3};
  assign.top_logprobs = 3;
  assign.ignore_eos = true;
  all.emplace_back(assign);
  all.emplace_back(SliceDone{77, 2, 1, timeline});
  all.emplace_back(Token{77, 13, 0, false, {0.5f, -1.25f}, -0.75f, {13, 2}, {-0.75f, -1.5f}});
  all.emplace_back(RequestResult{77, {13, 14}, 123456, 234567, timeline, {0, 1, 2}});
  all.emplace_back(RequestError{77, ErrorCode::kUnavailable, "worker w2 (10.0.0.3:7001) died"});
  all.emplace_back(StatusQuery{});
  all.emplace_back(
      StatusReply{{WorkerStatus{1, "w1", sample_worker_info(), true, 120, 2}}, 3, 2, 64});
  all.emplace_back(CalibrateRequest{5, {CalibrationPoint{0, 128}, CalibrationPoint{512, 128}}});
  all.emplace_back(CalibrateReply{5, {1000000, 2500000}});
  all.emplace_back(SliceReady{77, 2, 1, {9, 8, 7}, true});
  all.emplace_back(StartSlice{77, {1, 2, 3, 4}, true, {{1, 2, 3, 4}, {5, 6}}});
  return all;
}

}  // namespace runahead::net::testing
