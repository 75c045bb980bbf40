// What the cluster tests share: a coordinator in the test process with real worker processes
// joined to it, and the single-process run every cluster result is compared with.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/local_generation.h"
#include "runahead/coordinator.h"
#include "tests/cluster/worker_process.h"
#include "tests/support/random_model.h"

namespace runahead::testing {

// A coordinator here and `count` `runahead worker` processes of `model` joined to it (`extra`:
// more worker arguments). Every prompt may be cut down to one token per worker.
struct TestCluster {
  TestCluster(int count, const std::string& model, const std::vector<std::string>& extra,
              CoordinatorConfig config = {},
              std::chrono::seconds join_timeout = std::chrono::seconds(60));

  void add_worker(const std::string& model, const std::vector<std::string>& extra);

  std::unique_ptr<Coordinator> coordinator;
  std::vector<std::unique_ptr<WorkerProcess>> workers;
};

// The single-process reference (model/local_generation.h on the CPU backend): the first token,
// the continuation and the first token's logits, sampled as a cluster's decoding worker samples
// (the prompt and the tokens so far feed the repetition penalty) and stopping at the model's
// EOS as it does. Thread-safe.
class SingleProcess {
 public:
  explicit SingleProcess(const HostModel& host);
  // "random:PRESET", seed 1, as `runahead worker --model random:PRESET` loads it.
  explicit SingleProcess(const std::string& preset_path);

  [[nodiscard]] Result<LocalGenerationResult> run(const std::vector<int32_t>& prompt,
                                                  int max_new_tokens,
                                                  const Sampling& sampling = {});
  // The same, failing the test on an error.
  LocalGenerationResult tokens(const std::vector<int32_t>& prompt, int max_new_tokens,
                               const Sampling& sampling = {});

  const ModelConfig& config() const { return model_.transformer->config(); }

 private:
  std::mutex mutex_;
  LoadedModel model_;
};

}  // namespace runahead::testing
