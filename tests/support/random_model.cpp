#include "tests/support/random_model.h"

#include <utility>

#include <gtest/gtest.h>

#include <random>

namespace runahead::testing {

ModelConfig tiny_llama_config() {
  return *preset_config("tiny-llama");
}
ModelConfig tiny_falcon_config() {
  return *preset_config("tiny-falcon");
}

std::vector<int32_t> random_tokens(int count, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  for (int32_t& t : tokens) t = dist(rng);
  return tokens;
}

LoadedModel load_on_cpu(const HostModel& host) {
  return load_on(host, make_cpu_backend());
}

LoadedModel load_on(const HostModel& host, std::unique_ptr<Backend> backend) {
  LoadedModel loaded;
  loaded.backend = std::move(backend);
  auto weights = upload_weights(host, *loaded.backend);
  if (!weights) {
    ADD_FAILURE() << weights.error().to_string();
    return loaded;
  }
  loaded.weights = std::make_unique<ModelWeights>(std::move(weights).value());
  loaded.transformer = std::make_unique<Transformer>(*loaded.weights, *loaded.backend);
  return loaded;
}

}  // namespace runahead::testing
