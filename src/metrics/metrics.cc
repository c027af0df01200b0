#include "metrics/metrics.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <utility>

#include "metrics/exposition.h"
#include "metrics/histogram.h"
#include "metrics/rate_window.h"
#include "metrics/sample_ring.h"

namespace kr {
namespace {

// Bucket bounds as vLLM defines them (vllm/v1/metrics/loggers.py).
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                          0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                          20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                         0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kRequestLatencyBuckets = {
    0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
    30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
const std::vector<double> kIterationTokenBuckets = {1,   8,    16,   32,   64,   128,  256,
                                                    512, 1024, 2048, 4096, 8192, 16384};
// Ours: a decode step of a small model is ~1 ms, a long prefill chunk ~1 s.
const std::vector<double> kStepBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
const std::vector<double> kSeqsPerStepBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
// A tiny model loads in tens of milliseconds, an 8B one from a cold disk in minutes.
const std::vector<double> kModelLoadBuckets = {0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0};

// Exact batch sizes kept for /stats; larger ones are counted at this size.
constexpr int32_t kMaxTrackedBatch = 1024;

// One counter per cache line: HTTP threads and the engine thread bump
// different counters, and should not share lines.
struct alignas(64) Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) { v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// The finish_reason label: vLLM calls a cancelled request "abort".
const char* reason_label(FinishReason r, bool vllm) {
  return vllm && r == FinishReason::kCancelled ? "abort" : finish_reason_name(r);
}

uint64_t non_negative(int32_t n) { return n > 0 ? static_cast<uint64_t>(n) : 0; }

}  // namespace

struct Metrics::Impl {
  Impl(const Clock* c, MetricsOptions o)
      : clock(c),
        options(std::move(o)),
        start_ns(c->now_ns()),
        ttft(kTtftBuckets),
        itl(kItlBuckets),
        e2e(kRequestLatencyBuckets),
        queue(kRequestLatencyBuckets),
        prefill(kRequestLatencyBuckets),
        decode(kRequestLatencyBuckets),
        prompt_tokens_hist(buckets_1_2_5(std::max(options.max_model_len, 1))),
        generation_tokens_hist(buckets_1_2_5(std::max(options.max_model_len, 1))),
        iteration_tokens(kIterationTokenBuckets),
        step_duration(kStepBuckets),
        seqs_per_step(kSeqsPerStepBuckets),
        model_load(kModelLoadBuckets),
        latency_ring(std::max(options.percentile_window, 1)),
        ttft_ring(std::max(options.percentile_window, 1)),
        batch_counts(std::make_unique<std::atomic<uint64_t>[]>(kMaxTrackedBatch + 1)) {
    for (int32_t i = 0; i <= kMaxTrackedBatch; ++i) batch_counts[i].store(0);
  }

  const Clock* clock;
  const MetricsOptions options;
  const int64_t start_ns;

  AtomicHistogram ttft, itl, e2e, queue, prefill, decode;
  AtomicHistogram prompt_tokens_hist, generation_tokens_hist, iteration_tokens;
  AtomicHistogram step_duration, seqs_per_step;
  AtomicHistogram model_load;

  Counter received, rejected, prompt_tokens, generation_tokens, preemptions, fast_path,
      auto_tune_adjustments;
  std::array<Counter, kNumFinishReasons> finished;  // by FinishReason
  Counter model_loads, model_load_failures, model_unloads_idle, model_unloads_evicted;
  std::atomic<bool> model_loaded{false};
  std::atomic<double> model_last_load_s{0};

  std::atomic<int32_t> running{0}, waiting{0}, swapped{0};
  std::atomic<double> kv_usage{0};

  // Scheduler state: each field is its own atomic; a scrape may mix two
  // consecutive publications, which is harmless for display.
  std::atomic<bool> scheduler_on{true}, auto_tune{false}, adaptive_window{false};
  std::atomic<double> window_ms{0}, ema_p99_ttft_ms{0}, ema_p99_itl_ms{0};
  std::atomic<int32_t> admissions_per_step{0};

  SampleRing latency_ring, ttft_ring;
  PerSecondCounter tokens_per_s, requests_per_s;
  std::unique_ptr<std::atomic<uint64_t>[]> batch_counts;  // [kMaxTrackedBatch + 1]

