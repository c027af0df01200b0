// Reports rendered from hand-made results: overheads and conclusions follow
// the numbers, and the SVG charts hold one mark per sample group / point.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/kr_bench/fifty.h"
#include "bench/kr_bench/report_util.h"
#include "bench/kr_bench/svg_chart.h"
#include "bench/kr_bench/sweep.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

json config(const std::string& name, bool sched, double total_s, double mean_ms, double std_ms, double ttft_ms) {
  json c = config_json(ServerConfig{name, sched, false, false});
  c["requests"] = 10;
  c["successes"] = 10;
  c["failures"] = 0;
  c["success_rate"] = 1.0;
  c["total_time_s"] = total_s;
  c["total_tokens"] = 500;
  c["aggregate_throughput_tok_s"] = 500 / total_s;
  // Only the fields the report reads need values; summary_json gives all keys.
  json s = summary_json({mean_ms});
  s["mean"] = mean_ms;
  s["std"] = std_ms;
  c["response_time_ms"] = s;
  json t = summary_json({ttft_ms});
  c["ttft_ms"] = t;
  c["tpot_ms"] = summary_json({2.0});
  c["throughput_tok_s"] = summary_json({50000.0 / mean_ms});
  return c;
}

json fifty_report() {
  json r = {{"timestamp", "2026-01-01T00:00:00Z"}, {"commit", "abc"}, {"model", "m"}, {"backend", "cpu"},
            {"gpu", "none"}, {"url", ""},
            {"parameters", {{"questions", 10}, {"max_tokens", 50}, {"temperature", 0.7}, {"seed", 1},
                            {"warmup_requests", 2}}},
            {"charts", {{"response_time", "a.svg"}, {"ttft", "b.svg"}}}};
  r["configurations"] = json::array({config("baseline", false, 10.0, 1000, 10, 90),
                                     config("hybrid", true, 10.3, 1030, 10, 95),
                                     config("full", true, 11.0, 1002, 10, 100)});
  r["configurations"].push_back({{"name", "broken"}, {"gpu_scheduler", true}, {"auto_tune", true},
                                 {"metrics_export", true}, {"error", "INTERNAL: did not start"}});
  add_fifty_overheads(r["configurations"]);
  return r;
}

TEST(FiftyReport, OverheadsAgainstBaseline) {
  const json r = fifty_report();
  const json& h = r["configurations"][1]["overhead_vs_baseline"];
  EXPECT_NEAR(h["total_time_pct"].get<double>(), 3.0, 1e-9);
  EXPECT_NEAR(h["mean_response_time_ms"].get<double>(), 30.0, 1e-9);
  EXPECT_NEAR(h["ttft_mean_ms"].get<double>(), 5.0, 1e-9);
  // 2 * sqrt(10^2/10 + 10^2/10) = 2 * sqrt(20)
  EXPECT_NEAR(h["mean_response_time_noise_ms"].get<double>(), 8.94427191, 1e-6);
  EXPECT_NEAR(r["configurations"][2]["overhead_vs_baseline"]["total_time_pct"].get<double>(), 10.0, 1e-9);
  EXPECT_NEAR(r["configurations"][0]["overhead_vs_baseline"]["total_time_pct"].get<double>(), 0.0, 1e-12);
  EXPECT_FALSE(r["configurations"][3].contains("overhead_vs_baseline"));
}

TEST(FiftyReport, ConclusionsFollowTheNumbers) {
  const std::string md = render_fifty_markdown(fifty_report());
  for (const char* section : {"## Configuration matrix", "## Response time (ms)", "## Time to first token (ms)",
                              "## Throughput", "## Overhead breakdown", "## Conclusions"})
    EXPECT_NE(md.find(section), std::string::npos) << section;
  EXPECT_NE(md.find("Fastest total time: **baseline** (10.00 s)"), std::string::npos) << md;
  // hybrid: +3% total, 30 ms > 8.9 ms noise; full: +10%, 2 ms < noise.
  EXPECT_NE(md.find("**hybrid** vs baseline: total time +3.0%"), std::string::npos) << md;
  EXPECT_NE(md.find("exceeds two standard errors (8.94 ms). The < 5% overhead goal is **met**"), std::string::npos);
  EXPECT_NE(md.find("**full** vs baseline: total time +10.0%"), std::string::npos);
  EXPECT_NE(md.find("within two standard errors (8.94 ms): not distinguishable from noise at this sample size. "
                    "The < 5% overhead goal is **not met**"),
            std::string::npos);
  EXPECT_NE(md.find("**broken** did not run: INTERNAL: did not start"), std::string::npos);
  EXPECT_EQ(md.find("**baseline** vs"), std::string::npos);  // no self-comparison
}

TEST(SweepReport, PeakAndScaling) {
  json r = {{"timestamp", "t"}, {"commit", ""}, {"model", "m"}, {"backend", "cpu"}, {"gpu", "none"}, {"url", ""},
            {"parameters", {{"arrivals", "closed-loop"}, {"rate_per_s", 0.0}, {"max_tokens", 8}, {"temperature", 0.7}}},
            {"charts", {{"throughput", "a"}, {"ttft", "b"}, {"failures", "c"}, {"e2e", "d"}}}};
  json c = config_json(ServerConfig{"full", true, true, true});
  c["levels"] = json::array();
  const double tput[] = {100, 350, 300};
  const int conc[] = {1, 4, 16};
  for (int i = 0; i < 3; ++i) {
    json s = summary_json({10.0 * (i + 1)});
    c["levels"].push_back({{"concurrency", conc[i]}, {"requests", 8}, {"failures", i}, {"duration_s", 1.0},
                           {"output_throughput_tok_s", tput[i]}, {"request_throughput_req_s", 8.0}, {"ttft_ms", s},
                           {"itl_ms", s}, {"tpot_ms", s}, {"e2e_ms", s}});
  }
  r["configurations"] = json::array({c});
  const std::string md = render_sweep_markdown(r);
  EXPECT_NE(md.find("**full**: peak 350.0 tok/s at 4 clients, 3.50x the 1-client figure; TTFT P99 goes from 10.0 ms "
                    "(1 clients) to 30.0 ms (16 clients); 3 failed request(s)."),
            std::string::npos)
      << md;
  EXPECT_EQ(count(md, "\n| 16 | 8 | 2 |"), 1u);
}

TEST(Svg, BoxPlotAndLineChart) {
  const std::string box = svg_box_plot("t", "ms", {{"a", {1, 2, 3, 4}}, {"b", {2, 9}}, {"empty", {}}});
  EXPECT_EQ(box.rfind("<svg", 0), 0u);
  EXPECT_NE(box.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(box, "fill-opacity"), 2u);  // one box per non-empty group
  EXPECT_NE(box.find("empty (n=0)"), std::string::npos);
  const std::string line = svg_line_chart("t<x>", "c", "tok/s", {"1", "4"}, {{"s1", {1, 2}}, {"s2", {3, 4}, true}});
  EXPECT_EQ(count(line, "<polyline"), 2u);
  EXPECT_EQ(count(line, "stroke-dasharray"), 2u);  // line and legend of the dashed series
  EXPECT_NE(line.find("t&lt;x&gt;"), std::string::npos);
}

}  // namespace
}  // namespace kr::bench
