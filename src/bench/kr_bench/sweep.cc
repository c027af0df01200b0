#include "bench/kr_bench/sweep.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bench/kr_bench/load_gen.h"
#include "bench/kr_bench/report_util.h"
#include "bench/kr_bench/run_info.h"
#include "bench/kr_bench/svg_chart.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

json level_json(int concurrency, const LoadResult& res, const std::vector<std::string>& prompts) {
  std::vector<double> ttft, itl, tpot, e2e;
  int64_t tokens = 0;
  int ok = 0;
  json rows = json::array();
  json errors = json::array();
  for (size_t i = 0; i < res.results.size(); ++i) {
    const RequestResult& r = res.results[i];
    json row = row_json(static_cast<int>(i), prompts[i % prompts.size()], r);
    row.erase("text");  // keeps sweep.json small; fifty keeps the text
    row["start_offset_ms"] = static_cast<double>(r.start_ns - res.start_ns) / 1e6;
    rows.push_back(std::move(row));
    if (!r.ok) {
      if (errors.size() < 10) errors.push_back(r.error);
      continue;
    }
    ++ok;
    tokens += r.output_tokens;
    ttft.push_back(r.ttft_ms);
    e2e.push_back(r.e2e_ms);
    if (r.output_tokens > 1) tpot.push_back(r.tpot_ms());
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
  }
  const int n = static_cast<int>(res.results.size());
  const double d = res.duration_s;
  return {{"concurrency", concurrency},
          {"requests", n},
          {"successes", ok},
          {"failures", n - ok},
          {"success_rate", n > 0 ? static_cast<double>(ok) / n : 0.0},
          {"duration_s", d},
          {"total_tokens", tokens},
          {"output_throughput_tok_s", d > 0 ? static_cast<double>(tokens) / d : 0.0},
          {"request_throughput_req_s", d > 0 ? ok / d : 0.0},
          {"ttft_ms", summary_json(ttft)},
          {"itl_ms", summary_json(itl)},
          {"tpot_ms", summary_json(tpot)},
          {"e2e_ms", summary_json(e2e)},
          {"errors", errors},
          {"rows", rows}};
}

bool run_config(const CommonOptions& opts, const SweepOptions& sw, const ServerConfig& cfg,
                const std::vector<std::string>& prompts, json& cfg_json) {
  cfg_json = config_json(cfg);
  cfg_json["levels"] = json::array();
  Target target;
  if (Status s = target.open(opts, cfg); !s.ok()) {
    std::fprintf(stderr, "[%s] %s\n", cfg.name.c_str(), s.to_string().c_str());
    cfg_json["error"] = s.to_string();
    return false;
  }
  cfg_json["served_model"] = target.model_name();
  cfg_json["server_version"] = target.server_version();
  int next_seed_offset = 0;
  const auto make_for = [&](int base) {
    return [&, base](int i) {
      ChatRequest r;
      r.model = target.model_name();
      r.prompt = prompts[static_cast<size_t>(base + i) % prompts.size()];
      r.max_tokens = opts.max_tokens;
      r.temperature = opts.temperature;
      r.seed = opts.seed + base + i;
      return r;
    };
  };
  LoadOptions warm;
  warm.requests = opts.warmup_requests;
  warm.timeout_ms = opts.request_timeout_s * 1000;
  run_load(target.endpoint(), warm, make_for(0));

  bool all_ok = true;
  for (int c : sw.concurrency) {
    LoadOptions lo;
    lo.concurrency = c;
    lo.requests = sw.requests_per_level > 0 ? sw.requests_per_level : std::max(32, 2 * c);
    lo.rate_per_s = sw.rate_per_s;
    lo.arrival_seed = static_cast<uint64_t>(opts.seed) + static_cast<uint64_t>(c);
    lo.timeout_ms = opts.request_timeout_s * 1000;
    lo.progress_label = cfg.name + " c=" + std::to_string(c);
    const LoadResult res = run_load(target.endpoint(), lo, make_for(next_seed_offset));
    std::vector<std::string> used;
    for (int i = 0; i < lo.requests; ++i)
      used.push_back(prompts[static_cast<size_t>(next_seed_offset + i) % prompts.size()]);
    next_seed_offset += lo.requests;
    json level = level_json(c, res, used);
    all_ok &= level["failures"].get<int>() == 0;
    std::fprintf(stderr, "[%s] c=%d: %.1f tok/s, TTFT p50 %.1f ms p99 %.1f ms, %d failed\n", cfg.name.c_str(), c,
                 level["output_throughput_tok_s"].get<double>(), level["ttft_ms"]["p50"].get<double>(),
                 level["ttft_ms"]["p99"].get<double>(), level["failures"].get<int>());
    cfg_json["levels"].push_back(std::move(level));
  }
  target.close();
  return all_ok;
}

