// EngineObserver: everything the engine reports, kept out of its control flow.
// The step fills a StepRecord as it goes (what was scheduled, how long the run
// took, the latency of each token it committed) and hands it over in one
// on_step() call; the observer turns it into metrics and into the auto-tuner's
// feedback, and applies the tuner's new window and admissions per step to the
// scheduler. Finishes, arrivals and gauges come in the same way.
//
// Threading: on_arrival/on_rejected: any thread (Metrics is lock-free).
// Everything else: the engine thread.
#pragma once

#include <cstdint>
#include <vector>

#include "base/request_types.h"
#include "engine/auto_tune.h"
#include "engine/engine_config.h"
#include "engine/scheduler.h"

namespace kr {

class Metrics;

// What one step did. Reused step after step (clear() keeps the capacity).
struct StepRecord {
  int64_t start_ns = 0;           // when scheduling began
  int64_t end_ns = 0;             // when the runner returned (0: nothing ran)
  bool ok = false;                // the runner succeeded
  bool fast_path = false;         // the scheduler's fast path started this step
  int32_t num_seqs = 0, num_tokens = 0, num_preempted = 0;
  std::vector<double> queue_s;    // sequences scheduled for the first time: arrival -> now
  std::vector<double> ttft_s;     // first tokens: arrival -> token
  std::vector<double> prefill_s;  // first tokens: first scheduled -> token
  std::vector<double> itl_s;      // later tokens: the gap since the sequence's previous token

  void clear();
  // Takes what the observer needs of the schedule before any of its sequences can finish.
  void scheduled(const SchedulerOutput& out);
};

class EngineObserver {
 public:
  // metrics may be null (nothing recorded); the scheduler must outlive the observer.
  EngineObserver(Metrics* metrics, const EngineConfig& config, Scheduler* sched);

  // Any thread.
  void on_arrival();
  void on_rejected();

  // Engine thread.
  void on_start();  // publishes the scheduler's settings
  void on_step(const StepRecord& step);
  // A request finished: decode_s < 0 when it produced no token.
  void on_finish(FinishReason reason, double e2e_s, double decode_s, int32_t prompt_tokens, int32_t output_tokens);
  void on_gauges(int32_t running, int32_t waiting, double kv_usage);

 private:
  void publish_scheduler_state();

  Metrics* metrics_;
  EngineConfig config_;
  Scheduler* sched_;
  AutoTuner tuner_;
  const bool tuning_;  // scheduler on and auto-tune or the adaptive window
};

}  // namespace kr
