// A service embedding the runahead coordinator: it listens for workers, waits until enough
// have joined, submits one prompt and prints the first token as soon as it comes, then the
// streamed continuation and the time to first token.
//
//   embedded_coordinator 127.0.0.1:7070 2 1,2,3,4,5,6,7,8 random:tiny-llama
//   runahead worker --coordinator 127.0.0.1:7070 --model random:tiny-llama   # twice
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <runahead/coordinator.h>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s HOST:PORT WORKERS TOKEN,TOKEN,... MODEL\n", argv[0]);
    return 2;
  }
  runahead::RequestOptions request;
  std::stringstream ids(argv[3]);
  for (std::string id; std::getline(ids, id, ',');) request.prompt_tokens.push_back(std::stoi(id));
  request.max_new_tokens = 8;

  runahead::CoordinatorConfig config;
  config.listen = argv[1];
  config.model_path = argv[4];  // workers of any other model are refused
  auto coordinator = runahead::Coordinator::start(config);
  if (!coordinator) {
    std::fprintf(stderr, "%s\n", coordinator.error().message.c_str());
    return 1;
  }
  std::printf("listening on %s\n", (*coordinator)->address().c_str());
  std::fflush(stdout);
  const auto workers = static_cast<size_t>(std::atoi(argv[2]));
  if (auto joined = (*coordinator)->wait_for_workers(workers, std::chrono::minutes(5));
      !joined.is_ok()) {
    std::fprintf(stderr, "%s\n", joined.message().c_str());
    return 1;
  }
  auto handle = (*coordinator)->submit(request);
  if (!handle) {
    std::fprintf(stderr, "%s\n", handle.error().message.c_str());
    return 1;
  }
  auto first = handle->first_token();
  if (!first) {
    std::fprintf(stderr, "%s\n", first.error().message.c_str());
    return 1;
  }
  std::printf("first token: %d\ntokens:", *first);
  while (auto token = handle->next_token()) std::printf(" %d", *token);
  auto result = handle->result();
  if (!result) {
    std::fprintf(stderr, "\n%s\n", result.error().message.c_str());
    return 1;
  }
  std::printf("\nTTFT: %.3f ms\n", result->ttft_ms);
  return 0;
}
