#include "bench/kr_bench/fifty.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bench/kr_bench/load_gen.h"
#include "bench/kr_bench/report_util.h"
#include "bench/kr_bench/run_info.h"
#include "bench/kr_bench/svg_chart.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

double pct_change(double value, double base) { return base != 0 ? (value - base) / base * 100.0 : NAN; }

// Runs one configuration; fills `cfg_json` and the samples for the charts.
bool run_config(const CommonOptions& opts, const ServerConfig& cfg, const std::vector<std::string>& questions,
                json& cfg_json, BoxGroup& e2e_box, BoxGroup& ttft_box) {
  cfg_json = config_json(cfg);
  Target target;
  std::fprintf(stderr, "[%s] starting the server\n", cfg.name.c_str());
  if (Status s = target.open(opts, cfg); !s.ok()) {
    std::fprintf(stderr, "[%s] %s\n", cfg.name.c_str(), s.to_string().c_str());
    cfg_json["error"] = s.to_string();
    return false;
  }
  cfg_json["served_model"] = target.model_name();
  cfg_json["server_version"] = target.server_version();
  const auto make = [&](int i) {
    ChatRequest r;
    r.model = target.model_name();
    r.prompt = questions[static_cast<size_t>(i) % questions.size()];
    r.max_tokens = opts.max_tokens;
    r.temperature = opts.temperature;
    r.seed = opts.seed + i;  // the same seed for question i in every configuration
    return r;
  };
  LoadOptions warm;
  warm.requests = opts.warmup_requests;
  warm.timeout_ms = opts.request_timeout_s * 1000;
  const LoadResult w = run_load(target.endpoint(), warm, make);
  for (const RequestResult& r : w.results)
    if (!r.ok) std::fprintf(stderr, "[%s] warm-up request failed: %s\n", cfg.name.c_str(), r.error.c_str());

  LoadOptions run;
  run.requests = static_cast<int>(questions.size());
  run.timeout_ms = opts.request_timeout_s * 1000;
  run.progress_label = cfg.name;
  const LoadResult res = run_load(target.endpoint(), run, make);
  target.close();

  std::vector<double> e2e, ttft, tps, tpot, itl;
  json rows = json::array();
  int64_t tokens = 0;
  int ok = 0;
  for (size_t i = 0; i < res.results.size(); ++i) {
    const RequestResult& r = res.results[i];
    rows.push_back(row_json(static_cast<int>(i), questions[i], r));
    if (!r.ok) continue;
    ++ok;
    tokens += r.output_tokens;
    e2e.push_back(r.e2e_ms);
    ttft.push_back(r.ttft_ms);
    tps.push_back(r.tokens_per_s());
    if (r.output_tokens > 1) tpot.push_back(r.tpot_ms());
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
  }
  const int n = static_cast<int>(res.results.size());
  cfg_json["requests"] = n;
  cfg_json["successes"] = ok;
  cfg_json["failures"] = n - ok;
  cfg_json["success_rate"] = n > 0 ? static_cast<double>(ok) / n : 0.0;
  cfg_json["total_time_s"] = res.duration_s;
  cfg_json["total_tokens"] = tokens;
  cfg_json["aggregate_throughput_tok_s"] = res.duration_s > 0 ? static_cast<double>(tokens) / res.duration_s : 0.0;
  cfg_json["response_time_ms"] = summary_json(e2e);
  cfg_json["ttft_ms"] = summary_json(ttft);
  cfg_json["throughput_tok_s"] = summary_json(tps);
  cfg_json["tpot_ms"] = summary_json(tpot);
  cfg_json["itl_ms"] = summary_json(itl);
  cfg_json["rows"] = std::move(rows);
  e2e_box = {cfg.name, e2e};
  ttft_box = {cfg.name, ttft};
  return ok == n;
}

}  // namespace

