// Model identity with real processes: the coordinator is told the cluster's model, and refuses
// at join a worker of an edited checkpoint (one byte of its LM head), an impostor that connects
// first with a made-up hash, and cost claims no device makes; a fake worker with the right hash
// and a tiny claimed cost does not win nearly all of a prompt.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "model/model_hash.h"
#include "model/random_model.h"
#include "net/control/control_client.h"
#include "runahead/coordinator.h"
#include "runtime/actor_system.h"
#include "tests/cluster/worker_process.h"
#include "tests/support/hf_export.h"
#include "tests/support/temp_dir.h"

namespace runahead {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;
using testing::WorkerProcess;

constexpr const char* kPreset = "random:tiny-llama";

std::string preset_hash() {
  auto hash = model_path_hash(kPreset);
  EXPECT_TRUE(hash);
  return hash ? *hash : std::string();
}

// A process speaking the worker protocol, claiming whatever it is told to.
class FakeWorker {
 public:
  Status join(const std::string& address, const std::string& name, const std::string& hash,
              double per_token = 1e-3, double per_key = 1e-7) {
    system_.start();
    net::Hello hello;
    hello.role = net::PeerRole::kWorker;
    hello.name = name;
    hello.worker.model_hash = hash;
    hello.worker.backend = "cpu";
    hello.worker.data_plane_address = {1, 2, 3};
    hello.worker.per_token_seconds = per_token;
    hello.worker.per_key_seconds = per_key;
    auto client = net::WorkerControlClient::connect(
        system_.io(), address, hello,
        [this](net::ControlEvent<net::ToWorker> event) {
          if (auto* received = std::get_if<net::ControlReceived<net::ToWorker>>(&event)) {
            if (auto* assign = std::get_if<net::AssignSlice>(&received->message)) {
              std::lock_guard lock(mutex_);
              assigned_.push_back(*assign);
              changed_.notify_all();
            }
          }
          return Status::ok();
        },
        5000ms);
    if (!client) return client.status();
    client_ = std::move(client).value();
    return Status::ok();
  }

  std::optional<net::AssignSlice> next_assignment(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return !assigned_.empty(); })) return std::nullopt;
    net::AssignSlice out = std::move(assigned_.front());
    assigned_.pop_front();
    return out;
  }

 private:
  runtime::ActorSystem system_{runtime::ActorSystemOptions{.threads = 1}};
  std::unique_ptr<net::WorkerControlClient> client_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<net::AssignSlice> assigned_;
};

std::unique_ptr<Coordinator> start_coordinator(CoordinatorConfig config) {
  config.min_tokens_per_worker = 1;
  auto started = Coordinator::start(config);
  EXPECT_TRUE(started) << started.error().to_string();
  return started ? std::move(started).value() : nullptr;
}

// Waits for a worker process to exit (refused) or `limit` to pass.
bool exits_within(WorkerProcess& worker, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (worker.running()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

void flip_byte(const std::string& file, size_t offset) {
  std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
  io.seekg(static_cast<std::streamoff>(offset));
  const int value = io.get();
  io.seekp(static_cast<std::streamoff>(offset));
  io.put(static_cast<char>(value ^ 0x01));
}

size_t tensor_offset(const std::string& file, const std::string& tensor) {
  std::ifstream in(file, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  return 8 + header_size +
         nlohmann::json::parse(header).at(tensor).at("data_offsets").at(0).get<size_t>();
}

// The report: a checkpoint edited where the sampled hash did not look (LM head rows) joined a
// cluster of unedited workers and changed the answer.
TEST(ModelIdentityTest, AWorkerOfAnEditedCheckpointIsRefusedAtJoin) {
  TempDir dir;
  auto config = preset_config("mini-llama");
  ASSERT_TRUE(config);
  const HostModel host = random_host_model(*config, 1, 0.05f);
  const std::string original = dir.file("original");
  const std::string edited = dir.file("edited");
  fs::create_directories(original);
  ASSERT_TRUE(testing::write_hf_checkpoint(host, original).is_ok());
  fs::copy(original, edited);
  const std::string weights = edited + "/model.safetensors";
  // 100 KiB into the 512 KiB LM head: none of the start, middle and end samples.
  flip_byte(weights, tensor_offset(weights, "lm_head.weight") + 100 * 1024 + 3);

  CoordinatorConfig expected;
  expected.model_path = original;
  auto coordinator = start_coordinator(expected);
  ASSERT_NE(coordinator, nullptr);
  WorkerProcess good(coordinator->address(), original, "good", {"--transports", "tcp"});
  ASSERT_TRUE(coordinator->wait_for_workers(1, 60s).is_ok());
  WorkerProcess bad(coordinator->address(), edited, "edited", {"--transports", "tcp"});
  EXPECT_TRUE(exits_within(bad, 60s)) << "the edited checkpoint's worker was not refused";
  auto status = coordinator->status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->workers.size(), 1u);
  EXPECT_EQ(status->workers[0].name, "good");
  auto hash = checkpoint_hash(original);
  ASSERT_TRUE(hash);
  EXPECT_EQ(status->workers[0].model_hash, *hash);
  EXPECT_NE(*checkpoint_hash(edited), *hash);
}

// The report: a process joined as a worker with a made-up hash before the real one, and the
// real worker was refused.
TEST(ModelIdentityTest, AnImpostorJoiningFirstDoesNotDecideTheModel) {
  CoordinatorConfig expected;
  expected.model_path = kPreset;
  auto coordinator = start_coordinator(expected);
  ASSERT_NE(coordinator, nullptr);
  FakeWorker impostor;
  const std::string made_up(64, 'e');
  const Status refused = impostor.join(coordinator->address(), "impostor", made_up);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.message().find(made_up), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find(preset_hash()), std::string::npos) << refused.message();

  WorkerProcess real(coordinator->address(), kPreset, "real", {"--transports", "tcp"});
  ASSERT_TRUE(coordinator->wait_for_workers(1, 60s).is_ok());
  auto status = coordinator->status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->workers.size(), 1u);
  EXPECT_EQ(status->workers[0].name, "real");
  RequestOptions request;
  request.prompt_tokens = {1, 2, 3, 4};
  request.max_new_tokens = 2;
  auto handle = coordinator->submit(request);
  ASSERT_TRUE(handle);
  auto result = handle->result_within(60000);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result->tokens.size(), 2u);
}

