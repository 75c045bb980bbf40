// Fault drills with real worker processes, against a coordinator that holds a cluster key and
// a client key: a process that copied the model hash shown by `status` and claims a tiny cost
// is refused without the cluster key (with none, with the client key, with a key of its own)
// and never gets a slice; a real worker without the key, or with the client key, is refused
// and exits; clients without the client key are refused; every request of a keyed client is
// served by the real workers alone, token for token as one process computes it.
#include <gtest/gtest.h>

#include <thread>

#include "net/control/control_client.h"
#include "net/control/control_key.h"
#include "runahead/client.h"
#include "runtime/actor_system.h"
#include "tests/cluster/test_cluster.h"
#include "tests/support/temp_dir.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;

struct Keys {
  testing::TempDir dir;
  std::string cluster = dir.file("cluster.key");
  std::string client = dir.file("client.key");
  std::string own = dir.file("own.key");
  Keys() {
    EXPECT_TRUE(net::write_key_file(cluster).is_ok());
    EXPECT_TRUE(net::write_key_file(client).is_ok());
    EXPECT_TRUE(net::write_key_file(own).is_ok());
  }
};

// A process speaking the protocol as a worker would: it joins with whatever it claims.
class FakeWorker {
 public:
  FakeWorker() { system_.start(); }

  Status join(const std::string& address, const std::string& copied_hash,
              const std::string& key_file) {
    std::optional<net::ControlKey> key;
    if (!key_file.empty()) {
      auto loaded = net::ControlKey::load(key_file);
      if (!loaded) return loaded.error();
      key = std::move(loaded).value();
    }
    net::Hello hello;
    hello.role = net::PeerRole::kWorker;
    hello.name = "fake";
    hello.worker.backend = "cpu";
    hello.worker.model_hash = copied_hash;
    hello.worker.per_token_seconds = 1e-12;  // "give me the whole prompt"
    hello.worker.per_key_seconds = 1e-15;
    hello.worker.data_plane_address = {1, 2, 3};
    auto client = net::WorkerControlClient::connect(
        system_.io(), address, hello,
        [this](net::ControlEvent<net::ToWorker> event) {
          if (std::holds_alternative<net::ControlReceived<net::ToWorker>>(event)) ++received_;
          return Status::ok();
        },
        5s, net::ControlLimits{}, std::move(key));
    if (!client) return client.error();
    client_ = std::move(client).value();
    return Status::ok();
  }
  int received() const { return received_.load(); }

 private:
  runtime::ActorSystem system_{runtime::ActorSystemOptions{.threads = 1}};
  std::unique_ptr<net::WorkerControlClient> client_;
  std::atomic<int> received_{0};
};

ClientConfig client_config(const std::string& address, const std::string& key_file) {
  ClientConfig config;
  config.coordinator_address = address;
  config.client_key_file = key_file;
  return config;
}

TEST(AuthDrill, FakeWorkerWithACopiedHashIsRefusedAndRequestsStayWithTheRealWorkers) {
  Keys keys;
  CoordinatorConfig config;
  config.cluster_key_file = keys.cluster;
  config.client_key_file = keys.client;
  testing::TestCluster cluster(2, "random:tiny-llama",
                               {"--transports", "tcp", "--cluster-key-file", keys.cluster}, config);
  ASSERT_NE(cluster.coordinator, nullptr);
  const std::string address = cluster.coordinator->address();

  // The hash as `status` shows it to a client with the key.
  auto viewer = Client::connect(client_config(address, keys.client));
  ASSERT_TRUE(viewer) << viewer.error().to_string();
  auto status = (*viewer)->status();
  ASSERT_TRUE(status) << status.error().to_string();
  ASSERT_EQ(status->workers.size(), 2u);
  const std::string copied_hash = status->workers[0].model_hash;

  for (const std::string& key_file : {std::string(), keys.client, keys.own}) {
    SCOPED_TRACE(key_file.empty() ? "no key" : key_file);
    FakeWorker fake;
    Status joined = fake.join(address, copied_hash, key_file);
    ASSERT_FALSE(joined.is_ok()) << "a worker without the cluster key joined";
    EXPECT_EQ(joined.code(), ErrorCode::kUnavailable) << joined.message();
  }

  // Real workers without the cluster key, or with the client key, are refused and exit.
  testing::WorkerProcess keyless(address, "random:tiny-llama", "keyless", {"--transports", "tcp"});
  testing::WorkerProcess wrong_role(address, "random:tiny-llama", "client-keyed",
                                    {"--transports", "tcp", "--cluster-key-file", keys.client});
  for (int i = 0; i < 600 && (keyless.running() || wrong_role.running()); ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(keyless.running());
  EXPECT_FALSE(wrong_role.running());

  // Clients without the client key, or with the cluster key, are refused.
  for (const std::string& key_file : {std::string(), keys.cluster, keys.own}) {
    auto refused = Client::connect(client_config(address, key_file));
    EXPECT_FALSE(refused) << (key_file.empty() ? "no key" : key_file);
  }

  // Every request runs on the two real workers and answers as one process does.
  testing::SingleProcess reference("random:tiny-llama");
  for (int r = 0; r < 4; ++r) {
    RequestOptions options;
    for (int i = 0; i < 20 + 13 * r; ++i) options.prompt_tokens.push_back(1 + (i * 7 + r) % 90);
    options.max_new_tokens = 3;
    auto handle = (*viewer)->submit(options);
    ASSERT_TRUE(handle) << handle.error().to_string();
    auto result = handle->result_within(60000);
    ASSERT_TRUE(result) << result.error().to_string();
    EXPECT_EQ(result->tokens, reference.tokens(options.prompt_tokens, 3).tokens);
    EXPECT_EQ(result->cuts.size(), 3u) << "the request did not run on exactly the two workers";
  }
  status = (*viewer)->status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->workers.size(), 2u);
  for (const WorkerState& worker : status->workers) {
    EXPECT_TRUE(worker.name == "w0" || worker.name == "w1") << worker.name;
  }
}

}  // namespace
}  // namespace runahead
