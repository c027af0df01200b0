// GCC 12 reports a false -Wrestrict inside std::string's operator+ when it inlines
// "literal" + std::string chains (GCC bug 105329); CI builds with -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include "bench/kr_bench/prefix_bench.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "bench/kr_bench/output_compare.h"
#include "bench/kr_bench/report_util.h"
#include "bench/kr_bench/run_info.h"
#include "bench/kr_bench/token_client.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

// Token ids from a seeded generator: the same prompts on every run and server.
struct TokenGen {
  TokenGen(uint64_t seed, const PrefixBenchOptions& p) : rng(seed), lo(p.token_lo), hi(p.token_hi) {}
  std::vector<int32_t> take(int n) {
    std::vector<int32_t> v(static_cast<size_t>(std::max(n, 0)));
    for (auto& t : v) t = lo + static_cast<int32_t>(rng() % static_cast<uint64_t>(hi - lo));
    return v;
  }
  int around(int n) {  // 90-110% of n
    const int spread = std::max(n / 10, 0);
    return n - spread + static_cast<int>(rng() % static_cast<uint64_t>(2 * spread + 1));
  }
  std::mt19937_64 rng;
  int32_t lo, hi;
};

ServerConfig cache_config(const std::string& which, const PrefixBenchOptions& p) {
  ServerConfig c;
  c.name = "cache-" + which;
  c.scheduler = true;
  c.extra_env = {{"KR_PREFIX_CACHING", which == "off" ? "off" : "on"}};
  if (which == "host") c.extra_env.emplace_back("KR_KV_OFFLOAD_GB", fmt(p.host_tier_gb, 4));
  return c;
}

