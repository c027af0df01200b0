#include "engine/engine_observer.h"

#include "metrics/metrics.h"

namespace kr {

void StepRecord::clear() {
  start_ns = end_ns = 0;
  ok = fast_path = false;
  num_seqs = num_tokens = num_preempted = 0;
  queue_s.clear();
  ttft_s.clear();
  prefill_s.clear();
  itl_s.clear();
}

void StepRecord::scheduled(const SchedulerOutput& out) {
  num_seqs = static_cast<int32_t>(out.seqs.size());
  num_tokens = out.num_tokens;
  num_preempted = static_cast<int32_t>(out.preempted.size());
  for (const Sequence* s : out.admitted)
    if (s->num_preemptions == 0) queue_s.push_back(static_cast<double>(start_ns - s->arrival_ns()) * 1e-9);
}

EngineObserver::EngineObserver(Metrics* metrics, const EngineConfig& config, Scheduler* sched)
    : metrics_(metrics),
      config_(config),
      sched_(sched),
      tuner_(config.auto_tune, !config.auto_tune.enabled, config.window_ms, config.admissions_per_step),
      tuning_(config.scheduler_on && (config.auto_tune.enabled || config.adaptive_window)) {
  if (tuning_) {
    sched_->set_window_ms(tuner_.window_ms());
    sched_->set_admissions_per_step(tuner_.admissions_per_step());
  }
}

void EngineObserver::on_arrival() {
  if (metrics_) metrics_->record_arrival();
}

void EngineObserver::on_rejected() {
  if (metrics_) metrics_->record_rejected();
}

void EngineObserver::on_start() { publish_scheduler_state(); }

void EngineObserver::on_step(const StepRecord& r) {
  if (metrics_) {
    if (r.fast_path) metrics_->record_fast_path();
    for (int32_t i = 0; i < r.num_preempted; ++i) metrics_->record_preemption();
    for (double q : r.queue_s) metrics_->record_queue_time(q);
    if (r.ok) metrics_->record_step(r.num_seqs, r.num_tokens, static_cast<double>(r.end_ns - r.start_ns) * 1e-9);
    for (size_t i = 0; i < r.ttft_s.size(); ++i) {
      metrics_->record_first_token(r.ttft_s[i]);
      metrics_->record_prefill_time(r.prefill_s[i]);
    }
    for (double itl : r.itl_s) metrics_->record_inter_token(itl);
  }
  if (!tuning_) return;
  for (double t : r.ttft_s) tuner_.add_ttft_ms(t * 1e3);
  for (double t : r.itl_s) tuner_.add_itl_ms(t * 1e3);
  if (r.ok && tuner_.on_step(sched_->num_waiting())) {
    sched_->set_window_ms(tuner_.window_ms());
    sched_->set_admissions_per_step(tuner_.admissions_per_step());
    if (metrics_) metrics_->record_auto_tune_adjustment();
    publish_scheduler_state();
  }
}

void EngineObserver::on_finish(FinishReason reason, double e2e_s, double decode_s, int32_t prompt_tokens,
                               int32_t output_tokens) {
  if (!metrics_) return;
  if (decode_s >= 0) metrics_->record_decode_time(decode_s);
  metrics_->record_finished(reason, e2e_s, prompt_tokens, output_tokens);
}

void EngineObserver::on_gauges(int32_t running, int32_t waiting, double kv_usage) {
  if (!metrics_) return;
  metrics_->set_queue(running, waiting, 0);
  metrics_->set_kv_usage(kv_usage);
}

void EngineObserver::publish_scheduler_state() {
  if (!metrics_) return;
  SchedulerState st;
  st.scheduler_on = config_.scheduler_on;
  st.window_ms = sched_->window_ms();
  st.admissions_per_step = sched_->admissions_per_step();
  st.auto_tune = config_.auto_tune.enabled;
  st.adaptive_window = config_.adaptive_window;
  st.ema_p99_ttft_ms = tuner_.ema_ttft_ms();
  st.ema_p99_itl_ms = tuner_.ema_itl_ms();
  metrics_->set_scheduler_state(st);
}

}  // namespace kr
