// The Prometheus text of Metrics parsed back, under our names and vLLM's, and
// checked by promtool when it is installed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "metrics/exposition.h"
#include "metrics/exposition_parser_for_test.h"
#include "metrics/metrics.h"

namespace kr {
namespace {

// The parser must catch what it is there to catch, or the tests below prove
// nothing.
TEST(ExpositionParser, RejectsBrokenText) {
  const std::string good =
      "# HELP h_seconds x\n# TYPE h_seconds histogram\n"
      "h_seconds_bucket{le=\"1.0\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
      "h_seconds_sum 3\nh_seconds_count 2\n"
      "# HELP c_total x\n# TYPE c_total counter\nc_total{a=\"q\\\"\"} 4\n";
  const Parsed ok = parse_exposition(good);
  ASSERT_TRUE(ok.errors.empty()) << ok.errors.front();
  EXPECT_EQ(value_of(ok, "c_total", {{"a", "q\""}}), 4);
  EXPECT_EQ(value_of(ok, "h_seconds_bucket", {{"le", "+Inf"}}), 2);

  auto broken = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    return !parse_exposition(text).errors.empty();
  };
  EXPECT_TRUE(broken("h_seconds_bucket{le=\"+Inf\"} 2", "h_seconds_bucket{le=\"+Inf\"} 0"));
  EXPECT_TRUE(broken("h_seconds_count 2", "h_seconds_count 5"));
  EXPECT_TRUE(broken("h_seconds_bucket{le=\"+Inf\"} 2\n", ""));
  EXPECT_TRUE(broken("h_seconds_sum 3\n", ""));
  EXPECT_TRUE(broken("# HELP c_total x\n", ""));
  EXPECT_TRUE(broken("# TYPE c_total counter\n", ""));
  EXPECT_TRUE(broken("c_total{a=", "c-total{a="));
  EXPECT_TRUE(broken("} 4", "} four"));
  EXPECT_TRUE(broken("c_total{a=\"q\\\"\"} 4\n", "c_total 4\nh_seconds_sum 1\n"));  // split family
}

void record_some(Metrics& m, FakeClock& clock) {
  m.record_arrival();
  m.record_arrival();
  m.record_rejected();
  m.record_queue_time(0.004);
  m.record_first_token(0.05);
  m.record_inter_token(0.02);
  m.record_inter_token(0.3);
  m.record_prefill_time(0.04);
  m.record_decode_time(0.6);
  m.record_finished(FinishReason::kStop, 0.7, 12, 3);
  m.record_finished(FinishReason::kCancelled, 2.0, 20, 1);
  m.record_step(3, 40, 0.002);
  m.record_preemption();
  m.record_fast_path();
  m.record_auto_tune_adjustment();
  m.record_prefix_cache(100, 60, 16);
  m.record_kv_host_copies(5, 1);
  m.set_queue(2, 5, 0);
  m.set_kv_usage(0.25);
  m.set_scheduler_state(SchedulerState{.window_ms = 1.5,
                                       .admissions_per_step = 8,
                                       .auto_tune = true,
                                       .ema_p99_ttft_ms = 90,
                                       .ema_p99_itl_ms = 20});
  clock.advance_ms(3000);
}

const char* const kFamilies[] = {
    "num_requests_running",         "num_requests_waiting",        "num_requests_swapped",
    "kv_cache_usage_perc",          "prompt_tokens_total",         "generation_tokens_total",
    "request_success_total",        "num_preemptions_total",       "time_to_first_token_seconds",
    "inter_token_latency_seconds",  "e2e_request_latency_seconds", "request_queue_time_seconds",
    "request_prefill_time_seconds", "request_decode_time_seconds", "request_prompt_tokens",
    "request_generation_tokens",    "prefix_cache_queries_total",  "prefix_cache_hits_total"};

TEST(Metrics, ExpositionParsesBackWithEveryFamily) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.model_name = "llama \"3\"\\8b"});
  record_some(m, clock);
  const Parsed p = parse_exposition(m.render_prometheus());
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  for (const char* f : kFamilies) {
    EXPECT_TRUE(p.type.count(std::string("krserve_") + f)) << f;
    EXPECT_FALSE(p.type.count(std::string("vllm:") + f)) << f;
  }
  for (const char* f :
       {"krserve_step_duration_seconds", "krserve_sequences_per_step",
        "krserve_scheduler_window_ms", "krserve_scheduler_batch_size", "krserve_auto_tune_enabled",
        "krserve_auto_tune_ema_p99_ttft_ms", "krserve_auto_tune_ema_p99_itl_ms",
        "krserve_auto_tune_adjustments_total", "krserve_fast_path_total",
        "krserve_requests_rejected_total", "krserve_uptime_seconds"}) {
    EXPECT_TRUE(p.type.count(f)) << f;
  }
  EXPECT_EQ(p.type.at("krserve_time_to_first_token_seconds"), "histogram");
  EXPECT_EQ(p.type.at("krserve_prompt_tokens_total"), "counter");
  EXPECT_EQ(p.type.at("krserve_num_requests_running"), "gauge");

  const Labels model = {{"model_name", "llama \"3\"\\8b"}};  // escaping round-trips
  EXPECT_EQ(value_of(p, "krserve_num_requests_waiting", model), 5);
  EXPECT_EQ(value_of(p, "krserve_kv_cache_usage_perc", model), 0.25);
  EXPECT_EQ(value_of(p, "krserve_prompt_tokens_total", model), 32);
  EXPECT_EQ(value_of(p, "krserve_generation_tokens_total", model), 4);
  EXPECT_EQ(
      value_of(p, "krserve_request_success_total", {model[0], {"finished_reason", "cancelled"}}),
      1);
  EXPECT_EQ(value_of(p, "krserve_request_success_total", {model[0], {"finished_reason", "error"}}),
            0);
  EXPECT_EQ(value_of(p, "krserve_requests_rejected_total", model), 1);
  EXPECT_EQ(p.type.at("krserve_prefix_cache_queries_total"), "counter");
  EXPECT_EQ(value_of(p, "krserve_prefix_cache_queries_total", model), 100);
  EXPECT_EQ(value_of(p, "krserve_prefix_cache_hits_total", model), 60);
  EXPECT_EQ(value_of(p, "krserve_prefix_cache_host_hits_total", model), 16);
  EXPECT_EQ(value_of(p, "krserve_kv_host_blocks_offloaded_total", model), 5);
  EXPECT_EQ(value_of(p, "krserve_kv_host_blocks_reloaded_total", model), 1);
  const StatsSnapshot st = m.stats();
  EXPECT_DOUBLE_EQ(st.prefix_cache_hit_rate, 0.6);
  EXPECT_EQ(st.prefix_cache_host_hits, 16u);
  EXPECT_EQ(value_of(p, "krserve_scheduler_window_ms", model), 1.5);
  EXPECT_EQ(value_of(p, "krserve_auto_tune_enabled", model), 1);
  EXPECT_EQ(value_of(p, "krserve_uptime_seconds", model), 3);
  // vLLM's TTFT bounds: 0.05 falls in le="0.06" but not le="0.04".
  EXPECT_EQ(value_of(p, "krserve_time_to_first_token_seconds_bucket", {model[0], {"le", "0.04"}}),
            0);
  EXPECT_EQ(value_of(p, "krserve_time_to_first_token_seconds_bucket", {model[0], {"le", "0.06"}}),
            1);
  EXPECT_EQ(value_of(p, "krserve_time_to_first_token_seconds_bucket", {model[0], {"le", "2560.0"}}),
            1);
  EXPECT_EQ(value_of(p, "krserve_inter_token_latency_seconds_bucket", {model[0], {"le", "0.3"}}),
            2);
  EXPECT_EQ(value_of(p, "krserve_e2e_request_latency_seconds_bucket", {model[0], {"le", "7680.0"}}),
            2);
  EXPECT_NEAR(value_of(p, "krserve_e2e_request_latency_seconds_sum", model), 2.7, 1e-12);
  EXPECT_EQ(value_of(p, "krserve_request_prompt_tokens_bucket", {model[0], {"le", "20.0"}}), 2);
  EXPECT_EQ(value_of(p, "krserve_request_prompt_tokens_bucket", {model[0], {"le", "10.0"}}), 0);
  EXPECT_EQ(value_of(p, "krserve_sequences_per_step_bucket", {model[0], {"le", "4.0"}}), 1);
}

