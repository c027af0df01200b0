#include "bench/kr_bench/structured.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bench/bench_constraints.h"
#include "bench/kr_bench/load_gen.h"
#include "bench/kr_bench/report_util.h"
#include "bench/kr_bench/run_info.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct RoundResult {
  double tokens_per_s = 0;
  json ttft, itl, e2e;
  int failures = 0;
  int finished_early = 0;  // requests with fewer than max_tokens tokens
  std::vector<std::string> errors;
};

RoundResult run_round(const Target& target, const CommonOptions& opts, const StructuredOptions& so,
                      const std::vector<std::string>& prompts, const std::string& fields, const std::string& label,
                      int round) {
  LoadOptions lo;
  lo.concurrency = so.concurrency;
  lo.requests = so.requests > 0 ? so.requests : 2 * so.concurrency;
  lo.timeout_ms = opts.request_timeout_s * 1000;
  lo.progress_label = label;
  const auto make = [&](int i) {
    ChatRequest r;
    r.model = target.model_name();
    r.prompt = prompts[static_cast<size_t>(i) % prompts.size()];
    r.max_tokens = opts.max_tokens;
    r.temperature = opts.temperature;
    r.seed = opts.seed + round * 100000 + i;
    r.extra_json = fields;
    return r;
  };
  const LoadResult res = run_load(target.endpoint(), lo, make);
  RoundResult out;
  std::vector<double> ttft, itl, e2e;
  int64_t tokens = 0;
  for (const RequestResult& r : res.results) {
    if (!r.ok) {
      ++out.failures;
      if (out.errors.size() < 5) out.errors.push_back(r.error);
      continue;
    }
    tokens += r.output_tokens;
    out.finished_early += r.output_tokens < opts.max_tokens;
    ttft.push_back(r.ttft_ms);
    e2e.push_back(r.e2e_ms);
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
  }
  out.tokens_per_s = res.duration_s > 0 ? static_cast<double>(tokens) / res.duration_s : 0;
  out.ttft = summary_json(ttft);
  out.itl = summary_json(itl);
  out.e2e = summary_json(e2e);
  return out;
}

}  // namespace

StatusOr<std::string> structured_scenario_fields(const std::string& name) {
  if (name == "free") return std::string();
  if (name == "json_schema") {
    json f;
    f["response_format"] = {{"type", "json_schema"},
                            {"json_schema", {{"name", "order"}, {"strict", true}, {"schema", json::parse(kBenchOrderSchema)}}}};
    return f.dump();
  }
  if (name == "json_object") return std::string(R"({"response_format":{"type":"json_object"}})");
  if (name == "regex") {
    json f;
    f["guided_regex"] = kBenchRegex;
    return f.dump();
  }
  return InvalidArgument("unknown scenario '" + name + "' (free, json_schema, json_object, regex)");
}