std::vector<double> per_level(const json& cfg, const char* key, const char* sub = nullptr) {
  std::vector<double> out;
  for (const json& l : cfg["levels"]) out.push_back(sub ? l[key][sub].get<double>() : l[key].get<double>());
  return out;
}

}  // namespace

int run_sweep(const CommonOptions& opts, const SweepOptions& sw) {
  StatusOr<std::vector<std::string>> prompts = load_questions(opts.questions_path);
  if (!prompts.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", prompts.status().to_string().c_str());
    return 2;
  }
  if (Status s = make_dirs(opts.out_dir); !s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  json report = run_meta_json(opts, "sweep");
  report["parameters"]["questions_file"] = questions_source(opts.questions_path);
  report["parameters"]["concurrency"] = sw.concurrency;
  report["parameters"]["requests_per_level"] = sw.requests_per_level;
  report["parameters"]["rate_per_s"] = sw.rate_per_s;
  report["parameters"]["arrivals"] = sw.rate_per_s > 0 ? "poisson" : "closed-loop";
  report["configurations"] = json::array();
  bool all_ok = true;
  for (const ServerConfig& cfg : opts.configs) {
    json c;
    all_ok &= run_config(opts, sw, cfg, *prompts, c);
    report["configurations"].push_back(std::move(c));
  }
  report["charts"] = {{"throughput", "sweep-throughput.svg"}, {"ttft", "sweep-ttft.svg"},
                      {"failures", "sweep-failures.svg"}, {"e2e", "sweep-e2e.svg"}};

  std::vector<std::string> x;
  for (int c : sw.concurrency) x.push_back(std::to_string(c));
  std::vector<Series> tput, ttft, fails, e2e;
  for (const json& c : report["configurations"]) {
    if (c.contains("error")) continue;
    const std::string name = c["name"];
    tput.push_back({name, per_level(c, "output_throughput_tok_s")});
    ttft.push_back({name + " P50", per_level(c, "ttft_ms", "p50")});
    ttft.push_back({name + " P99", per_level(c, "ttft_ms", "p99"), true});
    fails.push_back({name, per_level(c, "failures")});
    e2e.push_back({name + " P50", per_level(c, "e2e_ms", "p50")});
    e2e.push_back({name + " P99", per_level(c, "e2e_ms", "p99"), true});
  }
  const std::string dir = opts.out_dir + "/";
  Status s = write_file(dir + "sweep.json", report.dump(2));
  if (s.ok()) s = write_file(dir + "sweep.md", render_sweep_markdown(report));
  if (s.ok())
    s = write_file(dir + "sweep-throughput.svg",
                   svg_line_chart("Output throughput", "concurrent clients", "tokens/s", x, tput));
  if (s.ok())
    s = write_file(dir + "sweep-ttft.svg", svg_line_chart("Time to first token", "concurrent clients", "ms", x, ttft));
  if (s.ok())
    s = write_file(dir + "sweep-failures.svg",
                   svg_line_chart("Failed requests", "concurrent clients", "requests", x, fails));
  if (s.ok())
    s = write_file(dir + "sweep-e2e.svg", svg_line_chart("End-to-end latency", "concurrent clients", "ms", x, e2e));
  if (!s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "kr-bench: wrote %ssweep.json and %ssweep.md\n", dir.c_str(), dir.c_str());
  return all_ok ? 0 : 1;
}

}  // namespace kr::bench