  SchedulerState scheduler_state() const {
    SchedulerState s;
    s.scheduler_on = scheduler_on.load(std::memory_order_relaxed);
    s.window_ms = window_ms.load(std::memory_order_relaxed);
    s.admissions_per_step = admissions_per_step.load(std::memory_order_relaxed);
    s.auto_tune = auto_tune.load(std::memory_order_relaxed);
    s.adaptive_window = adaptive_window.load(std::memory_order_relaxed);
    s.ema_p99_ttft_ms = ema_p99_ttft_ms.load(std::memory_order_relaxed);
    s.ema_p99_itl_ms = ema_p99_itl_ms.load(std::memory_order_relaxed);
    return s;
  }
};

Metrics::Metrics(const Clock* clock, MetricsOptions options)
    : impl_(std::make_unique<Impl>(clock, std::move(options))) {}

Metrics::~Metrics() = default;

void Metrics::record_arrival() { impl_->received.add(1); }

void Metrics::record_queue_time(double seconds) { impl_->queue.observe(seconds); }

void Metrics::record_first_token(double ttft_seconds) {
  impl_->ttft.observe(ttft_seconds);
  impl_->ttft_ring.add(ttft_seconds);
  impl_->tokens_per_s.add(impl_->clock->now_ns(), 1);
}

void Metrics::record_inter_token(double seconds) {
  impl_->itl.observe(seconds);
  impl_->tokens_per_s.add(impl_->clock->now_ns(), 1);
}

void Metrics::record_prefill_time(double seconds) { impl_->prefill.observe(seconds); }

void Metrics::record_decode_time(double seconds) { impl_->decode.observe(seconds); }

void Metrics::record_finished(FinishReason reason, double e2e_seconds, int32_t prompt_tokens,
                              int32_t generation_tokens) {
  Impl& m = *impl_;
  const int r = static_cast<int>(reason);
  m.finished[r >= 0 && r < kNumFinishReasons ? r : 0].add(1);
  m.e2e.observe(e2e_seconds);
  m.prompt_tokens.add(non_negative(prompt_tokens));
  m.generation_tokens.add(non_negative(generation_tokens));
  m.prompt_tokens_hist.observe(prompt_tokens);
  m.generation_tokens_hist.observe(generation_tokens);
  m.requests_per_s.add(m.clock->now_ns(), 1);
  if (reason == FinishReason::kStop || reason == FinishReason::kLength) {
    m.latency_ring.add(e2e_seconds);
  }
}

void Metrics::record_rejected() { impl_->rejected.add(1); }

void Metrics::record_step(int32_t num_seqs, int32_t num_tokens, double step_seconds) {
  Impl& m = *impl_;
  m.step_duration.observe(step_seconds);
  m.seqs_per_step.observe(num_seqs);
  m.iteration_tokens.observe(num_tokens);
  const int32_t b = std::clamp(num_seqs, 0, kMaxTrackedBatch);
  m.batch_counts[b].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::record_preemption() { impl_->preemptions.add(1); }
void Metrics::record_fast_path() { impl_->fast_path.add(1); }
void Metrics::record_auto_tune_adjustment() { impl_->auto_tune_adjustments.add(1); }

void Metrics::set_queue(int32_t running, int32_t waiting, int32_t swapped) {
  impl_->running.store(running, std::memory_order_relaxed);
  impl_->waiting.store(waiting, std::memory_order_relaxed);
  impl_->swapped.store(swapped, std::memory_order_relaxed);
}

void Metrics::set_kv_usage(double used_fraction) {
  impl_->kv_usage.store(used_fraction, std::memory_order_relaxed);
}

void Metrics::set_scheduler_state(const SchedulerState& s) {
  Impl& m = *impl_;
  m.scheduler_on.store(s.scheduler_on, std::memory_order_relaxed);
  m.window_ms.store(s.window_ms, std::memory_order_relaxed);
  m.admissions_per_step.store(s.admissions_per_step, std::memory_order_relaxed);
  m.auto_tune.store(s.auto_tune, std::memory_order_relaxed);
  m.adaptive_window.store(s.adaptive_window, std::memory_order_relaxed);
  m.ema_p99_ttft_ms.store(s.ema_p99_ttft_ms, std::memory_order_relaxed);
  m.ema_p99_itl_ms.store(s.ema_p99_itl_ms, std::memory_order_relaxed);
}

void Metrics::record_model_load(double seconds) {
  impl_->model_loads.add(1);
  impl_->model_load.observe(seconds);
  impl_->model_last_load_s.store(seconds, std::memory_order_relaxed);
}
void Metrics::record_model_load_failure() { impl_->model_load_failures.add(1); }
void Metrics::record_model_unload(bool evicted) {
  (evicted ? impl_->model_unloads_evicted : impl_->model_unloads_idle).add(1);
}
void Metrics::set_model_loaded(bool loaded) { impl_->model_loaded.store(loaded, std::memory_order_relaxed); }

StatsSnapshot Metrics::stats() const {
  const Impl& m = *impl_;
  StatsSnapshot s;
  const int64_t now_ns = m.clock->now_ns();
  s.uptime_s = static_cast<double>(now_ns - m.start_ns) / 1e9;

  std::vector<double> latencies = m.latency_ring.samples();
  const SampleSummary lat = summarize(latencies);
  s.latency_p50_s = lat.p50;
  s.latency_p95_s = lat.p95;
  s.latency_p99_s = lat.p99;
  s.latency_min_s = lat.min;
  s.latency_max_s = lat.max;
  s.latency_mean_s = lat.mean;
  std::vector<double> ttfts = m.ttft_ring.samples();
  const SampleSummary ttft = summarize(ttfts);
  s.ttft_p50_s = ttft.p50;
  s.ttft_p95_s = ttft.p95;
  s.ttft_p99_s = ttft.p99;

  auto rate = [&](const PerSecondCounter& c, int window_s) {
    return static_cast<double>(c.sum_last(now_ns, window_s)) /
           rate_span_s(m.start_ns, now_ns, window_s);
  };
  s.tokens_per_s_5s = rate(m.tokens_per_s, 5);
  s.tokens_per_s_30s = rate(m.tokens_per_s, 30);
  s.tokens_per_s_60s = rate(m.tokens_per_s, 60);
  s.requests_per_s_5s = rate(m.requests_per_s, 5);
  s.requests_per_s_30s = rate(m.requests_per_s, 30);
  s.requests_per_s_60s = rate(m.requests_per_s, 60);

  for (int32_t b = 0; b <= kMaxTrackedBatch; ++b) {
    const uint64_t n = m.batch_counts[b].load(std::memory_order_relaxed);
    if (n > 0) s.batch_size_counts[b] = n;
  }
  s.queue_depth = m.waiting.load(std::memory_order_relaxed);
  s.running = m.running.load(std::memory_order_relaxed);
  for (const Counter& c : m.finished) s.requests_finished += c.get();
  s.requests_failed = m.finished[static_cast<int>(FinishReason::kError)].get();
  s.prompt_tokens = m.prompt_tokens.get();
  s.generation_tokens = m.generation_tokens.get();
  s.scheduler = m.scheduler_state();
  return s;
}

namespace {

// Everything a scrape shows, read once so that the krserve_ and vllm: copies
// of a series agree.
struct ScrapeView {
  HistogramSnapshot ttft, itl, e2e, queue, prefill, decode, prompt_tokens_hist,
      generation_tokens_hist, iteration_tokens, step_duration, seqs_per_step, model_load;
  uint64_t model_loads = 0, model_load_failures = 0, model_unloads_idle = 0, model_unloads_evicted = 0;
  bool model_loaded = false;
  double model_last_load_s = 0;
  uint64_t received = 0, rejected = 0, prompt_tokens = 0, generation_tokens = 0, preemptions = 0,
           fast_path = 0, auto_tune_adjustments = 0;
  std::array<uint64_t, kNumFinishReasons> finished{};
  double running = 0, waiting = 0, swapped = 0, kv_usage = 0, uptime_s = 0;
  SchedulerState scheduler;
};

void write_families(ExpositionWriter& w, const ScrapeView& v, std::string_view model_name,
                    bool vllm) {
  const std::string prefix = vllm ? "vllm:" : "krserve_";
  const Label model_label[] = {{"model_name", model_name}};
  const std::span<const Label> labels(model_label);
  auto name = [&](std::string_view suffix) { return prefix + std::string(suffix); };
  auto gauge = [&](std::string_view suffix, std::string_view help, double value) {
    w.family(name(suffix), "gauge", help);
    w.sample(name(suffix), labels, value);
  };
  auto counter = [&](std::string_view suffix, std::string_view help, uint64_t value) {
    w.family(name(suffix), "counter", help);
    w.sample(name(suffix), labels, static_cast<double>(value));
  };
  auto histogram = [&](std::string_view suffix, std::string_view help, const HistogramSnapshot& h) {
    w.family(name(suffix), "histogram", help);
    w.histogram(name(suffix), labels, h);
  };

  // ---- series that vLLM also has ----
  gauge("num_requests_running", "Number of requests running on the engine.", v.running);
  gauge("num_requests_waiting", "Number of requests waiting to be scheduled.", v.waiting);
  gauge("num_requests_swapped", "Number of requests swapped out of the KV cache.", v.swapped);
  gauge("kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", v.kv_usage);
  if (vllm) {
    gauge("gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", v.kv_usage);
  }
  counter("prompt_tokens_total", "Number of prefill tokens processed.", v.prompt_tokens);
  counter("generation_tokens_total", "Number of generation tokens processed.", v.generation_tokens);
  w.family(name("request_success_total"), "counter",
           "Count of finished requests by finish reason.");
  for (int r = 0; r < kNumFinishReasons; ++r) {
    const auto reason = static_cast<FinishReason>(r);
    // "unknown" (kNone) only when something was recorded under it.
    if (reason == FinishReason::kNone && v.finished[r] == 0) continue;
    const Label reason_labels[] = {{"model_name", model_name},
                                   {"finished_reason", reason_label(reason, vllm)}};
    w.sample(name("request_success_total"), reason_labels, static_cast<double>(v.finished[r]));
  }
  counter("num_preemptions_total", "Cumulative number of preemptions from the engine.",
          v.preemptions);
  histogram("time_to_first_token_seconds", "Histogram of time to first token in seconds.", v.ttft);
  histogram("inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", v.itl);
  if (vllm) {
    // The older vLLM name for the same per-token gaps; older dashboards use it.
    histogram("time_per_output_token_seconds", "Histogram of time per output token in seconds.",
              v.itl);
  }
  histogram("e2e_request_latency_seconds", "Histogram of end-to-end request latency in seconds.",
            v.e2e);
  histogram("request_queue_time_seconds", "Histogram of time spent waiting before first scheduled.",
            v.queue);
  histogram("request_prefill_time_seconds",
            "Histogram of time from first scheduled to first token in seconds.", v.prefill);
  histogram("request_decode_time_seconds",
            "Histogram of time from first token to finish in seconds.", v.decode);
  histogram("request_prompt_tokens", "Number of prompt tokens per finished request.",
            v.prompt_tokens_hist);
  histogram("request_generation_tokens", "Number of generated tokens per finished request.",
            v.generation_tokens_hist);
  if (vllm) return;

  // ---- ours ----
  histogram("iteration_tokens", "Tokens processed per engine step.", v.iteration_tokens);
  histogram("step_duration_seconds", "Duration of one engine step in seconds.", v.step_duration);
  histogram("sequences_per_step", "Sequences in one engine step.", v.seqs_per_step);
  gauge("scheduler_enabled", "1 when the batching scheduler is on, 0 for one-at-a-time FIFO.",
        v.scheduler.scheduler_on ? 1 : 0);
  gauge("scheduler_window_ms", "Admission window of the scheduler in milliseconds.",
        v.scheduler.window_ms);
  gauge("scheduler_batch_size", "Admissions per step allowed by the scheduler.",
        v.scheduler.admissions_per_step);
  gauge("adaptive_window_enabled", "1 when the admission window adapts to load.",
        v.scheduler.adaptive_window ? 1 : 0);
  gauge("auto_tune_enabled", "1 when auto-tuning of window and batch size is on.",
        v.scheduler.auto_tune ? 1 : 0);
  gauge("auto_tune_ema_p99_ttft_ms", "Auto-tune's moving estimate of p99 TTFT in milliseconds.",
        v.scheduler.ema_p99_ttft_ms);
  gauge("auto_tune_ema_p99_itl_ms",
        "Auto-tune's moving estimate of p99 inter-token latency in milliseconds.",
        v.scheduler.ema_p99_itl_ms);
  counter("auto_tune_adjustments_total", "Adjustments made by auto-tune.", v.auto_tune_adjustments);
  counter("fast_path_total", "Requests served by the single-request fast path.", v.fast_path);
  counter("requests_received_total", "Requests accepted for scheduling.", v.received);
  counter("requests_rejected_total", "Requests refused at submit (queue full, bad input).",
          v.rejected);
  gauge("uptime_seconds", "Seconds since the metrics were created.", v.uptime_s);
  // ---- model lifecycle ----
  gauge("model_loaded", "1 while the model is loaded (weights, KV pool and engine), else 0.",
        v.model_loaded ? 1 : 0);
  counter("model_loads_total", "Loads of the model that succeeded.", v.model_loads);
  counter("model_load_failures_total", "Loads of the model that failed.", v.model_load_failures);
  w.family(name("model_unloads_total"), "counter",
           "Unloads of the model: idle past its TTL, or evicted to make room for another.");
  for (const auto& [reason, n] : {std::pair<const char*, uint64_t>{"idle", v.model_unloads_idle},
                                  std::pair<const char*, uint64_t>{"evicted", v.model_unloads_evicted}}) {
    const Label unload_labels[] = {{"model_name", model_name}, {"reason", reason}};
    w.sample(name("model_unloads_total"), unload_labels, static_cast<double>(n));
  }
  histogram("model_load_seconds", "Histogram of model load times (start to ready) in seconds.", v.model_load);
  gauge("model_last_load_seconds", "Seconds the last successful load of the model took.", v.model_last_load_s);
}

}  // namespace

std::string Metrics::render_prometheus() const {
  const Impl& m = *impl_;
  ScrapeView v;
  v.ttft = m.ttft.snapshot();
  v.itl = m.itl.snapshot();
  v.e2e = m.e2e.snapshot();
  v.queue = m.queue.snapshot();
  v.prefill = m.prefill.snapshot();
  v.decode = m.decode.snapshot();
  v.prompt_tokens_hist = m.prompt_tokens_hist.snapshot();
  v.generation_tokens_hist = m.generation_tokens_hist.snapshot();
  v.iteration_tokens = m.iteration_tokens.snapshot();
  v.step_duration = m.step_duration.snapshot();
  v.seqs_per_step = m.seqs_per_step.snapshot();
  v.model_load = m.model_load.snapshot();
  v.model_loads = m.model_loads.get();
  v.model_load_failures = m.model_load_failures.get();
  v.model_unloads_idle = m.model_unloads_idle.get();
  v.model_unloads_evicted = m.model_unloads_evicted.get();
  v.model_loaded = m.model_loaded.load(std::memory_order_relaxed);
  v.model_last_load_s = m.model_last_load_s.load(std::memory_order_relaxed);
  v.received = m.received.get();
  v.rejected = m.rejected.get();
  v.prompt_tokens = m.prompt_tokens.get();
  v.generation_tokens = m.generation_tokens.get();
  v.preemptions = m.preemptions.get();
  v.fast_path = m.fast_path.get();
  v.auto_tune_adjustments = m.auto_tune_adjustments.get();
  for (int r = 0; r < kNumFinishReasons; ++r) v.finished[r] = m.finished[r].get();
  v.running = m.running.load(std::memory_order_relaxed);
  v.waiting = m.waiting.load(std::memory_order_relaxed);
  v.swapped = m.swapped.load(std::memory_order_relaxed);
  v.kv_usage = m.kv_usage.load(std::memory_order_relaxed);
  v.uptime_s = static_cast<double>(m.clock->now_ns() - m.start_ns) / 1e9;
  v.scheduler = m.scheduler_state();

  std::string out;
  out.reserve(32 * 1024);
  ExpositionWriter w(&out);
  write_families(w, v, m.options.model_name, /*vllm=*/false);
  if (m.options.vllm_names) write_families(w, v, m.options.model_name, /*vllm=*/true);
  return out;
}

}  // namespace kr
