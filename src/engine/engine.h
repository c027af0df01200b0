// Engine: the single submission point. One engine thread owns the ModelRunner
// (device + KV cache); every other thread talks to it only through submit()
// and cancel(), which never block on a step. Each step of the engine thread
// is schedule (Scheduler), run (ModelRunner::launch, then collect), postprocess
// (commit tokens, finish, publish events), then one EngineObserver call for
// metrics and auto-tune (engine/engine_observer.h). With
// EngineConfig::overlap_decode, a greedy decode step is launched before the
// step in flight is collected (engine.cc, Engine::Impl::step).
//
// Threading: submit, cancel, max_model_len and the num_* counters: any
// thread. start/stop: the owner thread. on_event callbacks run on the engine
// thread.
#pragma once

#include <memory>

#include "base/clock.h"
#include "base/status.h"
#include "engine/engine_config.h"
#include "engine/model_runner.h"
#include "engine/request.h"

namespace kr {

class Metrics;

class Engine {
 public:
  // runner, clock and metrics must outlive the engine.
  Engine(ModelRunner* runner, const EngineConfig& config, const Clock* clock, Metrics* metrics);
  ~Engine();  // stops the thread; unfinished requests get a kCancelled event

  void start();
  // Stop accepting; finish in-flight requests within `drain_timeout_s`, then cancel the rest.
  void stop(double drain_timeout_s);

  // Validates (context length -> kOutOfRange, queue full -> kResourceExhausted)
  // and enqueues. On error nothing was enqueued and no event will come.
  Status submit(GenerationRequest request);
  // Cancels at the next step boundary (its KV blocks are freed then); the
  // request gets a final event with FinishReason::kCancelled. Unknown ids: no-op.
  void cancel(RequestId id);

  // The context limit: min(runner's, EngineConfig::max_model_len when set). Requests
  // are admitted against it (check_context_length) and finish with kLength at it.
  int32_t max_model_len() const;
  // Counters read without locks, for /health, /stats and tests.
  int32_t num_running() const;
  int32_t num_waiting() const;
  int32_t num_free_blocks() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kr