TEST(Metrics, VllmNamesMirrorTheSameSeries) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.model_name = "m", .vllm_names = true});
  record_some(m, clock);
  const Parsed p = parse_exposition(m.render_prometheus());
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  for (const char* f : kFamilies) {
    const std::string ours = std::string("krserve_") + f, theirs = std::string("vllm:") + f;
    ASSERT_TRUE(p.type.count(theirs)) << f;
    EXPECT_EQ(p.type.at(ours), p.type.at(theirs));
  }
  EXPECT_TRUE(p.type.count("vllm:gpu_cache_usage_perc"));
  EXPECT_TRUE(p.type.count("vllm:time_per_output_token_seconds"));
  // Every vllm: sample equals its krserve_ twin (finish reasons renamed).
  int compared = 0;
  for (const Sample& s : p.samples) {
    if (s.name.rfind("vllm:", 0) != 0) continue;
    std::string twin = "krserve_" + s.name.substr(5);
    if (twin.rfind("krserve_time_per_output_token_seconds", 0) == 0) {
      twin = "krserve_inter_token_latency_seconds" +
             twin.substr(std::string("krserve_time_per_output_token_seconds").size());
    }
    if (twin == "krserve_gpu_cache_usage_perc") twin = "krserve_kv_cache_usage_perc";
    Labels labels = s.labels;
    for (auto& [n, v] : labels) {
      if (n == "finished_reason" && v == "abort") v = "cancelled";
    }
    EXPECT_EQ(value_of(p, twin, labels), s.value) << s.name;
    ++compared;
  }
  EXPECT_GT(compared, 100);
  EXPECT_EQ(value_of(p, "vllm:request_success_total",
                     {{"model_name", "m"}, {"finished_reason", "abort"}}),
            1);
}

