// Fault drills with real processes: a `runahead coordinator` process and two `runahead worker`
// processes on loopback (random tiny-llama on the CPU), and clients of the embeddable API.
//  - The coordinator stopped for 8 s (SIGSTOP) and resumed: no worker is declared dead, none
//    exits, and the next request gives the single-process tokens.
//  - The coordinator killed (SIGKILL): a client with a request in flight gets an error at once;
//    no worker exits; a coordinator started again on the same port has both workers back within
//    seconds, and every request after that gives the single-process tokens.
//  - A client whose coordinator stops answering (paused) gets an error within its timeout.
//  - Workers notice a coordinator gone silent and join again once it answers.
//  - A worker that was paused long enough to be declared dead joins again by itself.
// Each drill prints its figures (time to detect, time to rejoin, requests lost) as "drill:".
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runahead/client.h"
#include "tests/cluster/test_cluster.h"
#include "tests/cluster/worker_process.h"
#include "tests/liveness/child_process.h"
#include "tests/support/random_model.h"
#include "tests/support/temp_dir.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ChildProcess;

constexpr const char* kModel = "random:tiny-llama";

int64_t millis_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// A coordinator process on a fixed loopback port (so that it can be started again on it) and
// its worker processes, each logging to a file of the drill's folder.
class Drill {
 public:
  Drill() : address_("127.0.0.1:" + std::to_string(testing::free_loopback_port())) {}

  void start_coordinator(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {testing::runahead_binary(),
                                     "coordinator",
                                     "--listen",
                                     address_,
                                     "--model",
                                     kModel,
                                     "--min-tokens-per-worker",
                                     "4"};
    args.insert(args.end(), extra.begin(), extra.end());
    coordinator = std::make_unique<ChildProcess>(args, folder_.file("coordinator.log"));
  }

  void start_worker(const std::vector<std::string>& extra = {}) {
    const std::string name = "w" + std::to_string(workers.size());
    std::vector<std::string> args = {testing::runahead_binary(),
                                     "worker",
                                     "--coordinator",
                                     address_,
                                     "--model",
                                     kModel,
                                     "--name",
                                     name,
                                     "--threads",
                                     "1",
                                     "--probe-tokens",
                                     "8",
                                     "--transports",
                                     "tcp"};
    args.insert(args.end(), extra.begin(), extra.end());
    workers.push_back(std::make_unique<ChildProcess>(args, folder_.file(name + ".log")));
  }

  // The coordinator's status, asked by a fresh client; an error while it does not answer.
  Result<ClusterStatus> status() const {
    RUNAHEAD_ASSIGN_OR_RETURN(auto client, Client::connect(address_, 2s));
    return client->status(2s);
  }

  // Waits until `count` workers are registered and healthy, not counting those with the ids in
  // `old_ids`; the time it took, or an error.
  Result<int64_t> wait_for_workers(size_t count, std::chrono::milliseconds timeout,
                                   const std::vector<uint64_t>& old_ids = {}) const {
    const auto start = Clock::now();
    std::string last = "no answer";
    while (Clock::now() - start < timeout) {
      auto now = status();
      if (now) {
        const auto healthy =
            std::count_if(now->workers.begin(), now->workers.end(), [&](const WorkerState& w) {
              return w.healthy && std::find(old_ids.begin(), old_ids.end(), w.id) == old_ids.end();
            });
        if (static_cast<size_t>(healthy) >= count) return millis_since(start);
        last = std::to_string(healthy) + " healthy worker(s)";
      } else {
        last = now.error().message;
      }
      std::this_thread::sleep_for(50ms);
    }
    return make_error(ErrorCode::kTimeout, "not " + std::to_string(count) +
                                               " healthy workers within " +
                                               std::to_string(timeout.count()) + " ms: " + last);
  }

  // One request through a fresh client.
  Result<RequestResult> run(const std::vector<int32_t>& prompt, int max_new_tokens) const {
    RUNAHEAD_ASSIGN_OR_RETURN(auto client, Client::connect(address_, 10s));
    RequestOptions options;
    options.prompt_tokens = prompt;
    options.max_new_tokens = max_new_tokens;
    RUNAHEAD_ASSIGN_OR_RETURN(RequestHandle handle, client->submit(options));
    return handle.result_within(60000);
  }

  bool all_workers_running() {
    bool all = true;
    for (auto& worker : workers) all = worker->running() && all;
    return all;
  }

  std::string logs() const {
    std::string text = "--- coordinator\n" + (coordinator ? coordinator->log() : "");
    for (size_t i = 0; i < workers.size(); ++i) {
      text += "--- w" + std::to_string(i) + "\n" + workers[i]->log();
    }
    return text;
  }

  const std::string& address() const { return address_; }

  std::unique_ptr<ChildProcess> coordinator;
  std::vector<std::unique_ptr<ChildProcess>> workers;

 private:
  testing::TempDir folder_;
  std::string address_;
};

std::vector<int32_t> prompt_of(int length, int seed) {
  return testing::random_tokens(length, 97, seed);
}

