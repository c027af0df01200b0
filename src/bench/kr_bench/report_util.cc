#include "bench/kr_bench/report_util.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "base/build_info.h"
#include "bench/kr_bench/run_info.h"

namespace kr::bench {

using json = nlohmann::json;

json summary_json(const std::vector<double>& values) {
  const Summary s = summarize(values);
  return {{"count", s.count}, {"mean", s.mean}, {"median", s.median}, {"p50", s.p50}, {"p90", s.p90},
          {"p95", s.p95},     {"p99", s.p99},   {"std", s.std},       {"min", s.min}, {"max", s.max}};
}

json row_json(int index, const std::string& prompt, const RequestResult& r) {
  return {{"index", index},
          {"question", prompt},
          {"ok", r.ok},
          {"error", r.error},
          {"http_status", r.http_status},
          {"response_time_ms", r.e2e_ms},
          {"ttft_ms", r.ttft_ms},
          {"tpot_ms", r.tpot_ms()},
          {"itl_ms_mean", mean(r.itl_ms)},
          {"output_tokens", r.output_tokens},
          {"tokens_from_usage", r.tokens_from_usage},
          {"prompt_tokens", r.prompt_tokens},
          {"throughput_tok_s", r.tokens_per_s()},
          {"finish_reason", r.finish_reason},
          {"text", r.text}};
}

json run_meta_json(const CommonOptions& opts, const std::string& benchmark) {
  std::string gpu = opts.gpu;
  if (gpu.empty()) gpu = gpu_name();
  return {{"benchmark", benchmark},
          {"timestamp", utc_timestamp()},
          // The commit kr-bench was built from (stamped at build time), not the
          // checkout it happens to run in; each configuration also records the
          // server's own (server_version, from its /stats).
          {"commit", build_git_commit()},
          {"commit_dirty", build_git_dirty()},
          {"model", opts.model_dir},
          {"backend", opts.url.empty() ? opts.backend : "external"},
          {"gpu", gpu.empty() ? "none" : gpu},
          {"server_bin", opts.server_bin},
          {"url", opts.url},
          {"extra_server_args", opts.extra_server_args},
          {"parameters",
           {{"max_tokens", opts.max_tokens},
            {"temperature", opts.temperature},
            {"seed", opts.seed},
            {"ignore_eos", true},
            {"stream", true},
            {"warmup_requests", opts.warmup_requests}}}};
}

json config_json(const ServerConfig& cfg) {
  json env = json::object();
  for (const auto& [k, v] : cfg.env()) env[k] = v;
  return {{"name", cfg.name},
          {"gpu_scheduler", cfg.scheduler},
          {"auto_tune", cfg.auto_tune},
          {"metrics_export", cfg.metrics_export},
          {"env", env}};
}

std::string fmt(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string fmt_pct(double v) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.1f%%", v);
  return buf;
}

}  // namespace kr::bench
