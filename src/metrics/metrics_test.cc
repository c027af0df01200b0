// Tests of Metrics as a whole: concurrent recording, /stats summaries, rate
// windows on a fake clock, and the Prometheus text parsed back (and checked by
// promtool when it is installed).
#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace kr {
namespace {

// ---- a small parser for the text format, strict enough to catch mistakes ----

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped, in order
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> type;  // family -> type
  std::set<std::string> help;
  std::vector<Sample> samples;
  std::vector<std::string> errors;
};

bool valid_name(const std::string& s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
                    (allow_colon && c == ':') || (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  return true;
}

std::string key_of(const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& labels,
                   const std::string& skip_label = "") {
  std::string k = name + "{";
  for (const auto& [n, v] : labels) {
    if (n == skip_label) continue;
    k += n + "=" + v + ",";
  }
  return k + "}";
}

// The family a sample belongs to, or "" when none is declared.
std::string family_of(const Parsed& p, const std::string& name) {
  if (p.type.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = p.type.find(base);
      if (it != p.type.end() && it->second == "histogram") return base;
    }
  }
  return "";
}

Parsed parse_exposition(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line, current_family;
  std::set<std::string> finished_families;
  auto error = [&](const std::string& e) { p.errors.push_back(e + " in: " + line); };
  if (text.empty() || text.back() != '\n') p.errors.push_back("text must end with a newline");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      const size_t sp = rest.find(' ');
      if (sp == std::string::npos) { error("no text after name"); continue; }
      const std::string name = rest.substr(0, sp);
      if (!valid_name(name, true)) error("bad metric name");
      if (line[2] == 'H') {
        if (!p.help.insert(name).second) error("second HELP");
      } else {
        const std::string type = rest.substr(sp + 1);
        if (type != "counter" && type != "gauge" && type != "histogram") error("bad type");
        if (p.type.count(name)) error("second TYPE");
        if (finished_families.count(name)) error("TYPE after samples");
        p.type[name] = type;
      }
      continue;
    }
    if (line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!valid_name(s.name, true)) error("bad sample name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          error("bad label");
          break;
        }
        std::string lname = line.substr(i, eq - i), value;
        if (!valid_name(lname, false)) error("bad label name");
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        s.labels.emplace_back(lname, value);
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') { error("no value"); continue; }
    const std::string value = line.substr(i + 1);
    char* end = nullptr;
    s.value = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') error("bad value");
    const std::string family = family_of(p, s.name);
    if (family.empty()) error("sample without TYPE");
    if (!p.help.count(family)) error("sample without HELP");
    if (family != current_family) {
      if (finished_families.count(family)) error("family not contiguous");
      finished_families.insert(current_family);
      current_family = family;
    }
    p.samples.push_back(std::move(s));
  }
  // Histograms: per label set, le ascending, counts cumulative, +Inf == _count.
  struct Series { std::vector<std::pair<double, double>> buckets; double count = -1; bool sum = false; };
  std::map<std::string, Series> series;
  for (const Sample& s : p.samples) {
    const std::string family = family_of(p, s.name);
    if (family.empty() || p.type[family] != "histogram") continue;
    const std::string suffix = s.name.substr(family.size());
    Series& h = series[key_of(family, s.labels, "le")];
    if (suffix == "_bucket") {
      std::string le;
      for (const auto& [n, v] : s.labels) if (n == "le") le = v;
      if (le.empty()) p.errors.push_back(s.name + " bucket without le");
      h.buckets.emplace_back(std::strtod(le.c_str(), nullptr), s.value);
    } else if (suffix == "_count") {
      h.count = s.value;
    } else if (suffix == "_sum") {
      h.sum = true;
    } else {
      p.errors.push_back(s.name + ": plain sample in a histogram");
    }
  }
  for (const auto& [k, h] : series) {
    if (h.buckets.empty() || !std::isinf(h.buckets.back().first)) p.errors.push_back(k + ": no +Inf");
    for (size_t i = 1; i < h.buckets.size(); ++i) {
      if (!(h.buckets[i - 1].first < h.buckets[i].first)) p.errors.push_back(k + ": le not ascending");
      if (h.buckets[i - 1].second > h.buckets[i].second) p.errors.push_back(k + ": not cumulative");
    }
    if (!h.buckets.empty() && h.buckets.back().second != h.count) p.errors.push_back(k + ": +Inf != _count");
    if (!h.sum) p.errors.push_back(k + ": no _sum");
  }
  return p;
}

