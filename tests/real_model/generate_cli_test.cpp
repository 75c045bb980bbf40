// `runahead generate` as a user runs it: text in, text out (checked against the reference
// greedy continuation), and bad input answered with one clear line and a non-zero exit.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/gguf/gguf_builder.h"
#include "tests/text/test_paths.h"

namespace runahead {
namespace {

using nlohmann::json;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

std::string binary() {
  return RUNAHEAD_TOOL_PATH;
}

std::string quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CommandResult run(const std::vector<std::string>& args, bool with_stderr = true) {
  std::string command = quote(binary());
  for (const std::string& arg : args) command += " " + quote(arg);
  command += with_stderr ? " 2>&1" : " 2>/dev/null";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class GenerateCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(binary())) {
      GTEST_SKIP() << "the runahead binary is not built: " << binary();
    }
  }
};

TEST_F(GenerateCliTest, PromptInTextOutMatchesTheReference) {
  const std::string model = testing::smollm2_gguf();
  if (model.empty()) {
    GTEST_SKIP() << "SmolLM2 GGUF not found: run deploy/fetch_model.sh and set "
                    "RUNAHEAD_SMOLLM2_GGUF to the path it prints";
  }
  std::ifstream in(std::string(RUNAHEAD_REAL_MODEL_DATA) + "/smollm2_numpy_reference.json");
  const json reference = json::parse(in).at("prompts").at(0);
  const auto greedy = reference.at("greedy").get<std::vector<int32_t>>();
  CommandResult r = run({"generate", "--model", model, "--prompt", reference.at("text"), "--slices",
                         "2", "--max-new-tokens", std::to_string(greedy.size()), "--json"},
                        /*with_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json out = json::parse(r.output);
  EXPECT_EQ(out.at("prompt_tokens").get<std::vector<int32_t>>(),
            reference.at("prompt_ids").get<std::vector<int32_t>>());
  EXPECT_EQ(out.at("first_token").get<int32_t>(), greedy.front());
  // The whole greedy continuation, up to the first stop token (<|endoftext|> 0, <|im_end|> 2)
  // the reference might contain: generate stops there and does not show it.
  std::vector<int32_t> expected;
  for (int32_t token : greedy) {
    if (token == 0 || token == 2) break;
    expected.push_back(token);
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(out.at("tokens").get<std::vector<int32_t>>(), expected);
  EXPECT_GT(out.at("ttft_ms").get<double>(), 0.0);
  EXPECT_TRUE(out.contains("tokens_per_second"));
  EXPECT_FALSE(out.at("text").get<std::string>().empty());
}

TEST_F(GenerateCliTest, SeedReproducesSamplingAndStopStringsCutTheText) {
  const std::string model = testing::smollm2_gguf();
  if (model.empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (deploy/fetch_model.sh)";
  auto sample = [&](const std::string& seed) {
    CommandResult r =
        run({"generate", "--model", model, "--prompt", "My favourite animal is", "--max-new-tokens",
             "12", "--temperature", "0.9", "--top-k", "50", "--top-p", "0.95",
             "--repetition-penalty", "1.1", "--seed", seed, "--json"},
            /*with_stderr=*/false);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return json::parse(r.output).at("tokens").get<std::vector<int32_t>>();
  };
  EXPECT_EQ(sample("11"), sample("11"));

  CommandResult r = run({"generate", "--model", model, "--prompt", "The capital of France is",
                         "--max-new-tokens", "16", "--stop", ".", "--json"},
                        /*with_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json out = json::parse(r.output);
  EXPECT_EQ(out.at("stop_reason"), "stop string");
  EXPECT_EQ(out.at("text"), " Paris");
}

TEST_F(GenerateCliTest, ChatAppliesTheTemplateAndStopsAtEndOfTurn) {
  const std::string model = testing::smollm2_gguf();
  if (model.empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (deploy/fetch_model.sh)";
  CommandResult r = run({"generate", "--model", model, "--chat", "--prompt",
                         "What is the capital of France?", "--max-new-tokens", "48", "--json"},
                        /*with_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json out = json::parse(r.output);
  // <|im_start|>system ... <|im_end|> <|im_start|>user ...: the template's special tokens.
  EXPECT_EQ(out.at("prompt_tokens").at(0), 1);
  EXPECT_EQ(out.at("stop_reason"), "eos");
  EXPECT_NE(out.at("text").get<std::string>().find("Paris"), std::string::npos);
}

TEST_F(GenerateCliTest, InvalidUtf8PromptIsOneClearError) {
  const std::string model = testing::smollm2_gguf();
  if (model.empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (deploy/fetch_model.sh)";
  CommandResult r = run({"generate", "--model", model, "--prompt", "caf\xe9 au lait"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("UTF-8"), std::string::npos) << r.output;
}

TEST_F(GenerateCliTest, BrokenGgufFilesAreOneClearError) {
  using testing::GgufBuilder;
  GgufBuilder quantized;
  quantized.str("general.architecture", "llama");
  quantized.tensor("token_embd.weight", {256, 4}, 12, std::string(4 * 144, '\0'));  // Q4_K
  GgufBuilder truncated;
  truncated.tensor_f32("blk.0.attn_q.weight", {8}, std::vector<float>(8, 1.0f));
  std::string cut = truncated.build();
  cut.resize(cut.size() - 8);
  struct Case {
    std::string name;
    std::string bytes;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"cli_version.gguf", GgufBuilder().build(7), {"version 7"}},
      {"cli_truncated.gguf", cut, {"blk.0.attn_q.weight", "truncated"}},
      {"cli_missing_key.gguf", quantized.build(), {"llama.block_count"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = testing::write_temp_file(c.name, c.bytes);
    CommandResult r = run({"generate", "--model", path, "--tokens", "1,2"});
    EXPECT_EQ(r.exit_code, 1);
    for (const std::string& word : c.expected) {
      EXPECT_NE(r.output.find(word), std::string::npos) << r.output;
    }
    EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
    // One line: the message and its newline.
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

}  // namespace
}  // namespace runahead
