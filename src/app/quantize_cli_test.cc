// Runs the built kr-serve binary: `quantize` on the tiny model (the folder's
// contents are checked in model/quant/quantize_model_test.cc), and its argument
// and folder errors with their exit codes.
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace kr {
namespace {

const std::string kTiny = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";

struct Result {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

Result run(const std::string& args) {
  const std::string cmd = std::string(KR_SERVE_BIN) + " quantize " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class QuantizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kr-quantize-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(QuantizeCli, WritesAFolder) {
  Result r = run("--model " + kTiny + " --format mlx4 --group-size 32 --out " + dir_ + "/m");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("mlx4 (group size 32): 15 modules quantized"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/m/model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/m/tokenizer.json"));
}

TEST_F(QuantizeCli, UsageErrorsExitTwo) {
  const std::string base = "--model " + kTiny + " --out " + dir_ + "/x";
  struct Case { std::string args; std::string needle; };
  const Case cases[] = {
      {base + " --format int3", "unknown --format 'int3'"},
      {"--model " + kTiny + " --format awq", "--out are required"},
      {base + " --format awq --group-size abc", "--group-size must be a positive integer"},
      {base + " --format awq --group-size -4", "--group-size must be a positive integer"},
      {base + " --format", "--format needs a format"},
      {base + " --format awq --bits 3", "unknown argument '--bits'"},
  };
  for (const Case& c : cases) {
    Result r = run(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.needle), std::string::npos) << c.args << "\n" << r.out;
  }
  EXPECT_EQ(run("--help").exit_code, 0);
}

TEST_F(QuantizeCli, RuntimeErrorsExitOne) {
  Result r = run("--model " + kTiny + " --format gptq --out " + dir_ + "/g");  // group 128 vs K = 64
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("group size 128 does not divide"), std::string::npos) << r.out;
  r = run("--model " + dir_ + "/missing --format fp8 --out " + dir_ + "/f");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("config.json"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace kr
