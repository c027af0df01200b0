// Runs the kr-bench binary end to end: `fifty` and `sweep` against a server
// binary started by kr-bench itself, writing into a temporary folder, and checks
// that the reports hold every field. Built twice: KR_BENCH_MODE "fake" uses
// kr-bench-fake-server (plus `sweep --url` against an in-process FakeServer);
// "real" uses build/bin/kr-serve on the tiny model (CPU).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#ifdef KR_BENCH_WITH_FAKE
#include "bench/kr_bench/fake_server.h"
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const bool kReal = std::string(KR_BENCH_MODE) == "real";
constexpr int kQuestions = 5;
constexpr int kMaxTokens = 8;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kr-bench-XXXXXX").string();
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

// Exit code of `kr-bench ARGS`, its stderr appended to `log`; run in `cwd` when given.
int run_bench(const std::string& args, std::string& log, const std::string& cwd = "") {
  const std::string cmd = (cwd.empty() ? "" : "cd '" + cwd + "' && ") + std::string(KR_BENCH_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) log.append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string server_args() {
  std::string a = std::string("--server-bin ") + KR_BENCH_SERVER_BIN + " --model models/tiny-llama3 --backend cpu";
  if (kReal) a += " --startup-timeout-s 120 --timeout-s 120";
  else a += " --extra-server-args '--first-token-ms 5 --token-ms 2'";
  return a + " --max-tokens " + std::to_string(kMaxTokens) + " --warmup 1";
}

json load(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  return json::parse(in, nullptr, false);
}

void expect_summary(const json& s, const std::string& what) {
  for (const char* k : {"count", "mean", "median", "p50", "p90", "p95", "p99", "std", "min", "max"})
    EXPECT_TRUE(s.contains(k) && s[k].is_number()) << what << "." << k;
  EXPECT_LE(s["min"].get<double>(), s["median"].get<double>()) << what;
  EXPECT_LE(s["median"].get<double>(), s["p99"].get<double>()) << what;
  EXPECT_LE(s["p99"].get<double>(), s["max"].get<double>()) << what;
}

// HEAD of the source tree: the commit kr-bench and kr-serve were built from.
std::string source_head() {
  std::string out;
  FILE* p = ::popen((std::string("git -C '") + KR_SOURCE_DIR + "' rev-parse HEAD 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[128];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.empty() ? "unknown" : out;
}

void expect_meta(const json& r) {
  for (const char* k : {"timestamp", "commit", "commit_dirty", "model", "backend", "gpu", "parameters", "configurations"})
    EXPECT_TRUE(r.contains(k)) << k;
  EXPECT_EQ(r["parameters"]["max_tokens"], kMaxTokens);
  // The binary's own commit, whatever folder it ran in.
  EXPECT_EQ(r["commit"], source_head());
  for (const json& c : r["configurations"]) {
    if (kReal) {
      // kr-serve reports its build in /stats; it was built from the same tree.
      EXPECT_EQ(c["server_version"].get<std::string>().rfind(source_head(), 0), 0u) << c["server_version"];
    } else {
      EXPECT_EQ(c["server_version"], "");  // a server without /stats
    }
  }
}

bool server_present() {
  if (::access(KR_BENCH_SERVER_BIN, X_OK) == 0) return true;
  ADD_FAILURE() << "server binary " << KR_BENCH_SERVER_BIN
                << " is missing: build the kr-serve target first (cmake --build BUILD --target kr-serve)";
  return false;
}

TEST(KrBenchCli, FiftyWritesCompleteReport) {
  if (!server_present()) return;
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string log;
  const int rc = run_bench("fifty " + server_args() + " --questions " + std::to_string(kQuestions) +
                               " --out-dir " + dir.path(),
                           log);
  ASSERT_EQ(rc, 0) << log;
  const json r = load(dir.path() + "/50-questions-comparison.json");
  ASSERT_FALSE(r.is_discarded());
  expect_meta(r);
  EXPECT_EQ(r["parameters"]["questions"], kQuestions);
  ASSERT_EQ(r["configurations"].size(), 3u);
  const char* names[] = {"baseline", "hybrid", "full"};
  for (size_t i = 0; i < 3; ++i) {
    const json& c = r["configurations"][i];
    EXPECT_EQ(c["name"], names[i]);
    EXPECT_FALSE(c.contains("error")) << c.value("error", "");
    for (const char* k : {"response_time_ms", "ttft_ms", "throughput_tok_s", "tpot_ms", "itl_ms"})
      expect_summary(c[k], std::string(names[i]) + "." + k);
    EXPECT_GT(c["total_time_s"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(c["success_rate"].get<double>(), 1.0);
    // ignore_eos: every answer is exactly max_tokens long.
    EXPECT_EQ(c["total_tokens"].get<int64_t>(), kQuestions * kMaxTokens);
    ASSERT_TRUE(c.contains("overhead_vs_baseline"));
    for (const char* k : {"total_time_pct", "mean_response_time_pct", "ttft_mean_ms", "throughput_mean_pct"})
      EXPECT_TRUE(c["overhead_vs_baseline"][k].is_number()) << k;
    ASSERT_EQ(c["rows"].size(), static_cast<size_t>(kQuestions));
    for (const json& row : c["rows"]) {
      EXPECT_TRUE(row["ok"].get<bool>()) << row.dump();
      EXPECT_EQ(row["output_tokens"], kMaxTokens);
      EXPECT_GT(row["ttft_ms"].get<double>(), 0.0);
      EXPECT_GE(row["response_time_ms"].get<double>(), row["ttft_ms"].get<double>());
      EXPECT_FALSE(row["question"].get<std::string>().empty());
    }
  }
  EXPECT_EQ(r["configurations"][1]["gpu_scheduler"], true);
  EXPECT_EQ(r["configurations"][1]["auto_tune"], false);
  EXPECT_EQ(r["configurations"][2]["env"]["KR_METRICS_EXPORT"], "on");
  for (const char* f : {"50-questions-comparison.md", "50-questions-response-time.svg", "50-questions-ttft.svg",
                        "server-baseline.log", "server-hybrid.log", "server-full.log"})
    EXPECT_TRUE(fs::exists(dir.path() + "/" + f)) << f;
  std::ifstream md(dir.path() + "/50-questions-comparison.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("## Conclusions"), std::string::npos);
}

void check_sweep(const std::string& dir, size_t configs) {
  const json r = load(dir + "/sweep.json");
  ASSERT_FALSE(r.is_discarded());
  expect_meta(r);
  ASSERT_EQ(r["configurations"].size(), configs);
  for (const json& c : r["configurations"]) {
    EXPECT_FALSE(c.contains("error")) << c.value("error", "");
    ASSERT_EQ(c["levels"].size(), 2u);
    for (const json& l : c["levels"]) {
      EXPECT_EQ(l["requests"], 8);
      EXPECT_EQ(l["failures"], 0) << l["errors"].dump();
      EXPECT_EQ(l["total_tokens"], 8 * kMaxTokens);
      EXPECT_GT(l["output_throughput_tok_s"].get<double>(), 0.0);
      EXPECT_GT(l["duration_s"].get<double>(), 0.0);
      for (const char* k : {"ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"}) expect_summary(l[k], k);
      EXPECT_EQ(l["rows"].size(), 8u);
    }
    EXPECT_EQ(c["levels"][0]["concurrency"], 1);
    EXPECT_EQ(c["levels"][1]["concurrency"], 4);
  }
  for (const char* f : {"sweep.md", "sweep-throughput.svg", "sweep-ttft.svg", "sweep-failures.svg", "sweep-e2e.svg"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
}

TEST(KrBenchCli, SweepWritesCompleteReport) {
  if (!server_present()) return;
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string log;
  const int rc = run_bench("sweep " + server_args() + " --configs baseline,full --concurrency 1,4 "
                               "--requests-per-level 8 --out-dir " + dir.path(),
                           log);
  ASSERT_EQ(rc, 0) << log;
  check_sweep(dir.path(), 2);
}

#ifdef KR_BENCH_WITH_FAKE
TEST(KrBenchCli, SweepAgainstExternalUrl) {
  kr::bench::FakeServerOptions o;
  o.inter_token_delay_ms = 2;
  kr::bench::FakeServer server(o);
  const int port = server.start();
  ASSERT_GT(port, 0);
  TempDir dir;
  std::string log;
  // Run from a folder outside the repository: the default questions are built in,
  // and the commit is the binary's (no checkout to ask).
  const int rc = run_bench("sweep --url http://127.0.0.1:" + std::to_string(port) + " --max-tokens " +
                               std::to_string(kMaxTokens) + " --warmup 1 --concurrency 1,4 --requests-per-level 8 "
                               "--rate 200 --out-dir out",
                           log, dir.path());
  ASSERT_EQ(rc, 0) << log;
  check_sweep(dir.path() + "/out", 1);
  EXPECT_EQ(load(dir.path() + "/out/sweep.json")["parameters"]["questions_file"], "built-in:fifty.json");
  // An explicit questions file is still read, and a missing one is an error.
  log.clear();
  EXPECT_EQ(run_bench("sweep --url http://127.0.0.1:" + std::to_string(port) +
                          " --questions-file nope.json --out-dir out2", log, dir.path()), 2);
  EXPECT_NE(log.find("cannot open questions file nope.json"), std::string::npos) << log;
  const json r = load(dir.path() + "/out/sweep.json");
  EXPECT_EQ(r["configurations"][0]["name"], "external");
  EXPECT_EQ(r["configurations"][0]["served_model"], "fake-model");  // from GET /v1/models
  EXPECT_EQ(r["parameters"]["arrivals"], "poisson");
  EXPECT_EQ(server.chat_requests(), 1 + 2 * 8);
  EXPECT_LE(server.max_concurrent_streams(), 4);
}
#endif

TEST(KrBenchCli, RejectsBadArguments) {
  std::string log;
  EXPECT_EQ(run_bench("sweep --url http://127.0.0.1:1 --concurrency 0", log), 2);
  EXPECT_NE(log.find("--concurrency"), std::string::npos) << log;
  EXPECT_EQ(run_bench("fifty --server-bin x --model y --configs nope", log), 2);
  EXPECT_NE(log.find("unknown configuration 'nope'"), std::string::npos) << log;
  EXPECT_EQ(run_bench("bogus", log), 2);
}

}  // namespace
