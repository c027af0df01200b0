// Metrics: recorded lock-free on the hot path (engine thread and HTTP threads),
// rendered only when scraped (/metrics, /stats).
//
// Threading: record_* methods: any thread, lock-free (atomics / per-thread
// shards), never allocate. render_prometheus() and stats(): any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/request_types.h"

namespace kr {

// Scheduler and auto-tune state, published by the engine thread.
struct SchedulerState {
  bool scheduler_on = true;
  double window_ms = 0;
  int32_t admissions_per_step = 0;  // exported as scheduler_batch_size (the seed's name)
  bool auto_tune = false;
  bool adaptive_window = false;
  double ema_p99_ttft_ms = 0;
  double ema_p99_itl_ms = 0;
};

// A point-in-time summary for /stats (the server turns it into JSON).
struct StatsSnapshot {
  double uptime_s = 0;
  // End-to-end latency over finished requests (seconds).
  double latency_p50_s = 0, latency_p95_s = 0, latency_p99_s = 0;
  double latency_min_s = 0, latency_max_s = 0, latency_mean_s = 0;
  double ttft_p50_s = 0, ttft_p95_s = 0, ttft_p99_s = 0;
  // Rates over the last 5, 30 and 60 seconds.
  double tokens_per_s_5s = 0, tokens_per_s_30s = 0, tokens_per_s_60s = 0;
  double requests_per_s_5s = 0, requests_per_s_30s = 0, requests_per_s_60s = 0;
  std::map<int32_t, uint64_t> batch_size_counts;  // sequences per step -> steps
  int32_t queue_depth = 0, running = 0;
  uint64_t requests_finished = 0, requests_failed = 0;
  uint64_t prompt_tokens = 0, generation_tokens = 0;
  SchedulerState scheduler;
};

struct MetricsOptions {
  std::string model_name = "model";
  // Also export the series vLLM has under vLLM's names (vllm:..., cancelled as
  // finished_reason="abort", ITL also as vllm:time_per_output_token_seconds,
  // KV usage also as vllm:gpu_cache_usage_perc) so vLLM dashboards work.
  bool vllm_names = false;
  // Top of the request_prompt_tokens / request_generation_tokens buckets
  // (1-2-5 series up to this, as vLLM does with max_model_len).
  int32_t max_model_len = 131072;
  // Finished requests kept for the /stats percentiles.
  int32_t percentile_window = 1024;
};

// What feeds what (beyond the obvious histogram per record_* call):
// - tokens/s windows count generated tokens as they are produced: one per
//   record_first_token and one per record_inter_token call.
// - requests/s windows and request_success_total count record_finished calls
//   of every reason; prompt_tokens_total / generation_tokens_total are added at
//   record_finished (so they include cancelled requests' work).
// - The latency percentiles use only requests finished with kStop or kLength;
//   TTFT percentiles use every record_first_token.
// - requests_failed in StatsSnapshot counts kError finishes; requests_finished
//   counts all finishes.
class Metrics {
 public:
  Metrics(const Clock* clock, MetricsOptions options);
  ~Metrics();

  // ---- requests ----
  void record_arrival();
  void record_queue_time(double seconds);  // arrival -> first scheduled
  void record_first_token(double ttft_seconds);
  void record_inter_token(double seconds);   // gap between consecutive tokens of a request
  void record_prefill_time(double seconds);  // first scheduled -> first token
  void record_decode_time(double seconds);   // first token -> finish
  void record_finished(FinishReason reason, double e2e_seconds, int32_t prompt_tokens,
                       int32_t generation_tokens);
  void record_rejected();  // refused at submit (queue full, bad input)
  // ---- steps (engine thread) ----
  void record_step(int32_t num_seqs, int32_t num_tokens, double step_seconds);
  void record_preemption();
  void record_fast_path();
  void record_auto_tune_adjustment();
  // ---- gauges (engine thread) ----
  void set_queue(int32_t running, int32_t waiting, int32_t swapped);
  void set_kv_usage(double used_fraction);
  void set_scheduler_state(const SchedulerState& state);
  // ---- model lifecycle (the server's model registry, loader thread) ----
  void record_model_load(double seconds);  // a load that succeeded, start to ready
  void record_model_load_failure();
  void record_model_unload(bool evicted);  // evicted: to make room; else idle past its TTL
  void set_model_loaded(bool loaded);

  // Prometheus text exposition format 0.0.4, names prefixed krserve_; serve it
  // with Content-Type kPrometheusContentType.
  static constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
  std::string render_prometheus() const;
  StatsSnapshot stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kr