TEST(ModelIdentityTest, TheModelMustBeGivenOrAdoptionAskedFor) {
  auto none = Coordinator::start({});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("--model"), std::string::npos) << none.error().message;
  EXPECT_NE(none.error().message.find("--adopt-first-model"), std::string::npos);

  CoordinatorConfig bad_hash;
  bad_hash.expected_model_hash = "/models/llama";
  auto refused = Coordinator::start(bad_hash);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("/models/llama"), std::string::npos);

  CoordinatorConfig disagreeing;
  disagreeing.model_path = kPreset;
  disagreeing.expected_model_hash = std::string(64, '0');
  ASSERT_FALSE(Coordinator::start(disagreeing));

  // Asked for: the first worker's model is the cluster's, as before.
  CoordinatorConfig adopt;
  adopt.adopt_first_model = true;
  auto coordinator = start_coordinator(adopt);
  ASSERT_NE(coordinator, nullptr);
  FakeWorker first;
  ASSERT_TRUE(first.join(coordinator->address(), "first", std::string(16, 'a')).is_ok());
  FakeWorker second;
  EXPECT_FALSE(second.join(coordinator->address(), "second", std::string(16, 'b')).is_ok());
}

TEST(ModelIdentityTest, TheCoordinatorCommandRefusesToStartWithoutAModel) {
  const std::string command =
      "timeout 20 " + testing::runahead_binary() + " coordinator --listen 127.0.0.1:0 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << output;
  EXPECT_NE(output.find("no expected model"), std::string::npos) << output;
}

TEST(ModelIdentityTest, ImpossibleCostClaimsAreRefusedAtJoin) {
  CoordinatorConfig expected;
  expected.model_path = kPreset;
  auto coordinator = start_coordinator(expected);
  ASSERT_NE(coordinator, nullptr);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (auto [per_token, per_key] : {std::pair{nan, 0.0}, {-1e-3, 0.0}, {1e-3, -1.0}, {1e9, 0.0}}) {
    FakeWorker fake;
    const Status refused =
        fake.join(coordinator->address(), "claimer", preset_hash(), per_token, per_key);
    ASSERT_FALSE(refused.is_ok()) << per_token << " " << per_key;
    EXPECT_NE(refused.message().find("claimer"), std::string::npos) << refused.message();
  }
  auto status = coordinator->status();
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->workers.empty());
}

// The report: a fake worker that copied the hash and claimed a tiny per-token cost was handed
// 98 of 100 prompt tokens.
TEST(ModelIdentityTest, ATinyCostClaimDoesNotWinNearlyAllOfAPrompt) {
  CoordinatorConfig expected;
  expected.model_path = kPreset;
  auto coordinator = start_coordinator(expected);
  ASSERT_NE(coordinator, nullptr);
  FakeWorker honest;
  FakeWorker liar;
  ASSERT_TRUE(honest.join(coordinator->address(), "honest", preset_hash(), 1e-3, 1e-7).is_ok());
  ASSERT_TRUE(liar.join(coordinator->address(), "liar", preset_hash(), 1e-12, 1e-16).is_ok());
  RequestOptions request;
  for (int32_t i = 0; i < 100; ++i) request.prompt_tokens.push_back(i % 100);
  auto handle = coordinator->submit(request);
  ASSERT_TRUE(handle);
  auto to_liar = liar.next_assignment();
  auto to_honest = honest.next_assignment();
  ASSERT_TRUE(to_liar && to_honest);
  EXPECT_EQ(to_liar->tokens.size() + to_honest->tokens.size(), 100u);
  EXPECT_LE(to_liar->tokens.size(), 80u) << "handed to the worker claiming a tiny cost";
  (void)coordinator->cancel(to_liar->request_id);
}

}  // namespace
}  // namespace runahead
