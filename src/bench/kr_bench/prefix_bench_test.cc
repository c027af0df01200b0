// kr-bench's prefix-cache scenarios, small, against build/bin/kr-serve on the
// tiny model (CPU): both must run their configurations and report what the
// cache did (nothing with caching off, hits with it on, host-tier reloads in the
// host configuration after its filler prompts pushed the document out), and
// multiturn's temperature-0 answers with caching on equal cache-off's token for
// token (on the CPU caching is bit-identical, so no divergence at any margin).
// The answer comparison itself (output_compare.h) is tested on made-up answers.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/kr_bench/output_compare.h"

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
  // Temperature 0, caching on the CPU: the same tokens in every session and turn, each with a margin.
  ASSERT_TRUE(r.contains("output_comparison")) << r.dump(1).substr(0, 2000);
  const json& cmp = r["output_comparison"]["cache-on"];
  EXPECT_EQ(cmp["sessions_compared"], 2) << cmp;
  EXPECT_EQ(cmp["sessions_identical"], 2) << cmp;
  EXPECT_EQ(cmp["sessions_incomplete"], 0) << cmp;
  EXPECT_EQ(cmp["tokens_compared"], 2 * 3 * 4) << cmp;  // sessions x turns x --max-tokens
  EXPECT_EQ(cmp["tokens_margin_unknown"], 0) << cmp;     // top-2 logprobs came back for every token
  EXPECT_EQ(cmp["divergences"].size(), 0u) << cmp;
  EXPECT_EQ(cmp["divergences_above_margin"], 0) << cmp;
  EXPECT_EQ(cmp["divergences_at_or_below_margin"], 0) << cmp;
  EXPECT_EQ(cmp["pass"], true) << cmp;
  EXPECT_NE(log.find("multiturn cache-on vs cache-off: 2 sessions compared, 2 identical"), std::string::npos) << log;
}

kr::bench::TurnAnswer answer(std::vector<int32_t> ids, std::vector<double> margins) { return {std::move(ids), std::move(margins)}; }

TEST(KrBenchPrefix, OutputComparisonStopsAtTheFirstDifferenceAndJudgesItsMargin) {
  using kr::bench::SessionAnswers;
  const double nan = std::nan("");
  SessionAnswers off, on;
  // Session 0: identical over two turns.
  off[{0, 0}] = on[{0, 0}] = answer({1, 2, 3}, {1.0, 1.0, 1.0});
  off[{0, 1}] = on[{0, 1}] = answer({4, 5, 6}, {1.0, 0.1, 1.0});
  // Session 1: differs at turn 0, token 1, where cache-off's margin is 0.1 (excused); turn 1 is not compared.
  off[{1, 0}] = answer({7, 8, 9}, {1.0, 0.1, 1.0});
  on[{1, 0}] = answer({7, 9, 9}, {1.0, 0.1, 1.0});
  off[{1, 1}] = answer({1, 1, 1}, {1.0, 1.0, 1.0});
  on[{1, 1}] = answer({2, 2, 2}, {1.0, 1.0, 1.0});
  json c = kr::bench::compare_outputs(off, on, 2, 2, 0.15);
  EXPECT_EQ(c["sessions_compared"], 2) << c;
  EXPECT_EQ(c["sessions_identical"], 1) << c;
  EXPECT_EQ(c["tokens_compared"], 6 + 2) << c;
  EXPECT_EQ(c["tokens_at_or_below_margin"], 2) << c;
  EXPECT_EQ(c["divergences_at_or_below_margin"], 1) << c;
  EXPECT_EQ(c["divergences_above_margin"], 0) << c;
  ASSERT_EQ(c["divergences"].size(), 1u) << c;
  EXPECT_EQ(c["divergences"][0]["turn"], 0);
  EXPECT_EQ(c["divergences"][0]["token_index"], 1);
  EXPECT_EQ(c["divergences"][0]["reference_id"], 8);
  EXPECT_EQ(c["divergences"][0]["id"], 9);
  EXPECT_EQ(c["pass"], true);

  // Above the threshold, an unknown margin, or a shorter answer: failures.
  for (const auto& [ref, other] : {std::pair{answer({7, 8}, {1.0, 0.2}), answer({7, 9}, {1.0, 0.2})},
                                   std::pair{answer({7, 8}, {1.0, nan}), answer({7, 9}, {1.0, nan})},
                                   std::pair{answer({7, 8}, {1.0, 0.01}), answer({7}, {1.0})}}) {
    SessionAnswers a{{{0, 0}, ref}}, b{{{0, 0}, other}};
    json f = kr::bench::compare_outputs(a, b, 1, 1, 0.15);
    EXPECT_EQ(f["divergences_above_margin"], 1) << f;
    EXPECT_EQ(f["pass"], false) << f;
  }
  // A session that failed in one run is incomplete, not identical.
  SessionAnswers missing = off;
  missing.erase({0, 1});
  json m = kr::bench::compare_outputs(off, missing, 1, 2, 0.15);
  EXPECT_EQ(m["sessions_identical"], 0) << m;
  EXPECT_EQ(m["sessions_incomplete"], 1) << m;
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
