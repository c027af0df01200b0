// Markdown report of `kr-bench fifty`, rendered from its JSON report. The
// conclusions are computed from the numbers; nothing here is canned.
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/kr_bench/fifty.h"
#include "bench/kr_bench/report_util.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

std::string yes_no(const json& b) { return b.get<bool>() ? "on" : "off"; }

std::string stat_row(const std::string& name, const json& s, int digits) {
  return "| " + name + " | " + fmt(s["mean"], digits) + " | " + fmt(s["median"], digits) + " | " +
         fmt(s["p95"], digits) + " | " + fmt(s["p99"], digits) + " | " + fmt(s["std"], digits) + " | " +
         fmt(s["min"], digits) + " | " + fmt(s["max"], digits) + " |\n";
}

std::string stat_table(const json& configs, const char* key, int digits) {
  std::string md = "| Configuration | Mean | Median | P95 | P99 | Std | Min | Max |\n|---|---|---|---|---|---|---|---|\n";
  for (const json& c : configs)
    if (!c.contains("error")) md += stat_row(c["name"], c[key], digits);
  return md;
}

std::string conclusions(const json& configs) {
  std::string md;
  const json* fastest = nullptr;
  for (const json& c : configs) {
    if (c.contains("error")) {
      md += "- **" + c["name"].get<std::string>() + "** did not run: " + c["error"].get<std::string>() + "\n";
      continue;
    }
    if (fastest == nullptr || c["total_time_s"].get<double>() < (*fastest)["total_time_s"].get<double>()) fastest = &c;
  }
  if (fastest == nullptr) return md + "- No configuration produced results.\n";
  md += "- Fastest total time: **" + (*fastest)["name"].get<std::string>() + "** (" +
        fmt((*fastest)["total_time_s"], 2) + " s).\n";
  for (const json& c : configs) {
    if (c.contains("error") || !c.contains("overhead_vs_baseline")) continue;
    const json& o = c["overhead_vs_baseline"];
    if (c["name"] == o["reference"]) continue;
    const double total_pct = o["total_time_pct"];
    const double d_ms = o["mean_response_time_ms"];
    const double noise_ms = o["mean_response_time_noise_ms"];
    const std::string name = c["name"];
    md += "- **" + name + "** vs " + o["reference"].get<std::string>() + ": total time " + fmt_pct(total_pct) +
          ", mean response " + (d_ms >= 0 ? "+" : "") + fmt(d_ms, 2) + " ms (" +
          fmt_pct(o["mean_response_time_pct"]) + "), TTFT " + (o["ttft_mean_ms"].get<double>() >= 0 ? "+" : "") +
          fmt(o["ttft_mean_ms"], 2) + " ms. ";
    md += std::fabs(d_ms) <= noise_ms
              ? "The difference of means is within two standard errors (" + fmt(noise_ms, 2) +
                    " ms): not distinguishable from noise at this sample size. "
              : "The difference of means exceeds two standard errors (" + fmt(noise_ms, 2) + " ms). ";
    md += total_pct < 5.0 ? "The < 5% overhead goal is **met**.\n" : "The < 5% overhead goal is **not met**.\n";
  }
  int failures = 0;
  for (const json& c : configs)
    if (!c.contains("error")) failures += c["failures"].get<int>();
  md += failures == 0 ? "- Every request succeeded in every configuration.\n"
                      : "- " + std::to_string(failures) + " request(s) failed; see the rows in the JSON report.\n";
  return md;
}

}  // namespace

