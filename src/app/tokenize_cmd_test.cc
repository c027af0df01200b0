// `kr-serve tokenize`: run_tokenize's argument handling and model folder
// (stdin/stdout redirected through the C++ streams).
#include <gtest/gtest.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "tokenizer/tokenizer_test_util.h"

namespace kr {
namespace {

std::vector<nlohmann::json> lines_of(const std::string& s) {
  std::vector<nlohmann::json> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Runs run_tokenize with the given arguments and stdin text; returns the exit code.
int run_cmd(std::vector<std::string> args, const std::string& input, std::string* output) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::istringstream in(input);
  std::ostringstream out;
  std::streambuf* old_in = std::cin.rdbuf(in.rdbuf());
  std::streambuf* old_out = std::cout.rdbuf(out.rdbuf());
  const int rc = run_tokenize(static_cast<int>(argv.size()), argv.data());
  std::cin.rdbuf(old_in);
  std::cout.rdbuf(old_out);
  *output = out.str();
  return rc;
}

TEST(TokenizeCmd, ArgumentsAndModelDir) {
  std::string out;
  const std::string model = testing_util::source_path("models/tiny-llama3");
  EXPECT_EQ(run_cmd({"tokenize", "--model", model, "--jsonl"}, "{\"text\": \"hi\"}\n", &out), 0);
  EXPECT_EQ(lines_of(out).at(0)["ids"].get<std::vector<int32_t>>(), testing_util::llama3().encode("hi", true));
  EXPECT_EQ(run_cmd({"tokenize", "--model", model, "--jsonl", "--decode"}, "{\"ids\": [12194]}\n", &out), 0);
  EXPECT_EQ(lines_of(out).at(0)["text"], testing_util::llama3().decode(std::vector<int32_t>{12194}, false));
  EXPECT_EQ(run_cmd({"tokenize", "--jsonl", "--bogus"}, "", &out), 2);
  EXPECT_EQ(run_cmd({"tokenize", "--model"}, "", &out), 2);
  EXPECT_EQ(run_cmd({"tokenize", "--model", model}, "", &out), 2);  // --jsonl missing
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_cmd({"tokenize", "--model", "no/such/model", "--jsonl"}, "", &out), 1);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("no/such/model/tokenizer.json"), std::string::npos);
  // Without --model: the bundled default model.
  EXPECT_EQ(run_cmd({"tokenize", "--jsonl"}, "{\"text\": \"hi\"}\n", &out), 0);
  EXPECT_EQ(lines_of(out).size(), 1u);
}

}  // namespace
}  // namespace kr
