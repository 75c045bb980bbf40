// --logits and --ignore-eos as a user runs them, through the runahead binary:
//  - `generate --logits 5` on the golden checkpoints against log_softmax of the logits Hugging
//    Face transformers computed (tests/data/golden), for several prompt prefixes;
//  - `local --workers 3` (worker processes on loopback) against `generate`: the same tokens and
//    log-probabilities, and the same first-position logits with --logits 0;
//  - a checkpoint whose EOS is a token of its greedy continuation stops there without
//    --ignore-eos and runs to --max-new-tokens with it.
//
// Tolerance against the reference: 1e-4 of the largest reference logit of the row. The logits
// themselves agree within 2e-5 of it (tests/golden/golden_test.cpp), and a log-probability is a
// logit minus the log-sum, which moves by no more than the largest logit error.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"

namespace runahead {
namespace {

using nlohmann::json;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Per process: CTest runs the cases in parallel. Removed when the process ends.
std::filesystem::path scratch_dir() {
  struct Dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("runahead_logprobs_cli_" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Dir dir;
  return dir.path;
}

// The binary with `args`: its exit code, stdout and stderr apart.
Outcome run(const std::vector<std::string>& args) {
  static int counter = 0;
  const auto err_path = scratch_dir() / ("stderr_" + std::to_string(counter++));
  std::string command = "OMP_WAIT_POLICY=passive " + quote(RUNAHEAD_TOOL_PATH);
  for (const std::string& arg : args) command += " " + quote(arg);
  command += " 2>" + quote(err_path.string());
  Outcome result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.err = read_file(err_path);
  return result;
}

json run_json(const std::vector<std::string>& args) {
  const Outcome r = run(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return json::object();
  json out = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(out.is_discarded()) << r.out;
  return out.is_discarded() ? json::object() : out;
}

std::string golden_dir(const std::string& model) {
  return std::string(RUNAHEAD_GOLDEN_DIR) + "/" + model;
}

std::string ids(std::span<const int32_t> tokens) {
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) out += (i ? "," : "") + std::to_string(tokens[i]);
  return out;
}

json golden_summary(const std::string& model) {
  std::ifstream in(golden_dir(model) + "/golden.json");
  return json::parse(in);
}

// log_softmax of one row, in double.
std::vector<double> log_softmax(std::span<const float> row) {
  const double largest = *std::max_element(row.begin(), row.end());
  double sum = 0.0;
  for (float x : row) sum += std::exp(double{x} - largest);
  std::vector<double> out;
  for (float x : row) out.push_back(double{x} - largest - std::log(sum));
  return out;
}

class GoldenLogprobs : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenLogprobs, TopFiveOfEveryPrefixMatchHuggingFace) {
  const std::string model = GetParam();
  const json summary = golden_summary(model);
  const auto prompt = summary.at("prompt").get<std::vector<int32_t>>();
  auto file = SafetensorsFile::open(golden_dir(model) + "/golden.safetensors");
  ASSERT_TRUE(file) << file.error().to_string();
  auto logits = (*file)->host_tensor("logits");
  ASSERT_TRUE(logits) << logits.error().to_string();
  ASSERT_EQ(logits->rows, static_cast<int64_t>(prompt.size()));
  const auto vocab = static_cast<size_t>(logits->cols);
  for (size_t k : {size_t{1}, size_t{2}, size_t{15}, prompt.size()}) {
    SCOPED_TRACE(model + ", prefix of " + std::to_string(k) + " tokens");
    const std::span<const float> row(static_cast<const float*>(logits->data) + (k - 1) * vocab,
                                     vocab);
    const std::vector<double> want = log_softmax(row);
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return want[static_cast<size_t>(a)] > want[static_cast<size_t>(b)];
    });
    double scale = 0.0;
    for (float x : row) scale = std::max(scale, std::abs(double{x}));
    const double tolerance = 1e-4 * scale;

