#include "tools/http_flags.h"

namespace runahead::cli {

void add_http_flags(CLI::App* command, HttpFlags& flags) {
  HttpServerConfig& config = flags.config;
  command->add_option("--http", flags.listen,
                      "HOST:PORT of an OpenAI-compatible HTTP API (/v1/completions, "
                      "/v1/chat/completions, /v1/models, /health, /ready, /metrics); off when "
                      "not given; its tokenizer and chat template come from --model PATH");
  command->add_option("--served-model-name", config.model_name,
                      "the model id of the HTTP API (default: --model's file name)");
  command
      ->add_option("--http-api-key-file", config.api_key_file,
                   "bearer keys the HTTP API accepts, one per line; without it no key is asked for")
      ->check(CLI::ExistingFile);
  command
      ->add_option("--http-max-tokens", config.max_tokens,
                   "the largest max_tokens a request may ask for (more: 400)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command
      ->add_option("--http-max-body-bytes", config.max_body_bytes,
                   "the largest request body (more: 413)")
      ->capture_default_str();
  command
      ->add_option("--http-max-connections", config.max_connections,
                   "HTTP connections served at once; more wait to be accepted")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
}

}  // namespace runahead::cli