json get_stats(const Endpoint& ep) {
  StatusOr<HttpResponse> r = http_get(ep, "/stats", 10'000);
  if (!r.ok() || r->status != 200) return json::object();
  json j = json::parse(r->body, nullptr, false);
  return j.is_object() ? j : json::object();
}

int64_t stat_int(const json& stats, const char* group, const char* key) {
  if (!stats.contains(group) || !stats[group].is_object()) return 0;
  const json& g = stats[group];
  return g.contains(key) && g[key].is_number() ? g[key].get<int64_t>() : 0;
}

json prefix_stats(const json& before, const json& after) {
  json d = json::object();
  for (const char* k : {"queried_tokens", "hit_tokens", "host_hit_tokens", "host_blocks_offloaded", "host_blocks_reloaded"})
    d[k] = stat_int(after, "prefix_cache", k) - stat_int(before, "prefix_cache", k);
  const double q = d["queried_tokens"].get<double>();
  d["hit_rate"] = q > 0 ? d["hit_tokens"].get<double>() / q : 0.0;
  return d;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Issue 14: with caching on, temperature-0 tokens equal those with caching off wherever the
// margin (top-1 minus top-2 logprob) exceeds this.
constexpr double kMarginThreshold = 0.15;

TokenCompletionResult send(const Target& t, const CommonOptions& opts, std::vector<int32_t> prompt, int max_tokens,
                           int top_logprobs = 0) {
  TokenCompletionRequest r;
  r.top_logprobs = top_logprobs;
  r.model = t.model_name();
  r.prompt_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  return run_token_completion(t.endpoint(), r, opts.request_timeout_s * 1000);
}

json result_row(const TokenCompletionResult& r, int64_t prompt_tokens, int64_t origin_ns) {
  return {{"ok", r.timing.ok},
          {"error", r.timing.error},
          {"prompt_tokens", prompt_tokens},
          {"cached_tokens", r.cached_tokens},
          {"output_tokens", r.timing.output_tokens},
          {"ttft_ms", r.timing.ttft_ms},
          {"e2e_ms", r.timing.e2e_ms},
          {"start_offset_ms", static_cast<double>(r.timing.start_ns - origin_ns) / 1e6}};
}

void warm_up(const Target& t, const CommonOptions& opts, const PrefixBenchOptions& p) {
  TokenGen g(static_cast<uint64_t>(opts.seed) ^ 0x5eed5eedull, p);
  for (int i = 0; i < opts.warmup_requests; ++i) send(t, opts, g.take(64), opts.max_tokens);
}

// Runs make(i) for i in [0, n) on `concurrency` threads; returns the results in order and the span.
std::vector<TokenCompletionResult> run_parallel(int n, int concurrency,
                                                const std::function<TokenCompletionResult(int)>& make,
                                                double* duration_s) {
  std::vector<TokenCompletionResult> out(static_cast<size_t>(std::max(n, 0)));
  std::atomic<int> next{0};
  const int64_t t0 = steady_now_ns();
  std::vector<std::thread> threads;
  for (int c = 0; c < std::max(1, std::min(concurrency, n)); ++c) {
    threads.emplace_back([&] {
      for (int i = next++; i < n; i = next++) out[static_cast<size_t>(i)] = make(i);
    });
  }
  for (auto& th : threads) th.join();
  *duration_s = static_cast<double>(steady_now_ns() - t0) / 1e9;
  return out;
}

std::vector<double> ttfts(const std::vector<TokenCompletionResult>& rs) {
  std::vector<double> v;
  for (const auto& r : rs)
    if (r.timing.ok) v.push_back(r.timing.ttft_ms);
  return v;
}

int failures(const std::vector<TokenCompletionResult>& rs) {
  int n = 0;
  for (const auto& r : rs) n += r.timing.ok ? 0 : 1;
  return n;
}

json comparison(const json& configs, const char* what, const std::function<double(const json&)>& value) {
  json c = json::object();
  const json* off = nullptr;
  for (const json& cfg : configs)
    if (cfg["name"] == "cache-off" && !cfg.contains("error")) off = &cfg;
  if (off == nullptr) return c;
  const double base = value(*off);
  for (const json& cfg : configs) {
    if (cfg["name"] == "cache-off" || cfg.contains("error")) continue;
    const double v = value(cfg);
    c[cfg["name"].get<std::string>()] = {{what, v}, {"cache_off", base}, {"ratio", base > 0 ? v / base : 0.0}};
  }
  return c;
}

Status write_report(const CommonOptions& opts, const std::string& name, const json& report, const std::string& md) {
  KR_RETURN_IF_ERROR(make_dirs(opts.out_dir));
  const std::string dir = opts.out_dir + "/";
  KR_RETURN_IF_ERROR(write_file(dir + name + ".json", report.dump(2)));
  KR_RETURN_IF_ERROR(write_file(dir + name + ".md", md));
  std::fprintf(stderr, "kr-bench: wrote %s%s.json and %s%s.md\n", dir.c_str(), name.c_str(), dir.c_str(), name.c_str());
  return Status::Ok();
}

json base_report(const CommonOptions& opts, const PrefixBenchOptions& p, const std::string& scenario) {
  json report = run_meta_json(opts, scenario);
  report["parameters"]["temperature"] = 0;
  report["parameters"]["caches"] = p.caches;
  report["parameters"]["host_tier_gb"] = p.host_tier_gb;
  report["parameters"]["prompt_token_range"] = {p.token_lo, p.token_hi};
  report["parameters"]["answer_tokens"] = opts.max_tokens;
  report["configurations"] = json::array();
  return report;
}

// ---- multiturn ----

// Runs one configuration; its answers (ids and margins) per (session, turn) go to `answers`.
bool multiturn_config(const CommonOptions& opts, const PrefixBenchOptions& p, const std::string& which, json& cfg,
                      SessionAnswers& answers) {
  const ServerConfig sc = cache_config(which, p);
  cfg = config_json(sc);
  Target target;
  if (Status s = target.open(opts, sc); !s.ok()) {
    std::fprintf(stderr, "[%s] %s\n", sc.name.c_str(), s.to_string().c_str());
    cfg["error"] = s.to_string();
    return false;
  }
  cfg["server_version"] = target.server_version();
  warm_up(target, opts, p);
  const json before = get_stats(target.endpoint());
  const std::vector<int32_t> system = TokenGen(static_cast<uint64_t>(opts.seed), p).take(p.system_tokens);

  struct Row {
    int session, turn;
    int64_t prompt_tokens;
    TokenCompletionResult r;
  };
  std::mutex mu;
  std::vector<Row> rows;
  const int64_t t0 = steady_now_ns();
  std::vector<std::thread> threads;
  for (int s = 0; s < p.sessions; ++s) {
    threads.emplace_back([&, s] {
      TokenGen g(static_cast<uint64_t>(opts.seed) * 1000003ull + static_cast<uint64_t>(s) + 1, p);
      std::vector<int32_t> history = system;
      for (int t = 0; t < p.turns; ++t) {
        const std::vector<int32_t> msg = g.take(g.around(p.user_tokens));
        history.insert(history.end(), msg.begin(), msg.end());
        TokenCompletionResult r = send(target, opts, history, opts.max_tokens, /*top_logprobs=*/2);
        const bool ok = r.timing.ok;
        std::vector<int32_t> answer = r.output_ids;
        {
          std::lock_guard<std::mutex> lock(mu);
          rows.push_back({s, t, static_cast<int64_t>(history.size()), std::move(r)});
        }
        if (!ok) break;
        history.insert(history.end(), answer.begin(), answer.end());  // the answer is history now
      }
    });
  }
  for (auto& th : threads) th.join();
  const double duration_s = static_cast<double>(steady_now_ns() - t0) / 1e9;
  const json after = get_stats(target.endpoint());
  target.close();

  json per_turn = json::array();
  int64_t out_tokens = 0, prompt_tokens = 0, cached = 0;
  int fails = 0;
  json raw = json::array();
  for (int t = 0; t < p.turns; ++t) {
    std::vector<double> ttft, e2e, hist, cached_t;
    int n = 0, f = 0;
    for (const Row& row : rows) {
      if (row.turn != t) continue;
      ++n;
      if (!row.r.timing.ok) {
        ++f;
        continue;
      }
      ttft.push_back(row.r.timing.ttft_ms);
      e2e.push_back(row.r.timing.e2e_ms);
      hist.push_back(static_cast<double>(row.prompt_tokens));
      cached_t.push_back(static_cast<double>(std::max<int64_t>(row.r.cached_tokens, 0)));
    }
    per_turn.push_back({{"turn", t},
                        {"requests", n},
                        {"failures", f},
                        {"prompt_tokens_mean", mean(hist)},
                        {"cached_tokens_mean", mean(cached_t)},
                        {"ttft_ms", summary_json(ttft)},
                        {"e2e_ms", summary_json(e2e)}});
  }
  for (const Row& row : rows) {
    if (row.r.timing.ok) answers[{row.session, row.turn}] = {row.r.output_ids, row.r.margins};
    json j = result_row(row.r, row.prompt_tokens, t0);
    j["session"] = row.session;
    j["turn"] = row.turn;
    raw.push_back(std::move(j));
    if (!row.r.timing.ok) {
      ++fails;
      continue;
    }
    out_tokens += row.r.timing.output_tokens;
    prompt_tokens += row.prompt_tokens;
    cached += std::max<int64_t>(row.r.cached_tokens, 0);
  }
  cfg["duration_s"] = duration_s;
  cfg["requests"] = static_cast<int>(rows.size());
  cfg["failures"] = fails;
  cfg["output_tokens"] = out_tokens;
  cfg["prompt_tokens"] = prompt_tokens;
  cfg["cached_tokens"] = cached;
  cfg["output_throughput_tok_s"] = duration_s > 0 ? static_cast<double>(out_tokens) / duration_s : 0.0;
  cfg["total_throughput_tok_s"] =
      duration_s > 0 ? static_cast<double>(out_tokens + prompt_tokens) / duration_s : 0.0;
  cfg["request_throughput_req_s"] =
      duration_s > 0 ? static_cast<double>(static_cast<int>(rows.size()) - fails) / duration_s : 0.0;
  cfg["per_turn"] = per_turn;
  cfg["prefix_cache"] = prefix_stats(before, after);
  cfg["rows"] = raw;
  std::fprintf(stderr, "[%s] %d requests in %.2f s: %.1f output tok/s, %lld of %lld prompt tokens cached, %d failed\n",
               sc.name.c_str(), static_cast<int>(rows.size()), duration_s, cfg["output_throughput_tok_s"].get<double>(),
               static_cast<long long>(cached), static_cast<long long>(prompt_tokens), fails);
  return fails == 0;
}

std::string multiturn_markdown(const json& r) {
  std::string md = "# kr-bench multiturn\n\n";
  const json& pa = r["parameters"];
  md += "Sessions " + pa["sessions"].dump() + " x turns " + pa["turns"].dump() + "; system prompt " +
        pa["system_tokens"].dump() + " tokens, user messages ~" + pa["user_tokens"].dump() + ", answers " +
        pa["answer_tokens"].dump() + " tokens. Backend " + r["backend"].get<std::string>() + ", GPU " +
        r["gpu"].get<std::string>() + ".\n\n";
  md += "| configuration | requests | failures | duration s | output tok/s | prompt+output tok/s | cached / prompt tokens |\n";
  md += "|---|---|---|---|---|---|---|\n";
  for (const json& c : r["configurations"]) {
    if (c.contains("error")) {
      md += "| " + c["name"].get<std::string>() + " | error: " + c["error"].get<std::string>() + " |||||| \n";
      continue;
    }
    md += "| " + c["name"].get<std::string>() + " | " + c["requests"].dump() + " | " + c["failures"].dump() + " | " +
          fmt(c["duration_s"].get<double>(), 2) + " | " + fmt(c["output_throughput_tok_s"].get<double>()) + " | " +
          fmt(c["total_throughput_tok_s"].get<double>()) + " | " + c["cached_tokens"].dump() + " / " +
          c["prompt_tokens"].dump() + " |\n";
  }
  md += "\nTTFT per turn (ms, p50 / p99):\n\n| turn | prompt tokens |";
  for (const json& c : r["configurations"])
    if (!c.contains("error")) md += " " + c["name"].get<std::string>() + " |";
  md += "\n|---|---|";
  for (const json& c : r["configurations"])
    if (!c.contains("error")) md += "---|";
  md += "\n";
  const int turns = pa["turns"].get<int>();
  for (int t = 0; t < turns; ++t) {
    std::string line = "| " + std::to_string(t) + " | ";
    bool first = true;
    for (const json& c : r["configurations"]) {
      if (c.contains("error")) continue;
      const json& pt = c["per_turn"][static_cast<size_t>(t)];
      if (first) line += fmt(pt["prompt_tokens_mean"].get<double>(), 0) + " |";
      first = false;
      line += " " + fmt(pt["ttft_ms"]["p50"].get<double>()) + " / " + fmt(pt["ttft_ms"]["p99"].get<double>()) + " |";
    }
    md += line + "\n";
  }
  if (r.contains("comparison") && !r["comparison"].empty())
    md += "\nAgainst cache-off: " + r["comparison"].dump() + "\n";
  if (r.contains("output_comparison")) {
    md += "\nTemperature-0 answers against cache-off (up to each session's first differing token; a divergence "
          "fails where cache-off's top-1 - top-2 logprob margin > " + fmt(kMarginThreshold, 2) + "):\n\n";
    md += "| configuration | sessions compared | identical | tokens compared | divergences > margin | <= margin |\n";
    md += "|---|---|---|---|---|---|\n";
    for (const auto& [name, c] : r["output_comparison"].items())
      md += "| " + name + " | " + c["sessions_compared"].dump() + " | " + c["sessions_identical"].dump() + " | " +
            c["tokens_compared"].dump() + " | " + c["divergences_above_margin"].dump() + " | " +
            c["divergences_at_or_below_margin"].dump() + " |\n";
  }
  return md;
}

// ---- shared-prefix ----

bool shared_prefix_config(const CommonOptions& opts, const PrefixBenchOptions& p, const std::string& which, json& cfg) {
  const ServerConfig sc = cache_config(which, p);
  cfg = config_json(sc);
  Target target;
  if (Status s = target.open(opts, sc); !s.ok()) {
    std::fprintf(stderr, "[%s] %s\n", sc.name.c_str(), s.to_string().c_str());
    cfg["error"] = s.to_string();
    return false;
  }
  cfg["server_version"] = target.server_version();
  warm_up(target, opts, p);
  const json before = get_stats(target.endpoint());
  const std::vector<int32_t> doc = TokenGen(static_cast<uint64_t>(opts.seed), p).take(p.document_tokens);
  int next_question = 0;
  auto question = [&](int i) {
    return TokenGen(static_cast<uint64_t>(opts.seed) + 7919ull * static_cast<uint64_t>(i + 1), p).take(p.question_tokens);
  };
  const int64_t t0 = steady_now_ns();
  bool ok = true;

  // Cold: the document is computed.
  const TokenCompletionResult cold = send(target, opts, concat(doc, question(next_question++)), opts.max_tokens);
  ok &= cold.timing.ok;
  cfg["cold"] = result_row(cold, p.document_tokens + p.question_tokens, t0);
  // Follow-ups alone: the TTFT of a question with the document as history, no other load.
  std::vector<TokenCompletionResult> alone;
  for (int i = 0; i < p.followups_alone; ++i)
    alone.push_back(send(target, opts, concat(doc, question(next_question++)), opts.max_tokens));
  ok &= failures(alone) == 0;
  json alone_rows = json::array();
  for (const auto& r : alone) alone_rows.push_back(result_row(r, p.document_tokens + p.question_tokens, t0));
  cfg["followups_alone"] = {{"ttft_ms", summary_json(ttfts(alone))}, {"rows", alone_rows}};
  // Concurrent follow-ups.
  double duration_s = 0;
  const int base = next_question;
  const auto conc = run_parallel(p.questions, p.concurrency, [&](int i) {
    return send(target, opts, concat(doc, question(base + i)), opts.max_tokens);
  }, &duration_s);
  next_question += p.questions;
  ok &= failures(conc) == 0;
  int64_t out_tokens = 0;
  json conc_rows = json::array();
  for (const auto& r : conc) {
    conc_rows.push_back(result_row(r, p.document_tokens + p.question_tokens, t0));
    if (r.timing.ok) out_tokens += r.timing.output_tokens;
  }
  cfg["concurrent"] = {{"concurrency", p.concurrency},
                       {"requests", p.questions},
                       {"failures", failures(conc)},
                       {"duration_s", duration_s},
                       {"output_throughput_tok_s", duration_s > 0 ? static_cast<double>(out_tokens) / duration_s : 0.0},
                       {"request_throughput_req_s",
                        duration_s > 0 ? static_cast<double>(p.questions - failures(conc)) / duration_s : 0.0},
                       {"ttft_ms", summary_json(ttfts(conc))},
                       {"rows", conc_rows}};

  // Host tier: push the document out of the GPU pool, then ask again.
  if (which == "host") {
    json cycles = json::array();
    for (int cycle = 0; cycle < p.host_cycles; ++cycle) {
      const json idle = get_stats(target.endpoint());
      const int64_t block_size = stat_int(idle, "prefix_cache", "kv_block_size");
      const int64_t block_bytes = stat_int(idle, "prefix_cache", "kv_block_bytes");
      const int64_t capacity = stat_int(idle, "engine", "free_kv_blocks") * block_size;
      const int filler = std::max(16, std::min(p.document_tokens, 4096));
      const int fills = static_cast<int>(std::ceil(1.25 * static_cast<double>(capacity) / filler));
      double fill_s = 0;
      const auto fill = run_parallel(fills, std::max(p.concurrency, 1), [&](int i) {
        TokenGen g(static_cast<uint64_t>(opts.seed) + 1000003ull * static_cast<uint64_t>(cycle + 1) + static_cast<uint64_t>(i), p);
        return send(target, opts, g.take(filler), 1);
      }, &fill_s);
      const json mid = get_stats(target.endpoint());
      const TokenCompletionResult host_hit = send(target, opts, concat(doc, question(next_question++)), opts.max_tokens);
      const json post = get_stats(target.endpoint());
      const TokenCompletionResult gpu_hit = send(target, opts, concat(doc, question(next_question++)), opts.max_tokens);
      ok &= host_hit.timing.ok && gpu_hit.timing.ok && failures(fill) == 0;
      const int64_t host_tokens = stat_int(post, "prefix_cache", "host_hit_tokens") - stat_int(mid, "prefix_cache", "host_hit_tokens");
      const double reload_bytes = block_size > 0 ? static_cast<double>(host_tokens) / static_cast<double>(block_size) *
                                                       static_cast<double>(block_bytes)
                                                 : 0.0;
      const double extra_ms = host_hit.timing.ttft_ms - gpu_hit.timing.ttft_ms;
      cycles.push_back({{"filler_requests", fills},
                        {"filler_tokens", static_cast<int64_t>(fills) * filler},
                        {"fill_s", fill_s},
                        {"gpu_capacity_tokens", capacity},
                        {"host_hit", result_row(host_hit, p.document_tokens + p.question_tokens, t0)},
                        {"gpu_hit", result_row(gpu_hit, p.document_tokens + p.question_tokens, t0)},
                        {"host_hit_tokens", host_tokens},
                        {"reload_bytes", reload_bytes},
                        {"ttft_host_minus_gpu_ms", extra_ms},
                        // A lower bound: all of the extra TTFT is charged to the copies.
                        {"effective_reload_gb_s", extra_ms > 0 ? reload_bytes / (extra_ms * 1e-3) / 1e9 : 0.0}});
      std::fprintf(stderr, "[%s] cycle %d: host hit %lld tokens, TTFT %.1f ms (GPU hit %.1f ms, cold %.1f ms)\n",
                   sc.name.c_str(), cycle, static_cast<long long>(host_tokens), host_hit.timing.ttft_ms,
                   gpu_hit.timing.ttft_ms, cold.timing.ttft_ms);
    }
    cfg["host_cycles"] = cycles;
  }
  const json after = get_stats(target.endpoint());
  target.close();
  cfg["prefix_cache"] = prefix_stats(before, after);
  std::fprintf(stderr, "[%s] cold TTFT %.1f ms, follow-up alone p50 %.1f ms, concurrent %.1f tok/s (TTFT p50 %.1f p99 %.1f)\n",
               sc.name.c_str(), cold.timing.ttft_ms, cfg["followups_alone"]["ttft_ms"]["p50"].get<double>(),
               cfg["concurrent"]["output_throughput_tok_s"].get<double>(), cfg["concurrent"]["ttft_ms"]["p50"].get<double>(),
               cfg["concurrent"]["ttft_ms"]["p99"].get<double>());
  return ok;
}

std::string shared_prefix_markdown(const json& r) {
  const json& pa = r["parameters"];
  std::string md = "# kr-bench shared-prefix\n\nDocument " + pa["document_tokens"].dump() + " tokens, questions " +
                   pa["question_tokens"].dump() + " tokens, answers " + pa["answer_tokens"].dump() + " tokens; " +
                   pa["questions"].dump() + " questions at concurrency " + pa["concurrency"].dump() + ". Backend " +
                   r["backend"].get<std::string>() + ", GPU " + r["gpu"].get<std::string>() + ".\n\n";
  md += "| configuration | cold TTFT ms | follow-up alone TTFT p50 ms | concurrent TTFT p50 / p99 ms | concurrent output tok/s | hit rate |\n";
  md += "|---|---|---|---|---|---|\n";
  for (const json& c : r["configurations"]) {
    if (c.contains("error")) {
      md += "| " + c["name"].get<std::string>() + " | error: " + c["error"].get<std::string>() + " ||||| \n";
      continue;
    }
    md += "| " + c["name"].get<std::string>() + " | " + fmt(c["cold"]["ttft_ms"].get<double>()) + " | " +
          fmt(c["followups_alone"]["ttft_ms"]["p50"].get<double>()) + " | " +
          fmt(c["concurrent"]["ttft_ms"]["p50"].get<double>()) + " / " +
          fmt(c["concurrent"]["ttft_ms"]["p99"].get<double>()) + " | " +
          fmt(c["concurrent"]["output_throughput_tok_s"].get<double>()) + " | " +
          fmt(c["prefix_cache"]["hit_rate"].get<double>(), 3) + " |\n";
    if (c.contains("host_cycles")) {
      for (const json& h : c["host_cycles"])
        md += "\nHost-tier hit: " + h["host_hit_tokens"].dump() + " tokens reloaded, TTFT " +
              fmt(h["host_hit"]["ttft_ms"].get<double>()) + " ms (GPU hit " + fmt(h["gpu_hit"]["ttft_ms"].get<double>()) +
              " ms, cold " + fmt(c["cold"]["ttft_ms"].get<double>()) + " ms), effective reload " +
              fmt(h["effective_reload_gb_s"].get<double>(), 2) + " GB/s.\n";
    }
  }
  if (r.contains("comparison") && !r["comparison"].empty())
    md += "\nAgainst cache-off: " + r["comparison"].dump() + "\n";
  return md;
}

}  // namespace

int run_multiturn(const CommonOptions& opts, const PrefixBenchOptions& p) {
  json report = base_report(opts, p, "multiturn");
  report["parameters"]["sessions"] = p.sessions;
  report["parameters"]["turns"] = p.turns;
  report["parameters"]["system_tokens"] = p.system_tokens;
  report["parameters"]["user_tokens"] = p.user_tokens;
  bool ok = true;
  std::map<std::string, SessionAnswers> answers;  // configuration name -> its answers
  for (const std::string& which : p.caches) {
    json cfg;
    ok &= multiturn_config(opts, p, which, cfg, answers["cache-" + which]);
    if (cfg.contains("error")) answers.erase("cache-" + which);
    report["configurations"].push_back(std::move(cfg));
  }
  report["comparison"] = comparison(report["configurations"], "output_throughput_tok_s",
                                    [](const json& c) { return c["output_throughput_tok_s"].get<double>(); });
  // Each configuration's answers against cache-off's, session by session (output_compare.h).
  if (const auto off = answers.find("cache-off"); off != answers.end()) {
    report["output_comparison"] = json::object();
    for (const auto& [name, a] : answers) {
      if (name == "cache-off") continue;
      json c = compare_outputs(off->second, a, p.sessions, p.turns, kMarginThreshold);
      ok &= c["pass"].get<bool>();
      std::printf("multiturn %s vs cache-off: %d sessions compared, %d identical, %lld tokens compared, "
                  "%d divergences above margin %.2f (must be 0), %d at or below: %s\n",
                  name.c_str(), c["sessions_compared"].get<int>(), c["sessions_identical"].get<int>(),
                  static_cast<long long>(c["tokens_compared"].get<int64_t>()), c["divergences_above_margin"].get<int>(),
                  kMarginThreshold, c["divergences_at_or_below_margin"].get<int>(),
                  c["pass"].get<bool>() ? "pass" : "FAIL");
      report["output_comparison"][name] = std::move(c);
    }
    std::fflush(stdout);
  }
  if (Status s = write_report(opts, "multiturn", report, multiturn_markdown(report)); !s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  return ok ? 0 : 1;
}

int run_shared_prefix(const CommonOptions& opts, const PrefixBenchOptions& p) {
  json report = base_report(opts, p, "shared-prefix");
  report["parameters"]["document_tokens"] = p.document_tokens;
  report["parameters"]["question_tokens"] = p.question_tokens;
  report["parameters"]["questions"] = p.questions;
  report["parameters"]["concurrency"] = p.concurrency;
  report["parameters"]["followups_alone"] = p.followups_alone;
  report["parameters"]["host_cycles"] = p.host_cycles;
  bool ok = true;
  for (const std::string& which : p.caches) {
    json cfg;
    ok &= shared_prefix_config(opts, p, which, cfg);
    report["configurations"].push_back(std::move(cfg));
  }
  report["comparison"] = comparison(report["configurations"], "followup_alone_ttft_p50_ms",
                                    [](const json& c) { return c["followups_alone"]["ttft_ms"]["p50"].get<double>(); });
  if (Status s = write_report(opts, "shared-prefix", report, shared_prefix_markdown(report)); !s.ok()) {
    std::fprintf(stderr, "kr-bench: %s\n", s.to_string().c_str());
    return 1;
  }
  return ok ? 0 : 1;
}

}  // namespace kr::bench
