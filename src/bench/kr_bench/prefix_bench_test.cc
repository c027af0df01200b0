// kr-bench's prefix-cache scenarios, small, against build/bin/kr-serve on the
// tiny model (CPU): both must run their configurations and report what the
// cache did (nothing with caching off, hits with it on, host-tier reloads in the
// host configuration after its filler prompts pushed the document out).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kr-bench-prefix-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty() && std::getenv("KR_BENCH_KEEP_TMP") == nullptr) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int run_bench(const std::string& args, std::string& log) {
  const std::string cmd = std::string(KR_BENCH_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) log.append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string common(const std::string& out_dir) {
  return std::string("--server-bin ") + KR_BENCH_SERVER_BIN +
         " --model models/tiny-llama3 --backend cpu --startup-timeout-s 120 --timeout-s 120 --warmup 1"
         " --max-tokens 4 --out-dir " + out_dir;
}

json load(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  return json::parse(in, nullptr, false);
}

const json& config(const json& report, const std::string& name) {
  for (const json& c : report["configurations"])
    if (c["name"] == name) return c;
  static const json none = json::object();
  ADD_FAILURE() << "no configuration " << name;
  return none;
}

TEST(KrBenchPrefix, MultiturnOffAndOn) {
  ASSERT_TRUE(fs::exists(KR_BENCH_SERVER_BIN)) << "build kr-serve first";
  TempDir tmp;
  std::string log;
  ASSERT_EQ(run_bench("multiturn " + common(tmp.path()) + " --sessions 2 --turns 3 --system-tokens 40 --user-tokens 10",
                      log),
            0)
      << log;
  const json r = load(tmp.path() + "/multiturn.json");
  ASSERT_TRUE(r.is_object());
  EXPECT_TRUE(fs::exists(tmp.path() + "/multiturn.md"));
  const json& off = config(r, "cache-off");
  const json& on = config(r, "cache-on");
  for (const json* c : {&off, &on}) {
    EXPECT_EQ((*c)["requests"], 6);
    EXPECT_EQ((*c)["failures"], 0);
    ASSERT_EQ((*c)["per_turn"].size(), 3u);
    EXPECT_GT((*c)["output_throughput_tok_s"].get<double>(), 0);
    // Each turn re-sends the conversation: the prompt grows by a message and an answer.
    EXPECT_GT((*c)["per_turn"][2]["prompt_tokens_mean"].get<double>(), (*c)["per_turn"][1]["prompt_tokens_mean"].get<double>());
  }
  EXPECT_EQ(off["cached_tokens"], 0);
  EXPECT_EQ(off["prefix_cache"]["hit_tokens"], 0);
  // Turn 0 of the second session finds the system prompt; later turns find the whole conversation.
  EXPECT_GT(on["per_turn"][1]["cached_tokens_mean"].get<double>(), 40.0);
  EXPECT_GT(on["prefix_cache"]["hit_rate"].get<double>(), 0.3);
  EXPECT_TRUE(r["comparison"].contains("cache-on"));
}

TEST(KrBenchPrefix, SharedPrefixWithTheHostTier) {
  ASSERT_TRUE(fs::exists(KR_BENCH_SERVER_BIN)) << "build kr-serve first";
  TempDir tmp;
  std::string log;
  // A KV cache of 2048 tokens (1 MiB on the CPU): 13 filler prompts of 200 push the document out.
  ASSERT_EQ(run_bench("shared-prefix " + common(tmp.path()) +
                          " --caches off,on,host --host-tier-gb 0.02 --document-tokens 200 --question-tokens 8"
                          " --questions 6 --concurrency 2 --followups-alone 2 --host-cycles 1"
                          " --extra-server-args '--kv-cache-mb 1'",
                      log),
            0)
      << log;
  const json r = load(tmp.path() + "/shared-prefix.json");
  ASSERT_TRUE(r.is_object());
  const json& off = config(r, "cache-off");
  const json& on = config(r, "cache-on");
  const json& host = config(r, "cache-host");
  EXPECT_EQ(off["prefix_cache"]["hit_tokens"], 0);
  for (const json& row : on["followups_alone"]["rows"]) EXPECT_EQ(row["cached_tokens"], 192) << row;  // 12 blocks of 16
  EXPECT_EQ(on["concurrent"]["failures"], 0);
  ASSERT_EQ(host["host_cycles"].size(), 1u);
  const json& cycle = host["host_cycles"][0];
  EXPECT_GT(cycle["host_hit_tokens"].get<int64_t>(), 0) << cycle;
  EXPECT_EQ(cycle["host_hit"]["cached_tokens"], 192) << cycle;
  EXPECT_GT(host["prefix_cache"]["host_blocks_reloaded"].get<int64_t>(), 0);
  EXPECT_TRUE(r["comparison"].contains("cache-on"));
}

}  // namespace