void add_fifty_overheads(json& configs) {
  const json* base = nullptr;
  for (const json& c : configs)
    if (!c.contains("error") && (base == nullptr || c["name"] == "baseline")) base = &c;
  if (base == nullptr) return;
  const json b = *base;
  for (json& c : configs) {
    if (c.contains("error")) continue;
    const double se = std::sqrt(std::pow(c["response_time_ms"]["std"].get<double>(), 2) /
                                    std::max(1.0, c["successes"].get<double>()) +
                                std::pow(b["response_time_ms"]["std"].get<double>(), 2) /
                                    std::max(1.0, b["successes"].get<double>()));
    const double d_mean = c["response_time_ms"]["mean"].get<double>() - b["response_time_ms"]["mean"].get<double>();
    c["overhead_vs_baseline"] = {
        {"reference", b["name"]},
        {"total_time_pct", pct_change(c["total_time_s"], b["total_time_s"])},
        {"total_time_s", c["total_time_s"].get<double>() - b["total_time_s"].get<double>()},
        {"mean_response_time_ms", d_mean},
        {"mean_response_time_pct", pct_change(c["response_time_ms"]["mean"], b["response_time_ms"]["mean"])},
        {"median_response_time_pct", pct_change(c["response_time_ms"]["median"], b["response_time_ms"]["median"])},
        {"p95_response_time_pct", pct_change(c["response_time_ms"]["p95"], b["response_time_ms"]["p95"])},
        {"ttft_mean_ms", c["ttft_ms"]["mean"].get<double>() - b["ttft_ms"]["mean"].get<double>()},
        {"ttft_mean_pct", pct_change(c["ttft_ms"]["mean"], b["ttft_ms"]["mean"])},
        {"tpot_mean_ms", c["tpot_ms"]["mean"].get<double>() - b["tpot_ms"]["mean"].get<double>()},
        {"throughput_mean_pct", pct_change(c["throughput_tok_s"]["mean"], b["throughput_tok_s"]["mean"])},
        // Two standard errors of the difference of means: smaller differences are noise.
        {"mean_response_time_noise_ms", 2 * se},
    };
  }
}

int run_fifty(const CommonOptions& opts, int num_questions) {
  StatusOr<std::vector<std::string>> all = load_questions(opts.questions_path);
  if (!all.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", all.status().to_string().c_str());
    return 2;
  }
  std::vector<std::string> questions = *all;
  if (num_questions > 0 && static_cast<size_t>(num_questions) < questions.size())
    questions.resize(static_cast<size_t>(num_questions));
  if (Status s = make_dirs(opts.out_dir); !s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  json report = run_meta_json(opts, "50-questions");
  report["parameters"]["questions"] = questions.size();
  report["parameters"]["questions_file"] = questions_source(opts.questions_path);
  report["configurations"] = json::array();
  std::vector<BoxGroup> e2e_boxes, ttft_boxes;
  bool all_ok = true;
  for (const ServerConfig& cfg : opts.configs) {
    json c;
    BoxGroup e2e, ttft;
    all_ok &= run_config(opts, cfg, questions, c, e2e, ttft);
    report["configurations"].push_back(std::move(c));
    e2e_boxes.push_back(std::move(e2e));
    ttft_boxes.push_back(std::move(ttft));
  }
  add_fifty_overheads(report["configurations"]);
  report["charts"] = {{"response_time", "50-questions-response-time.svg"}, {"ttft", "50-questions-ttft.svg"}};

  const std::string base = opts.out_dir + "/50-questions-comparison";
  Status s = write_file(base + ".json", report.dump(2));
  if (s.ok()) s = write_file(base + ".md", render_fifty_markdown(report));
  if (s.ok())
    s = write_file(opts.out_dir + "/50-questions-response-time.svg",
                   svg_box_plot("Response time per configuration", "ms", e2e_boxes));
  if (s.ok())
    s = write_file(opts.out_dir + "/50-questions-ttft.svg",
                   svg_box_plot("Time to first token per configuration", "ms", ttft_boxes));
  if (!s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "kr-bench: wrote %s.json and %s.md\n", base.c_str(), base.c_str());
  return all_ok ? 0 : 1;
}

}  // namespace kr::bench