int run_structured(const CommonOptions& opts, const StructuredOptions& so) {
  std::vector<std::string> fields;
  for (const std::string& s : so.scenarios) {
    auto f = structured_scenario_fields(s);
    if (!f.ok()) {
      std::fprintf(stderr, "kr-bench: %s\n", f.status().message().c_str());
      return 2;
    }
    fields.push_back(*f);
  }
  if (std::find(so.scenarios.begin(), so.scenarios.end(), "free") == so.scenarios.end()) {
    std::fprintf(stderr, "kr-bench: the scenarios must include 'free' (the baseline)\n");
    return 2;
  }
  StatusOr<std::vector<std::string>> prompts = load_questions(opts.questions_path);
  if (!prompts.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", prompts.status().to_string().c_str());
    return 2;
  }
  if (Status s = make_dirs(opts.out_dir); !s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  json report = run_meta_json(opts, "structured");
  report["parameters"]["concurrency"] = so.concurrency;
  report["parameters"]["requests_per_round"] = so.requests > 0 ? so.requests : 2 * so.concurrency;
  report["parameters"]["rounds"] = so.rounds;
  report["parameters"]["scenarios"] = so.scenarios;
  report["parameters"]["ignore_eos"] = true;
  ServerConfig cfg{"hybrid", true, false, false};
  Target target;
  if (Status s = target.open(opts, cfg); !s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  report["served_model"] = target.model_name();
  report["server_version"] = target.server_version();
  {  // warm-up: every scenario once (compiles and caches the grammars, records the step graphs)
    for (const std::string& f : fields) {
      LoadOptions warm;
      warm.requests = std::max(1, opts.warmup_requests);
      warm.concurrency = std::min(so.concurrency, warm.requests);
      warm.timeout_ms = opts.request_timeout_s * 1000;
      run_load(target.endpoint(), warm, [&](int i) {
        ChatRequest r;
        r.model = target.model_name();
        r.prompt = (*prompts)[static_cast<size_t>(i) % prompts->size()];
        r.max_tokens = opts.max_tokens;
        r.temperature = opts.temperature;
        r.extra_json = f;
        return r;
      });
    }
  }
  std::vector<std::vector<RoundResult>> rounds(so.scenarios.size());
  bool all_ok = true;
  for (int round = 0; round < so.rounds; ++round) {
    for (size_t k = 0; k < so.scenarios.size(); ++k) {
      const std::string label = so.scenarios[k] + " r" + std::to_string(round + 1);
      RoundResult r = run_round(target, opts, so, *prompts, fields[k], label, round);
      all_ok &= r.failures == 0;
      std::fprintf(stderr, "[%s] %.1f tok/s, TTFT p50 %.1f ms p99 %.1f ms, %d failed\n", label.c_str(), r.tokens_per_s,
                   r.ttft["p50"].get<double>(), r.ttft["p99"].get<double>(), r.failures);
      rounds[k].push_back(std::move(r));
    }
  }
  target.close();

  const size_t free_k = static_cast<size_t>(std::find(so.scenarios.begin(), so.scenarios.end(), "free") - so.scenarios.begin());
  auto tput = [&](size_t k) {
    std::vector<double> v;
    for (const RoundResult& r : rounds[k]) v.push_back(r.tokens_per_s);
    return median(v);
  };
  auto ttft_p = [&](size_t k, const char* p) {
    std::vector<double> v;
    for (const RoundResult& r : rounds[k]) v.push_back(r.ttft[p].get<double>());
    return median(v);
  };
  const double free_tput = tput(free_k), free_ttft = ttft_p(free_k, "p50");
  json scenarios = json::object();
  for (size_t k = 0; k < so.scenarios.size(); ++k) {
    json rs = json::array();
    for (const RoundResult& r : rounds[k])
      rs.push_back({{"output_throughput_tok_s", r.tokens_per_s}, {"ttft_ms", r.ttft}, {"itl_ms", r.itl},
                    {"e2e_ms", r.e2e}, {"failures", r.failures}, {"finished_early", r.finished_early},
                    {"errors", r.errors}});
    const double t = tput(k), ttft50 = ttft_p(k, "p50");
    scenarios[so.scenarios[k]] = {
        {"body_fields", fields[k].empty() ? json::object() : json::parse(fields[k])},
        {"output_throughput_tok_s", t},
        {"ttft_p50_ms", ttft50},
        {"ttft_p99_ms", ttft_p(k, "p99")},
        {"throughput_vs_free", free_tput > 0 ? t / free_tput : 0.0},
        {"ttft_vs_free", ttft50 > 0 ? free_ttft / ttft50 : 0.0},
        {"rounds", std::move(rs)}};
    std::printf("%-12s %10.1f tok/s (%5.1f%% of free)  TTFT p50 %8.1f ms (free/this %.2f)  p99 %8.1f ms\n",
                so.scenarios[k].c_str(), t, free_tput > 0 ? 100.0 * t / free_tput : 0.0, ttft50,
                ttft50 > 0 ? free_ttft / ttft50 : 0.0, ttft_p(k, "p99"));
  }
  report["scenarios"] = std::move(scenarios);
  const std::string path = opts.out_dir + "/structured.json";
  if (Status s = write_file(path, report.dump(2)); !s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "kr-bench: wrote %s\n", path.c_str());
  return all_ok ? 0 : 1;
}

}  // namespace kr::bench