// Value of one series, labels in the order they are written; NaN when absent.
double value_of(const Parsed& p, const std::string& name,
                const std::vector<std::pair<std::string, std::string>>& labels) {
  for (const Sample& s : p.samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nan("");
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// ---- tests ----

TEST(Metrics, ConcurrentRecordingIsExactAndScrapesStayValid) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.model_name = "m"});
  constexpr int kThreads = 4, kPerThread = 1'000'000;
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0}, bad_scrapes{0};
  std::thread scraper([&] {
    while (!done.load()) {
      const Parsed p = parse_exposition(m.render_prometheus());
      if (!p.errors.empty()) bad_scrapes.fetch_add(1);
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&m] {
      for (int i = 0; i < kPerThread; ++i) {
        switch (i % 4) {
          case 0: m.record_inter_token(0.02); break;
          case 1: m.record_step(i % 8 + 1, 16, 0.001); break;
          case 2: m.record_arrival(); break;
          default: m.record_finished(FinishReason::kStop, 0.5, 10, 5); break;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  done.store(true);
  scraper.join();
  EXPECT_GT(scrapes.load(), 0);
  EXPECT_EQ(bad_scrapes.load(), 0);

  constexpr uint64_t kEach = kThreads * kPerThread / 4;
  const StatsSnapshot s = m.stats();
  EXPECT_EQ(s.requests_finished, kEach);
  EXPECT_EQ(s.prompt_tokens, 10 * kEach);
  EXPECT_EQ(s.generation_tokens, 5 * kEach);
  uint64_t steps = 0;
  for (const auto& [size, n] : s.batch_size_counts) {
    EXPECT_TRUE(size % 2 == 0) << size;  // i % 4 == 1 -> i % 8 in {1, 5} -> sizes 2 and 6
    steps += n;
  }
  EXPECT_EQ(steps, kEach);
  EXPECT_EQ(s.batch_size_counts.at(2), kEach / 2);
  // Tokens counted by the inter-token records; the fake clock never moved.
  EXPECT_DOUBLE_EQ(s.tokens_per_s_60s, static_cast<double>(kEach));

  const Parsed p = parse_exposition(m.render_prometheus());
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  const Labels model = {{"model_name", "m"}};
  EXPECT_EQ(value_of(p, "krserve_inter_token_latency_seconds_count", model), kEach);
  EXPECT_NEAR(value_of(p, "krserve_inter_token_latency_seconds_sum", model), 0.02 * kEach, 1e-3);
  EXPECT_EQ(value_of(p, "krserve_requests_received_total", model), kEach);
  EXPECT_EQ(value_of(p, "krserve_step_duration_seconds_count", model), kEach);
  EXPECT_EQ(value_of(p, "krserve_request_success_total",
                     {{"model_name", "m"}, {"finished_reason", "stop"}}),
            kEach);
  EXPECT_EQ(value_of(p, "krserve_prompt_tokens_total", model), 10 * kEach);
}

TEST(Metrics, StatsPercentilesAndCounts) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{});
  for (int i = 1; i <= 100; ++i) {
    // Reverse order: the ring must not depend on arrival order.
    m.record_finished(i % 2 ? FinishReason::kStop : FinishReason::kLength, 101 - i, 3, 4);
    m.record_first_token((101 - i) / 1000.0);
  }
  m.record_finished(FinishReason::kCancelled, 1000, 3, 1);  // not in the latency percentiles
  m.record_finished(FinishReason::kError, 2000, 3, 0);
  m.set_queue(/*running=*/7, /*waiting=*/9, /*swapped=*/0);
  m.set_scheduler_state(SchedulerState{.window_ms = 2.5, .batch_size = 16, .auto_tune = true,
                                       .ema_p99_ttft_ms = 80});
  clock.advance_ms(2500);

  const StatsSnapshot s = m.stats();
  EXPECT_DOUBLE_EQ(s.uptime_s, 2.5);
  EXPECT_DOUBLE_EQ(s.latency_min_s, 1);
  EXPECT_DOUBLE_EQ(s.latency_max_s, 100);
  EXPECT_DOUBLE_EQ(s.latency_mean_s, 50.5);
  EXPECT_NEAR(s.latency_p50_s, 50.5, 1e-9);
  EXPECT_NEAR(s.latency_p95_s, 95.05, 1e-9);
  EXPECT_NEAR(s.latency_p99_s, 99.01, 1e-9);
  EXPECT_NEAR(s.ttft_p50_s, 0.0505, 1e-12);
  EXPECT_NEAR(s.ttft_p99_s, 0.09901, 1e-12);
  EXPECT_EQ(s.requests_finished, 102u);
  EXPECT_EQ(s.requests_failed, 1u);
  EXPECT_EQ(s.prompt_tokens, 306u);
  EXPECT_EQ(s.generation_tokens, 401u);
  EXPECT_EQ(s.running, 7);
  EXPECT_EQ(s.queue_depth, 9);
  EXPECT_DOUBLE_EQ(s.scheduler.window_ms, 2.5);
  EXPECT_EQ(s.scheduler.batch_size, 16);
  EXPECT_TRUE(s.scheduler.auto_tune);
  EXPECT_DOUBLE_EQ(s.scheduler.ema_p99_ttft_ms, 80);
}

TEST(Metrics, PercentileWindowKeepsOnlyRecentRequests) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.percentile_window = 10});
  for (int i = 1; i <= 20; ++i) m.record_finished(FinishReason::kStop, i, 1, 1);
  const StatsSnapshot s = m.stats();
  EXPECT_DOUBLE_EQ(s.latency_min_s, 11);
  EXPECT_DOUBLE_EQ(s.latency_max_s, 20);
  EXPECT_EQ(s.requests_finished, 20u);
}

