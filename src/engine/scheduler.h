// Scheduler: decides, each step, which sequences run and how many tokens each
// feeds. Pure logic: no threads, time comes in as now_ns (tests use a fake clock).
//
// Order within a step (nano-vllm / vLLM style):
//  1. running decodes, one token each, best priority first; when KV blocks run
//     out, preempt by recompute the worst running sequence (highest priority
//     value, latest arrival) — possibly the one asking;
//  2. running prefills that are not done (chunked to the token budget), except
//     those of a worse priority than a waiting request: they yield and come
//     after the admissions (a background long prompt yields to urgent short ones);
//  3. admissions from the waiting queue: aged requests first, then by
//     priority (lower first), FIFO within a class; at most admissions_per_step per step,
//     max_num_seqs running, max_batched_tokens per step, and only when KV
//     blocks for the chunk are free. With prefix caching (engine/prefix_cache.h)
//     a new sequence starts after its longest cached prefix, and only the
//     uncached tokens count against the budget; one whose next block a running
//     sequence is computing waits for it (others may pass it).
// Time budget (EngineConfig::max_step_ms, with the runner's StepCostModel): in a
// step that runs decodes, prefill chunks are cut so that the step's estimated time
// (engine/step_cost.h: attention pairs and K/V reads included, so a chunk deep in
// a long context is short) stays under max_step_ms. The first chunk of such a step
// gets at least a quarter of max_step_ms (and one token) whatever the decodes
// cost, so prefills always progress. Steps without decodes use the token budget only.
// Batching window (idle engine only): see ready_in_ns().
// Scheduler off (baseline): one sequence at a time to completion, FIFO.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "engine/engine_config.h"
#include "engine/kv_block_manager.h"
#include "engine/prefix_cache.h"
#include "engine/sequence.h"
#include "engine/step_cost.h"

namespace kr {

struct ScheduledSeq {
  Sequence* seq = nullptr;
  int32_t num_tokens = 0;  // tokens[num_computed, num_computed + num_tokens) fed this step
  bool sample = false;     // the chunk reaches the end of the sequence: sample a token
  // Overlapped decode (Scheduler::schedule_continuation): the one token is the one the
  // step before samples, fed on the device; that step is in flight (not done) when this
  // one is planned and launched, so the position is num_computed + 1 then.
  bool fed = false;
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;
  std::vector<Sequence*> preempted;   // preempted during this call (back in waiting)
  std::vector<Sequence*> admitted;    // moved from waiting to running this call
  int32_t num_tokens = 0;
  bool empty() const { return seqs.empty(); }
  void clear() {
    seqs.clear();
    preempted.clear();
    admitted.clear();
    num_tokens = 0;
  }
};

class Scheduler {
 public:
  // cache: prefix caching over `blocks`, or null (off). Both must outlive the scheduler.
  Scheduler(const EngineConfig& config, KvBlockManager* blocks, PrefixCache* cache = nullptr);

  // A new sequence; it must outlive its time in the scheduler.
  void add(Sequence* seq);
  // Removes a sequence wherever it is (finished, cancelled, failed) and frees its blocks.
  void remove(Sequence* seq);

  // 0: schedule now. > 0: the batching window is open; call again after this
  // many ns or when a new request arrives. -1: nothing to do.
  // Sets fast_path_taken() when the fast path decided.
  int64_t ready_in_ns(int64_t now_ns);
  bool fast_path_taken() const { return fast_path_taken_; }

  // Fills `out` (cleared first; the caller reuses it step after step).
  void schedule(int64_t now_ns, SchedulerOutput* out);

  // Overlapped decode: plans the step after `prev` (scheduled, launched, its tokens not
  // yet known): the same sequences in the same order, one token each (the one prev
  // samples for it, `fed` on the device), one position further, with the KV block
  // for it. Every running sequence must be in prev as a sampling single-token decode,
  // nothing may wait, prev must have preempted nothing, each sequence must pass
  // `may_continue` (the engine: it can be fed and does not surely finish at prev),
  // and the blocks must be free (no preemption here). Otherwise false, nothing changed.
  bool schedule_continuation(const SchedulerOutput& prev, const std::function<bool(const Sequence&)>& may_continue,
                             SchedulerOutput* next);

  // After the runner's step: advances num_computed of the scheduled sequences (not of
  // those that finished meanwhile).
  void on_step_done(const SchedulerOutput& out);

  // The runner's step cost model (ModelRunner::step_cost_model); unknown: no time budget.
  void set_cost_model(const StepCostModel& m) { budget_.set_model(m); }
  // The last scheduled step took measured_ms: corrects the cost model
  // (StepBudget::observe) when the step waited for the device (`waited`: it
  // sampled a token); a step that did not is only logged.
  void on_step_timed(double measured_ms, bool waited = true);
  const StepBudget& step_budget() const { return budget_; }
  // The last schedule()'s estimated step time, unscaled (0 with no cost model).
  double last_estimate_ms() const { return budget_.known() ? step_estimate_ms_ : 0.0; }

  void set_window_ms(double ms) { window_ms_ = ms; }
  void set_admissions_per_step(int32_t n) { admissions_per_step_ = n; }
  double window_ms() const { return window_ms_; }
  int32_t admissions_per_step() const { return admissions_per_step_; }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  const std::vector<Sequence*>& running() const { return running_; }
  const std::vector<Sequence*>& waiting() const { return waiting_; }

 private:
  bool aged(const Sequence* s, int64_t now_ns) const;
  // Waiting order: aged first, then (priority, arrival, id).
  bool before(const Sequence* a, const Sequence* b, int64_t now_ns) const;
  void preempt(Sequence* s, SchedulerOutput* out);
  void run_passes(int64_t now_ns, SchedulerOutput* out);
  Sequence* worst_unscheduled_running() const;
  // The chunk of `want` tokens at `context` that the step's time budget allows, in
  // a step that has `step_tokens` tokens so far.
  int32_t time_fit(int32_t context, int32_t want, int32_t step_tokens);
  enum class Admit { kOk, kNoBlocks, kWait };
  // Blocks for a waiting sequence's first chunk (after its cached prefix); *n: the chunk.
  Admit admit_blocks(Sequence* s, int32_t budget, int32_t* n);

  EngineConfig config_;
  KvBlockManager* blocks_;
  PrefixCache* cache_;
  double window_ms_;
  int32_t admissions_per_step_;
  std::vector<Sequence*> running_;  // admission order
  std::vector<Sequence*> waiting_;  // unordered; sorted when admitting
  std::vector<Sequence*> order_;    // scratch of run_passes: running_, best priority first
  std::vector<Sequence*> yielded_;  // scratch of run_passes: prefills that yield to waiting requests
  int64_t window_start_ns_ = -1;    // when the idle engine saw its first arrival
  bool fast_path_taken_ = false;
  int64_t step_ = 0;
  StepBudget budget_;
  // Per schedule(): the estimate so far (unscaled ms); whether the time budget
  // binds (a decode is scheduled); whether a multi-token chunk was given; whether
  // a decode is scheduled (the step is "mixed" for the budget's correction).
  double step_estimate_ms_ = 0.0;
  int32_t step_tokens_ = 0;  // tokens of the last schedule() (for the debug log)
  bool time_bound_ = false;
  bool step_has_chunk_ = false;
  bool step_has_decode_ = false;
};

// Worst-first order for preemption victims: higher priority value, then later arrival.
bool preempt_before(const Sequence* a, const Sequence* b);

}  // namespace kr