std::string render_fifty_markdown(const json& r) {
  const json& configs = r["configurations"];
  const json& p = r["parameters"];
  std::string md = "# 50-questions comparison\n\n";
  md += "| | |\n|---|---|\n";
  md += "| Date (UTC) | " + r["timestamp"].get<std::string>() + " |\n";
  md += "| Commit | " + (r["commit"].get<std::string>().empty() ? "unknown" : r["commit"].get<std::string>()) + " |\n";
  md += "| Model | " + r["model"].get<std::string>() + " |\n";
  md += "| Backend | " + r["backend"].get<std::string>() + " |\n";
  md += "| GPU | " + r["gpu"].get<std::string>() + " |\n";
  md += "| Questions | " + std::to_string(p["questions"].get<int>()) + ", sequential, " +
        std::to_string(p["max_tokens"].get<int>()) + " tokens each (ignore_eos), temperature " +
        fmt(p["temperature"], 2) + ", seed " + std::to_string(p["seed"].get<int64_t>()) + "+i, " +
        std::to_string(p["warmup_requests"].get<int>()) + " warm-up requests |\n\n";

  md += "## Configuration matrix\n\n| Configuration | GPU scheduler | Auto-tune | Metrics export | Success rate | "
        "Total time (s) | Total tokens |\n|---|---|---|---|---|---|---|\n";
  for (const json& c : configs) {
    md += "| " + c["name"].get<std::string>() + " | " + yes_no(c["gpu_scheduler"]) + " | " + yes_no(c["auto_tune"]) +
          " | " + yes_no(c["metrics_export"]) + " | ";
    if (c.contains("error")) {
      md += "did not run | - | - |\n";
      continue;
    }
    md += fmt(c["success_rate"].get<double>() * 100, 1) + "% (" + std::to_string(c["successes"].get<int>()) + "/" +
          std::to_string(c["requests"].get<int>()) + ") | " + fmt(c["total_time_s"], 2) + " | " +
          std::to_string(c["total_tokens"].get<int64_t>()) + " |\n";
  }
  md += "\n## Response time (ms)\n\nSend to the end of the stream, per request.\n\n" +
        stat_table(configs, "response_time_ms", 1);
  md += "\n![response time](" + r["charts"]["response_time"].get<std::string>() + ")\n";
  md += "\n## Time to first token (ms)\n\nSend to the first chunk with content.\n\n" + stat_table(configs, "ttft_ms", 1);
  md += "\n![TTFT](" + r["charts"]["ttft"].get<std::string>() + ")\n";
  md += "\n## Throughput (tokens/s per request)\n\nOutput tokens over each request's response time; the last "
        "column is all tokens over the total time.\n\n"
        "| Configuration | Mean | Median | P95 | P99 | Std | Min | Max | TPOT mean (ms) | Aggregate tok/s |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const json& c : configs) {
    if (c.contains("error")) continue;
    std::string row = stat_row(c["name"], c["throughput_tok_s"], 1);
    row.pop_back();  // '\n'
    md += row + " " + fmt(c["tpot_ms"]["mean"], 2) + " | " + fmt(c["aggregate_throughput_tok_s"], 1) + " |\n";
  }
  md += "\n## Overhead breakdown (vs baseline)\n\n| Configuration | Total time | Mean response | Median response | "
        "P95 response | TTFT mean | TPOT mean | Throughput | Noise (2 SE) |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const json& c : configs) {
    if (c.contains("error") || !c.contains("overhead_vs_baseline")) continue;
    const json& o = c["overhead_vs_baseline"];
    md += "| " + c["name"].get<std::string>() + " | " + fmt_pct(o["total_time_pct"]) + " (" +
          fmt(o["total_time_s"], 2) + " s) | " + fmt_pct(o["mean_response_time_pct"]) + " (" +
          fmt(o["mean_response_time_ms"], 2) + " ms) | " + fmt_pct(o["median_response_time_pct"]) + " | " +
          fmt_pct(o["p95_response_time_pct"]) + " | " + fmt_pct(o["ttft_mean_pct"]) + " (" +
          fmt(o["ttft_mean_ms"], 2) + " ms) | " + (o["tpot_mean_ms"].get<double>() >= 0 ? "+" : "") +
          fmt(o["tpot_mean_ms"], 3) + " ms | " +
          fmt_pct(o["throughput_mean_pct"]) + " | " + fmt(o["mean_response_time_noise_ms"], 2) + " ms |\n";
  }
  md += "\n## Conclusions\n\n" + conclusions(configs);
  return md;
}

}  // namespace kr::bench