    const json out = run_json({"generate", "--model", golden_dir(model), "--tokens",
                               ids(std::span(prompt).first(k)), "--max-new-tokens", "1", "--logits",
                               "5", "--json"});
    ASSERT_TRUE(out.contains("logprobs")) << out.dump();
    ASSERT_EQ(out.at("logprobs").size(), 1u);
    const json& position = out.at("logprobs").at(0);
    const json& top = position.at("top");
    ASSERT_EQ(top.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      const auto id = top.at(i).at("token").get<int32_t>();
      const auto value = top.at(i).at("logprob").get<double>();
      ASSERT_GE(id, 0);
      ASSERT_LT(static_cast<size_t>(id), vocab);
      // The i-th value is the reference's i-th; its id is the reference's, or one whose
      // reference value is as close (a near tie may fall either way).
      EXPECT_NEAR(value, want[static_cast<size_t>(order[i])], tolerance) << "rank " << i;
      EXPECT_NEAR(want[static_cast<size_t>(id)], want[static_cast<size_t>(order[i])], tolerance)
          << "rank " << i << ": id " << id << ", reference " << order[i];
    }
    // The greedy choice is the likeliest token, reported with its own log-probability.
    EXPECT_EQ(top.at(0).at("token").get<int32_t>(), order[0]);
    EXPECT_EQ(position.at("token").get<int32_t>(), order[0]);
    EXPECT_EQ(position.at("logprob").get<double>(), top.at(0).at("logprob").get<double>());
    EXPECT_EQ(out.at("tokens"), json::array({order[0]}));
    if (k == prompt.size()) {
      EXPECT_EQ(order[0], summary.at("first_token").get<int32_t>());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenLogprobs,
                         ::testing::Values("llama_mha", "llama_gqa", "falcon_mqa"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

// Tokens equal, log-probabilities (ids and values) within `tolerance`.
void expect_same_logprobs(const json& got, const json& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("position " + std::to_string(i));
    EXPECT_EQ(got.at(i).at("token"), want.at(i).at("token"));
    EXPECT_NEAR(got.at(i).at("logprob").get<double>(), want.at(i).at("logprob").get<double>(),
                tolerance);
    ASSERT_EQ(got.at(i).at("top").size(), want.at(i).at("top").size());
    for (size_t j = 0; j < want.at(i).at("top").size(); ++j) {
      EXPECT_EQ(got.at(i).at("top").at(j).at("token"), want.at(i).at("top").at(j).at("token"));
      EXPECT_NEAR(got.at(i).at("top").at(j).at("logprob").get<double>(),
                  want.at(i).at("top").at(j).at("logprob").get<double>(), tolerance);
    }
  }
}

TEST(LogprobsCli, ClusterOfThreeWorkersMatchesOneProcess) {
  const json summary = golden_summary("llama_gqa");
  const auto prompt = summary.at("prompt").get<std::vector<int32_t>>();
  const auto continuation = summary.at("continuation").get<std::vector<int32_t>>();
  const std::vector<std::string> common = {
      "--model",   golden_dir("llama_gqa"), "--tokens",
      ids(prompt), "--max-new-tokens",      std::to_string(continuation.size()),
      "--json"};
  auto with = [](std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  std::vector<std::string> generate = with({"generate"}, common);
  std::vector<std::string> local = with({"local", "--workers", "3"}, common);
  const json one = run_json(with(generate, {"--logits", "5"}));
  const json three = run_json(with(local, {"--logits", "5"}));
  EXPECT_EQ(one.at("tokens"), json(continuation));
  EXPECT_EQ(three.at("tokens"), one.at("tokens"));
  // Every worker took part: the prompt really was cut in three.
  std::set<uint64_t> workers;
  for (const json& layer : three.at("timeline")) workers.insert(layer.at("worker").get<uint64_t>());
  EXPECT_EQ(workers.size(), 3u);
  ASSERT_EQ(one.at("logprobs").size(), continuation.size());
  expect_same_logprobs(three.at("logprobs"), one.at("logprobs"), 1e-5);

  // --logits 0: the raw logits of the first position, the whole vocabulary.
  const json first_one = run_json(with(generate, {"--logits", "0"}));
  const json first_three = run_json(with(local, {"--logits", "0"}));
  const auto a = first_one.at("logits").get<std::vector<float>>();
  const auto b = first_three.at("logits").get<std::vector<float>>();
  ASSERT_EQ(a.size(), 1003u);
  ASSERT_EQ(b.size(), a.size());
  double scale = 0.0;
  double diff = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(double{a[i]}));
    diff = std::max(diff, std::abs(double{a[i]} - double{b[i]}));
  }
  EXPECT_LE(diff, 1e-5 * scale);
  EXPECT_FALSE(first_one.contains("logprobs"));
}

// A copy of a golden checkpoint whose EOS id is the third token of its greedy continuation.
std::string checkpoint_with_eos(const std::string& model, int32_t eos) {
  const auto dir = scratch_dir() / (model + "_eos");
  std::filesystem::create_directories(dir);
  for (const char* name : {"model.safetensors"}) {
    std::filesystem::copy_file(golden_dir(model) + "/" + name, dir / name,
                               std::filesystem::copy_options::overwrite_existing);
  }
  json config = json::parse(read_file(golden_dir(model) + "/config.json"));
  config["eos_token_id"] = eos;
  std::ofstream(dir / "config.json") << config.dump(1);
  return dir.string();
}

TEST(LogprobsCli, IgnoreEosGoesPastTheEndOfSequenceToken) {
  const json summary = golden_summary("llama_mha");
  const auto prompt = summary.at("prompt").get<std::vector<int32_t>>();
  const auto continuation = summary.at("continuation").get<std::vector<int32_t>>();
  ASSERT_GE(continuation.size(), 4u);
  const int32_t eos = continuation[2];
  ASSERT_EQ(std::count(continuation.begin(), continuation.begin() + 2, eos), 0);
  const std::string model = checkpoint_with_eos("llama_mha", eos);
  const std::vector<int32_t> before_eos(continuation.begin(), continuation.begin() + 2);
  const std::vector<int32_t> through_eos(continuation.begin(), continuation.begin() + 3);
  const std::vector<std::string> common = {"--model",
                                           model,
                                           "--tokens",
                                           ids(prompt),
                                           "--max-new-tokens",
                                           std::to_string(continuation.size()),
                                           "--json"};
  auto with = [&](std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  // One process: EOS ends the generation and is not shown; with --ignore-eos it is a token.
  json out = run_json(with({"generate"}, {"--logits", "2"}));
  EXPECT_EQ(out.at("tokens"), json(before_eos));
  EXPECT_EQ(out.at("stop_reason"), "eos");
  EXPECT_EQ(out.at("logprobs").size(), before_eos.size());
  out = run_json(with({"generate"}, {"--ignore-eos", "--logits", "2"}));
  EXPECT_EQ(out.at("tokens"), json(continuation));
  EXPECT_EQ(out.at("stop_reason"), "length");
  ASSERT_EQ(out.at("logprobs").size(), continuation.size());
  EXPECT_EQ(out.at("logprobs").at(2).at("token"), eos);
  // A cluster: the last worker ends the request with EOS, or goes on past it.
  out = run_json(with({"local", "--workers", "2"}, {}));
  EXPECT_EQ(out.at("tokens"), json(through_eos));
  out = run_json(with({"local", "--workers", "2"}, {"--ignore-eos"}));
  EXPECT_EQ(out.at("tokens"), json(continuation));
}

// Bad --logits: one line on stderr naming the problem, a non-zero exit, nothing on stdout.
TEST(LogprobsCli, BadKIsOneClearLine) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> needles;
  };
  const std::string mha = golden_dir("llama_mha");
  const std::vector<Case> cases = {
      {{"generate", "--model", mha, "--tokens", "1,2", "--logits", "-3", "--json"},
       {"--logits -3", "negative"}},
      {{"generate", "--model", mha, "--tokens", "1,2", "--logits", "1001", "--json"},
       {"--logits 1001", "1000"}},
      {{"generate", "--model", mha, "--tokens", "1,2", "--logits", "0"}, {"--logits 0", "--json"}},
      {{"local", "--workers", "1", "--model", mha, "--tokens", "1,2", "--logits", "-1"},
       {"--logits -1", "negative"}},
      {{"local", "--workers", "1", "--model", mha, "--tokens", "1,2", "--logits", "1001", "--json"},
       {"--logits 1001", "1000"}},
      {{"submit", "--coordinator", "127.0.0.1:1", "--tokens", "1,2", "--logits", "-2"},
       {"--logits -2", "negative"}},
      {{"submit", "--coordinator", "127.0.0.1:1", "--tokens", "1,2", "--logits", "5000"},
       {"--logits 5000", "1024"}},
  };
  for (const Case& c : cases) {
    std::string line;
    for (const std::string& arg : c.args) line += arg + " ";
    SCOPED_TRACE(line);
    const Outcome r = run(c.args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const std::string& needle : c.needles) {
      EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    }
  }
}

}  // namespace
}  // namespace runahead