// promtool's lint rejects ':' in names (inherent to vLLM's names) and "_ms"
// (our scheduler gauges are named in ms by design); anything else is a failure.
bool allowed_lint(const std::string& line) {
  const size_t sp = line.find(' ');
  if (sp == std::string::npos) return false;
  const std::string name = line.substr(0, sp), problem = line.substr(sp + 1);
  if (problem == "metric names should not contain ':'") return name.rfind("vllm:", 0) == 0;
  if (problem == "metric names should not contain abbreviated units") {
    return name == "krserve_scheduler_window_ms" || name == "krserve_auto_tune_ema_p99_ttft_ms" ||
           name == "krserve_auto_tune_ema_p99_itl_ms";
  }
  return false;
}

void check_with_promtool(bool vllm_names) {
  // A missing promtool fails (scripts/install-deps.sh installs it): a skip would let
  // a plain ctest pass without the format check.
  if (std::system("command -v promtool > /dev/null 2>&1") != 0) {
    FAIL() << "promtool not installed (Debian package prometheus; scripts/install-deps.sh installs it)";
  }
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.model_name = "tiny-llama3", .vllm_names = vllm_names});
  record_some(m, clock);
  const std::string path =
      testing::TempDir() + "krserve_metrics_" + std::to_string(vllm_names) + ".prom";
  {
    std::ofstream f(path);
    f << m.render_prometheus();
  }
  FILE* pipe = popen(("promtool check metrics < '" + path + "' 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  std::remove(path.c_str());
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // 0: clean; 3: lint findings only (the text parsed); anything else: broken.
  ASSERT_TRUE(rc == 0 || rc == 3) << "promtool rc " << rc << ":\n" << output;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) {
      EXPECT_TRUE(allowed_lint(line)) << line;
    }
  }
}

TEST(Metrics, PromtoolAcceptsOurNames) { check_with_promtool(false); }
TEST(Metrics, PromtoolAcceptsVllmNames) { check_with_promtool(true); }

}  // namespace
}  // namespace kr

namespace kr {
namespace {

// Several models: one Metrics each, merged into one exposition (a family once,
// a sample per model), with the model lifecycle series.
TEST(Metrics, SeveralModelsMergeIntoOneExposition) {
  FakeClock clock;
  Metrics a(&clock, MetricsOptions{.model_name = "a"});
  Metrics b(&clock, MetricsOptions{.model_name = "b"});
  record_some(a, clock);
  a.record_model_load(0.75);
  a.set_model_loaded(true);
  b.record_model_load(2.0);
  b.record_model_unload(/*evicted=*/true);
  b.record_model_load_failure();
  b.set_model_loaded(false);
  const std::string ta = a.render_prometheus(), tb = b.render_prometheus();
  // Plain concatenation declares every family twice: not a valid exposition.
  EXPECT_FALSE(parse_exposition(ta + tb).errors.empty());
  const Parsed p = parse_exposition(merge_expositions({ta, tb}));
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  const Labels la = {{"model_name", "a"}}, lb = {{"model_name", "b"}};
  EXPECT_EQ(value_of(p, "krserve_num_requests_waiting", la), 5);
  EXPECT_EQ(value_of(p, "krserve_num_requests_waiting", lb), 0);
  EXPECT_EQ(p.type.at("krserve_model_load_seconds"), "histogram");
  EXPECT_EQ(value_of(p, "krserve_model_loaded", la), 1);
  EXPECT_EQ(value_of(p, "krserve_model_loaded", lb), 0);
  EXPECT_EQ(value_of(p, "krserve_model_loads_total", la), 1);
  EXPECT_EQ(value_of(p, "krserve_model_load_failures_total", lb), 1);
  EXPECT_EQ(value_of(p, "krserve_model_unloads_total", {lb[0], {"reason", "evicted"}}), 1);
  EXPECT_EQ(value_of(p, "krserve_model_unloads_total", {lb[0], {"reason", "idle"}}), 0);
  EXPECT_EQ(value_of(p, "krserve_model_last_load_seconds", lb), 2);
  EXPECT_EQ(value_of(p, "krserve_model_load_seconds_count", la), 1);
  EXPECT_EQ(merge_expositions({ta}), ta);
}

}  // namespace
}  // namespace kr