TEST(Metrics, RateWindowsOnAFakeClock) {
  FakeClock clock;  // starts at exactly 1 s
  Metrics m(&clock, MetricsOptions{});
  // One burst per second at x.5 s: 100 generated tokens and 2 finished requests.
  auto burst = [&] {
    m.record_first_token(0.01);
    for (int i = 0; i < 99; ++i) m.record_inter_token(0.01);
    m.record_finished(FinishReason::kStop, 1, 1, 50);
    m.record_finished(FinishReason::kLength, 1, 1, 50);
  };
  clock.advance_ms(500);
  burst();
  StatsSnapshot s = m.stats();
  EXPECT_DOUBLE_EQ(s.tokens_per_s_5s, 100.0);  // 0.5 s of uptime counts as 1 s
  for (int k = 1; k < 60; ++k) {
    clock.advance_ms(1000);
    burst();
  }
  // Now 60.5 s on the clock, 59.5 s of uptime, bursts at 1.5 .. 60.5.
  s = m.stats();
  EXPECT_NEAR(s.tokens_per_s_5s, 500 / 4.5, 1e-9);     // seconds 56..60.5
  EXPECT_NEAR(s.tokens_per_s_30s, 3000 / 29.5, 1e-9);  // seconds 31..60.5
  EXPECT_NEAR(s.tokens_per_s_60s, 6000 / 59.5, 1e-9);  // since start
  EXPECT_NEAR(s.requests_per_s_5s, 10 / 4.5, 1e-9);
  EXPECT_NEAR(s.requests_per_s_30s, 60 / 29.5, 1e-9);
  EXPECT_NEAR(s.requests_per_s_60s, 120 / 59.5, 1e-9);
  clock.advance_ms(10'000);  // 10 quiet seconds
  s = m.stats();
  EXPECT_DOUBLE_EQ(s.tokens_per_s_5s, 0);
  EXPECT_NEAR(s.tokens_per_s_30s, 2000 / 29.5, 1e-9);  // bursts at 41.5 .. 60.5
  clock.advance_ms(100'000);  // long idle: slots hold old seconds, none counted
  s = m.stats();
  EXPECT_DOUBLE_EQ(s.tokens_per_s_60s, 0);
  EXPECT_DOUBLE_EQ(s.requests_per_s_60s, 0);
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
  m.set_queue(2, 5, 0);
  m.set_kv_usage(0.25);
  m.set_scheduler_state(SchedulerState{.window_ms = 1.5, .batch_size = 8, .auto_tune = true,
                                       .ema_p99_ttft_ms = 90, .ema_p99_itl_ms = 20});
  clock.advance_ms(3000);
}

const char* const kFamilies[] = {
    "num_requests_running", "num_requests_waiting", "num_requests_swapped",
    "kv_cache_usage_perc", "prompt_tokens_total", "generation_tokens_total",
    "request_success_total", "num_preemptions_total", "time_to_first_token_seconds",
    "inter_token_latency_seconds", "e2e_request_latency_seconds", "request_queue_time_seconds",
    "request_prefill_time_seconds", "request_decode_time_seconds", "request_prompt_tokens",
    "request_generation_tokens"};

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
  for (const char* f : {"krserve_step_duration_seconds", "krserve_sequences_per_step",
                        "krserve_scheduler_window_ms", "krserve_scheduler_batch_size",
                        "krserve_auto_tune_enabled", "krserve_auto_tune_ema_p99_ttft_ms",
                        "krserve_auto_tune_ema_p99_itl_ms", "krserve_auto_tune_adjustments_total",
                        "krserve_fast_path_total", "krserve_requests_rejected_total",
                        "krserve_uptime_seconds"}) {
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
  EXPECT_EQ(value_of(p, "krserve_request_success_total",
                     {model[0], {"finished_reason", "cancelled"}}),
            1);
  EXPECT_EQ(value_of(p, "krserve_request_success_total", {model[0], {"finished_reason", "error"}}),
            0);
  EXPECT_EQ(value_of(p, "krserve_requests_rejected_total", model), 1);
  EXPECT_EQ(value_of(p, "krserve_scheduler_window_ms", model), 1.5);
  EXPECT_EQ(value_of(p, "krserve_auto_tune_enabled", model), 1);
  EXPECT_EQ(value_of(p, "krserve_uptime_seconds", model), 3);
  // vLLM's TTFT bounds: 0.05 falls in le="0.06" but not le="0.04".
  EXPECT_EQ(value_of(p, "krserve_time_to_first_token_seconds_bucket", {model[0], {"le", "0.04"}}),
            0);
  EXPECT_EQ(value_of(p, "krserve_time_to_first_token_seconds_bucket", {model[0], {"le", "0.06"}}),
            1);
  EXPECT_EQ(value_of(p, "krserve_time_to_first_token_seconds_bucket",
                     {model[0], {"le", "2560.0"}}),
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
  EXPECT_EQ(value_of(p, "vllm:request_success_total", {{"model_name", "m"}, {"finished_reason", "abort"}}),
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
  if (std::system("command -v promtool > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.model_name = "tiny-llama3", .vllm_names = vllm_names});
  record_some(m, clock);
  const std::string path = testing::TempDir() + "krserve_metrics_" +
                           std::to_string(vllm_names) + ".prom";
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