// The request gives the single-process tokens, cut over both workers.
void expect_reference_tokens(const Drill& drill, testing::SingleProcess& reference, int seed) {
  const std::vector<int32_t> prompt = prompt_of(40, seed);
  const std::vector<int32_t> want = reference.tokens(prompt, 6).tokens;
  auto got = drill.run(prompt, 6);
  ASSERT_TRUE(got) << got.error().to_string() << "\n" << drill.logs();
  EXPECT_EQ(got->tokens, want);
  EXPECT_EQ(got->cuts.size(), 3u) << "the request did not run on both workers";
}

std::vector<uint64_t> worker_ids(const ClusterStatus& status) {
  std::vector<uint64_t> ids;
  for (const WorkerState& worker : status.workers) ids.push_back(worker.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(CoordinatorFaultDrill, PausedCoordinatorLosesNoWorker) {
  Drill drill;
  drill.start_coordinator();
  ASSERT_TRUE(drill.wait_for_workers(0, 30s)) << drill.logs();  // listening
  drill.start_worker();
  drill.start_worker();
  ASSERT_TRUE(drill.wait_for_workers(2, 60s)) << drill.logs();
  auto before = drill.status();
  ASSERT_TRUE(before);

  drill.coordinator->signal(SIGSTOP);
  std::this_thread::sleep_for(8s);
  drill.coordinator->signal(SIGCONT);
  const auto resumed = Clock::now();
  // Longer than the coordinator's heartbeat timeout (3 s): a worker judged by the pause would
  // be gone by now.
  std::this_thread::sleep_for(4s);

  auto after = drill.status();
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_EQ(worker_ids(*after), worker_ids(*before)) << drill.logs();
  for (const WorkerState& worker : after->workers) EXPECT_TRUE(worker.healthy) << worker.name;
  EXPECT_TRUE(drill.all_workers_running()) << drill.logs();
  testing::SingleProcess reference(kModel);
  expect_reference_tokens(drill, reference, 1);
  const std::string log = drill.coordinator->log();
  EXPECT_EQ(log.find("is dead"), std::string::npos) << log;
  EXPECT_NE(log.find("did not run for"), std::string::npos) << log;
  std::cout << "drill: coordinator paused 8 s: " << after->workers.size()
            << " of 2 workers kept (same ids), 0 worker processes exited, request after "
            << millis_since(resumed) << " ms from resume: ok\n";
}

TEST(CoordinatorFaultDrill, KilledCoordinatorGetsItsWorkersBackWhenRestarted) {
  Drill drill;
  drill.start_coordinator();
  ASSERT_TRUE(drill.wait_for_workers(0, 30s)) << drill.logs();  // listening
  drill.start_worker();
  drill.start_worker();
  ASSERT_TRUE(drill.wait_for_workers(2, 60s)) << drill.logs();

  // A request in flight when the coordinator dies: the workers are held still, so it cannot
  // finish first.
  auto client = Client::connect(drill.address(), 10s);
  ASSERT_TRUE(client);
  for (auto& worker : drill.workers) worker->signal(SIGSTOP);
  RequestOptions options;
  options.prompt_tokens = prompt_of(40, 2);
  options.max_new_tokens = 6;
  auto in_flight = (*client)->submit(options);
  ASSERT_TRUE(in_flight);
  std::this_thread::sleep_for(300ms);
  drill.coordinator->signal(SIGKILL);
  const auto killed = Clock::now();
  auto lost = in_flight->result_within(10000);
  const int64_t detect_ms = millis_since(killed);
  ASSERT_FALSE(lost) << "the request finished with the workers stopped";
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable) << lost.error().to_string();
  EXPECT_LT(detect_ms, 2000);
  // The client's later requests fail at once too.
  EXPECT_FALSE((*client)->submit(options));
  for (auto& worker : drill.workers) worker->signal(SIGCONT);
  while (drill.coordinator->running()) std::this_thread::sleep_for(10ms);

  // The workers keep trying; a new coordinator on the same port has them back within seconds.
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(drill.all_workers_running()) << drill.logs();
  drill.start_coordinator();
  const auto restarted = Clock::now();
  auto rejoined = drill.wait_for_workers(2, 20s);
  ASSERT_TRUE(rejoined) << rejoined.error().to_string() << "\n" << drill.logs();
  const int64_t rejoin_ms = millis_since(restarted);
  EXPECT_LT(rejoin_ms, 10000);
  EXPECT_TRUE(drill.all_workers_running()) << drill.logs();

  testing::SingleProcess reference(kModel);
  int lost_after_recovery = 0;
  for (int seed = 10; seed < 15; ++seed) {
    const std::vector<int32_t> prompt = prompt_of(40, seed);
    const std::vector<int32_t> want = reference.tokens(prompt, 6).tokens;
    auto got = drill.run(prompt, 6);
    if (!got || got->tokens != want || got->cuts.size() != 3) {
      ++lost_after_recovery;
      ADD_FAILURE() << "request " << seed << ": "
                    << (got ? "wrong tokens or not on both workers" : got.error().to_string());
    }
  }
  EXPECT_EQ(lost_after_recovery, 0) << drill.logs();
  for (size_t i = 0; i < drill.workers.size(); ++i) {
    EXPECT_NE(drill.workers[i]->log().find("again as id"), std::string::npos) << drill.logs();
  }
  std::cout << "drill: coordinator killed: in-flight request failed after " << detect_ms
            << " ms; restarted coordinator had both workers back after " << rejoin_ms
            << " ms; 0 worker processes exited; requests lost after recovery: "
            << lost_after_recovery << " of 5\n";
}

TEST(CoordinatorFaultDrill, ClientOfAPausedCoordinatorGetsAnErrorWithinItsTimeout) {
  Drill drill;
  drill.start_coordinator();
  ASSERT_TRUE(drill.wait_for_workers(0, 30s)) << drill.logs();
  auto client = Client::connect(drill.address(), 2s);
  ASSERT_TRUE(client) << client.error().to_string();
  RequestOptions options;
  options.prompt_tokens = prompt_of(10, 3);
  auto waiting = (*client)->submit(options);  // no worker: it waits in the queue
  ASSERT_TRUE(waiting);
  std::this_thread::sleep_for(200ms);

  drill.coordinator->signal(SIGSTOP);
  const auto paused = Clock::now();
  auto failed = waiting->result_within(20000);
  const int64_t request_ms = millis_since(paused);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kTimeout) << failed.error().to_string();
  EXPECT_NE(failed.error().message.find(drill.address()), std::string::npos)
      << failed.error().message;
  EXPECT_GE(request_ms, 1500);
  EXPECT_LT(request_ms, 4000);
  // A new client does not hang either: its connect times out.
  const auto connecting = Clock::now();
  auto refused = Client::connect(drill.address(), 2s);
  const int64_t connect_ms = millis_since(connecting);
  EXPECT_FALSE(refused);
  EXPECT_LT(connect_ms, 4000);
  drill.coordinator->signal(SIGCONT);
  std::cout << "drill: coordinator paused under a client with a 2000 ms timeout: its request "
               "failed after "
            << request_ms << " ms, a new connect after " << connect_ms << " ms\n";
}

