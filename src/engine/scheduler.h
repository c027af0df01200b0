// Scheduler: decides, each step, which sequences run and how many tokens each
// feeds. Pure logic: no threads, time comes in as now_ns (tests use a fake clock).
//
// Order within a step (nano-vllm / vLLM style):
//  1. running decodes, one token each, best priority first; when KV blocks run
//     out, preempt by recompute the worst running sequence (highest priority
//     value, latest arrival) — possibly the one asking;
//  2. running prefills that are not done (chunked to the token budget);
//  3. admissions from the waiting queue: aged requests first, then by
//     priority (lower first), FIFO within a class; at most admissions_per_step per step,
//     max_num_seqs running, max_batched_tokens per step, and only when KV
//     blocks for the chunk are free.
// Batching window (idle engine only): see ready_in_ns().
// Scheduler off (baseline): one sequence at a time to completion, FIFO.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/engine_config.h"
#include "engine/kv_block_manager.h"
#include "engine/sequence.h"

namespace kr {

struct ScheduledSeq {
  Sequence* seq = nullptr;
  int32_t num_tokens = 0;  // tokens[num_computed, num_computed + num_tokens) fed this step
  bool sample = false;     // the chunk reaches the end of the sequence: sample a token
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
  Scheduler(const EngineConfig& config, KvBlockManager* blocks);

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

  // After the runner's step: advances num_computed of the scheduled sequences.
  void on_step_done(const SchedulerOutput& out);

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

  EngineConfig config_;
  KvBlockManager* blocks_;
  double window_ms_;
  int32_t admissions_per_step_;
  std::vector<Sequence*> running_;  // admission order
  std::vector<Sequence*> waiting_;  // unordered; sorted when admitting
  std::vector<Sequence*> order_;    // scratch of run_passes: running_, best priority first
  int64_t window_start_ns_ = -1;    // when the idle engine saw its first arrival
  bool fast_path_taken_ = false;
  int64_t step_ = 0;
};

// Worst-first order for preemption victims: higher priority value, then later arrival.
bool preempt_before(const Sequence* a, const Sequence* b);

}  // namespace kr
