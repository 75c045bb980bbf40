#include "tests/cluster/test_cluster.h"

#include <gtest/gtest.h>

#include "model/random_model.h"
#include "model/sampler.h"

namespace runahead::testing {

TestCluster::TestCluster(int count, const std::string& model, const std::vector<std::string>& extra,
                         CoordinatorConfig config, std::chrono::seconds join_timeout) {
  config.min_tokens_per_worker = 1;
  // The coordinator expects the workers' model unless the test chose otherwise.
  if (config.expected_model_hash.empty() && config.model_path.empty() &&
      !config.adopt_first_model) {
    config.model_path = model;
  }
  auto started = Coordinator::start(config);
  EXPECT_TRUE(started) << started.error().to_string();
  if (!started) return;
  coordinator = std::move(started).value();
  for (int i = 0; i < count; ++i) add_worker(model, extra);
  const Status joined = coordinator->wait_for_workers(static_cast<size_t>(count), join_timeout);
  EXPECT_TRUE(joined.is_ok()) << joined.to_string();
}

void TestCluster::add_worker(const std::string& model, const std::vector<std::string>& extra) {
  workers.push_back(std::make_unique<WorkerProcess>(coordinator->address(), model,
                                                    "w" + std::to_string(workers.size()), extra));
}

SingleProcess::SingleProcess(const HostModel& host) : model_(load_on_cpu(host)) {}

SingleProcess::SingleProcess(const std::string& preset_path) {
  auto host = load_random_model(preset_path);
  EXPECT_TRUE(host) << host.error().to_string();
  if (host) model_ = load_on_cpu(*host);
}

Result<LocalGenerationResult> SingleProcess::run(const std::vector<int32_t>& prompt,
                                                 int max_new_tokens, const Sampling& sampling) {
  std::lock_guard lock(mutex_);
  if (model_.transformer == nullptr) {
    return make_error(ErrorCode::kInternal, "the reference model did not load");
  }
  SamplingOptions sampler_options;
  sampler_options.temperature = sampling.temperature;
  sampler_options.top_k = sampling.top_k;
  sampler_options.top_p = sampling.top_p;
  sampler_options.repetition_penalty = sampling.repetition_penalty;
  sampler_options.seed = sampling.seed;
  RUNAHEAD_RETURN_IF_ERROR(sampler_options.validate());
  Sampler sampler(sampler_options);
  std::vector<int32_t> history = prompt;

  LocalGenerationOptions options;
  options.max_new_tokens = max_new_tokens;
  options.stop_token = model_.transformer->config().eos_token;
  if (!sampler_options.greedy() || sampler_options.repetition_penalty != 1.0f) {
    options.choose = [&](std::span<const float> logits) { return sampler.sample(logits, history); };
  }
  options.on_token = [&](int32_t token) {
    history.push_back(token);
    return true;
  };
  return generate_local(*model_.transformer, prompt, options);
}

LocalGenerationResult SingleProcess::tokens(const std::vector<int32_t>& prompt, int max_new_tokens,
                                            const Sampling& sampling) {
  auto result = run(prompt, max_new_tokens, sampling);
  EXPECT_TRUE(result) << result.error().to_string();
  return result ? std::move(result).value() : LocalGenerationResult{};
}

}  // namespace runahead::testing