TEST(CoordinatorFaultDrill, WorkersJoinAgainAfterTheirCoordinatorWentSilent) {
  Drill drill;
  drill.start_coordinator();
  ASSERT_TRUE(drill.wait_for_workers(0, 30s)) << drill.logs();  // listening
  drill.start_worker({"--coordinator-timeout-ms", "1500"});
  drill.start_worker({"--coordinator-timeout-ms", "1500"});
  ASSERT_TRUE(drill.wait_for_workers(2, 60s)) << drill.logs();
  auto before = drill.status();
  ASSERT_TRUE(before);

  drill.coordinator->signal(SIGSTOP);
  std::this_thread::sleep_for(4s);
  drill.coordinator->signal(SIGCONT);
  const auto resumed = Clock::now();
  // Both joined again: registered under new ids.
  auto back = drill.wait_for_workers(2, 20s, worker_ids(*before));
  ASSERT_TRUE(back) << back.error().to_string() << "\n" << drill.logs();
  const int64_t back_ms = millis_since(resumed);
  EXPECT_TRUE(drill.all_workers_running()) << drill.logs();
  for (auto& worker : drill.workers) {
    EXPECT_NE(worker->log().find("nothing heard from the coordinator"), std::string::npos)
        << drill.logs();
  }
  testing::SingleProcess reference(kModel);
  expect_reference_tokens(drill, reference, 4);
  std::cout << "drill: coordinator silent 4 s under workers with a 1500 ms timeout: both "
               "noticed, joined again, registered "
            << back_ms << " ms after it resumed\n";
}

TEST(CoordinatorFaultDrill, PausedWorkerDeclaredDeadJoinsAgain) {
  Drill drill;
  drill.start_coordinator();
  ASSERT_TRUE(drill.wait_for_workers(0, 30s)) << drill.logs();  // listening
  drill.start_worker();
  drill.start_worker();
  ASSERT_TRUE(drill.wait_for_workers(2, 60s)) << drill.logs();
  auto before = drill.status();
  ASSERT_TRUE(before);

  drill.workers[0]->signal(SIGSTOP);
  std::this_thread::sleep_for(5s);  // past the coordinator's 3 s heartbeat timeout
  drill.workers[0]->signal(SIGCONT);
  const auto resumed = Clock::now();
  // w1 as it was, w0 under a new id.
  auto back = drill.wait_for_workers(2, 20s);
  ASSERT_TRUE(back) << back.error().to_string() << "\n" << drill.logs();
  auto rejoined = drill.wait_for_workers(1, 20s, worker_ids(*before));
  ASSERT_TRUE(rejoined) << rejoined.error().to_string() << "\n" << drill.logs();
  const int64_t rejoin_ms = millis_since(resumed);
  EXPECT_TRUE(drill.all_workers_running()) << drill.logs();
  EXPECT_NE(drill.coordinator->log().find("is dead"), std::string::npos) << drill.logs();
  testing::SingleProcess reference(kModel);
  expect_reference_tokens(drill, reference, 5);
  std::cout << "drill: worker paused 5 s: declared dead, joined again " << rejoin_ms
            << " ms after it resumed\n";
}

}  // namespace
}  // namespace runahead
