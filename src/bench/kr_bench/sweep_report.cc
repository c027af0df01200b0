// Markdown report of `kr-bench sweep`, rendered from its JSON report; the
// conclusions are computed from the numbers.
#include <string>

#include <nlohmann/json.hpp>

#include "bench/kr_bench/report_util.h"
#include "bench/kr_bench/sweep.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

std::string conclusions(const json& configs) {
  std::string md;
  const json* best_cfg = nullptr;
  double best_tput = -1;
  for (const json& c : configs) {
    const std::string name = c["name"];
    if (c.contains("error")) {
      md += "- **" + name + "** did not run: " + c["error"].get<std::string>() + "\n";
      continue;
    }
    const json& levels = c["levels"];
    if (levels.empty()) continue;
    const json* peak = &levels[0];
    int failures = 0;
    for (const json& l : levels) {
      failures += l["failures"].get<int>();
      if (l["output_throughput_tok_s"].get<double>() > (*peak)["output_throughput_tok_s"].get<double>()) peak = &l;
    }
    const json& first = levels[0];
    const json& last = levels[levels.size() - 1];
    const double t1 = first["output_throughput_tok_s"];
    const double tp = (*peak)["output_throughput_tok_s"];
    md += "- **" + name + "**: peak " + fmt(tp, 1) + " tok/s at " + std::to_string((*peak)["concurrency"].get<int>()) +
          " clients";
    if (t1 > 0 && levels.size() > 1)
      md += ", " + fmt(tp / t1, 2) + "x the " + std::to_string(first["concurrency"].get<int>()) + "-client figure";
    md += "; TTFT P99 goes from " + fmt(first["ttft_ms"]["p99"], 1) + " ms (" +
          std::to_string(first["concurrency"].get<int>()) + " clients) to " + fmt(last["ttft_ms"]["p99"], 1) +
          " ms (" + std::to_string(last["concurrency"].get<int>()) + " clients); " + std::to_string(failures) +
          " failed request(s).\n";
    if (tp > best_tput) {
      best_tput = tp;
      best_cfg = &c;
    }
  }
  if (best_cfg != nullptr && configs.size() > 1)
    md += "- Highest throughput overall: **" + (*best_cfg)["name"].get<std::string>() + "** (" + fmt(best_tput, 1) +
          " tok/s).\n";
  return md.empty() ? "- No configuration produced results.\n" : md;
}

}  // namespace

std::string render_sweep_markdown(const json& r) {
  const json& p = r["parameters"];
  std::string md = "# Concurrency sweep\n\n| | |\n|---|---|\n";
  md += "| Date (UTC) | " + r["timestamp"].get<std::string>() + " |\n";
  md += "| Commit | " + (r["commit"].get<std::string>().empty() ? "unknown" : r["commit"].get<std::string>()) + " |\n";
  md += "| Model | " + r["model"].get<std::string>() + " |\n";
  md += "| Backend | " + r["backend"].get<std::string>() + " |\n";
  md += "| GPU | " + r["gpu"].get<std::string>() + " |\n";
  if (!r["url"].get<std::string>().empty()) md += "| Server | " + r["url"].get<std::string>() + " |\n";
  md += "| Load | " + p["arrivals"].get<std::string>() +
        (p["rate_per_s"].get<double>() > 0 ? " at " + fmt(p["rate_per_s"], 2) + " req/s" : std::string()) + ", " +
        std::to_string(p["max_tokens"].get<int>()) + " tokens per request (ignore_eos), temperature " +
        fmt(p["temperature"], 2) + " |\n\n";
  md += "Throughput is output tokens over the level's wall time (first send to last completion). TTFT, ITL, "
        "TPOT and E2E follow vLLM's `bench serve` definitions; ITL percentiles pool every gap of every request.\n";
  for (const json& c : r["configurations"]) {
    md += "\n## " + c["name"].get<std::string>() + "\n\n";
    if (c.contains("error")) {
      md += "Did not run: " + c["error"].get<std::string>() + "\n";
      continue;
    }
    md += "| Clients | Requests | Failed | Duration (s) | Output tok/s | Req/s | TTFT P50 | TTFT P99 | ITL P50 | "
          "ITL P99 | TPOT mean | E2E P50 | E2E P99 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const json& l : c["levels"]) {
      md += "| " + std::to_string(l["concurrency"].get<int>()) + " | " + std::to_string(l["requests"].get<int>()) +
            " | " + std::to_string(l["failures"].get<int>()) + " | " + fmt(l["duration_s"], 2) + " | " +
            fmt(l["output_throughput_tok_s"], 1) + " | " + fmt(l["request_throughput_req_s"], 2) + " | " +
            fmt(l["ttft_ms"]["p50"], 1) + " | " + fmt(l["ttft_ms"]["p99"], 1) + " | " + fmt(l["itl_ms"]["p50"], 2) +
            " | " + fmt(l["itl_ms"]["p99"], 2) + " | " + fmt(l["tpot_ms"]["mean"], 2) + " | " +
            fmt(l["e2e_ms"]["p50"], 1) + " | " + fmt(l["e2e_ms"]["p99"], 1) + " |\n";
    }
    md += "\nLatencies in ms.\n";
  }
  md += "\n## Charts\n\n";
  for (const char* k : {"throughput", "ttft", "failures", "e2e"})
    md += "![" + std::string(k) + "](" + r["charts"][k].get<std::string>() + ")\n";
  md += "\n## Conclusions\n\n" + conclusions(r["configurations"]);
  return md;
}

}  // namespace kr::bench
