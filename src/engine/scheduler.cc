#include "engine/scheduler.h"

#include <algorithm>
#include <limits>

#include "base/check.h"
#include "base/log.h"

namespace kr {

bool preempt_before(const Sequence* a, const Sequence* b) {
  if (a->priority() != b->priority()) return a->priority() > b->priority();
  if (a->arrival_ns() != b->arrival_ns()) return a->arrival_ns() > b->arrival_ns();
  return a->id() > b->id();
}

Scheduler::Scheduler(const EngineConfig& config, KvBlockManager* blocks, PrefixCache* cache)
    : config_(config), blocks_(blocks), cache_(cache), window_ms_(config.window_ms), admissions_per_step_(config.admissions_per_step) {}

void Scheduler::add(Sequence* seq) {
  seq->state = SeqState::kWaiting;
  waiting_.push_back(seq);
}

void Scheduler::remove(Sequence* seq) {
  auto drop = [seq](std::vector<Sequence*>& v) {
    auto it = std::find(v.begin(), v.end(), seq);
    if (it != v.end()) v.erase(it);
  };
  drop(running_);
  drop(waiting_);
  if (cache_ != nullptr) cache_->release(seq);
  blocks_->free(&seq->block_table);
  seq->state = SeqState::kFinished;
}

bool Scheduler::aged(const Sequence* s, int64_t now_ns) const {
  if (!config_.scheduler_on || s->priority() <= kPriorityDefault) return false;
  return static_cast<double>(now_ns - s->arrival_ns()) >= config_.background_max_wait_s * 1e9;
}

bool Scheduler::before(const Sequence* a, const Sequence* b, int64_t now_ns) const {
  if (config_.scheduler_on) {
    const bool aa = aged(a, now_ns), ab = aged(b, now_ns);
    if (aa != ab) return aa;
    if (!aa && a->priority() != b->priority()) return a->priority() < b->priority();
  }
  if (a->arrival_ns() != b->arrival_ns()) return a->arrival_ns() < b->arrival_ns();
  return a->id() < b->id();
}

int64_t Scheduler::ready_in_ns(int64_t now_ns) {
  fast_path_taken_ = false;
  if (!running_.empty()) return 0;  // busy: the running step is the window
  if (waiting_.empty()) {
    window_start_ns_ = -1;
    return -1;
  }
  if (!config_.scheduler_on) return 0;
  auto go = [this] {
    window_start_ns_ = -1;
    return int64_t{0};
  };
  for (const Sequence* s : waiting_) {
    if (s->priority() <= kPriorityUrgent) return go();  // urgent ends the window
  }
  if (config_.fast_path && waiting_.size() == 1) {
    fast_path_taken_ = true;
    return go();
  }
  if (static_cast<int32_t>(waiting_.size()) >= admissions_per_step_) return go();  // the window is full
  if (window_start_ns_ < 0) window_start_ns_ = now_ns;
  const int64_t window_ns = static_cast<int64_t>(window_ms_ * 1e6);
  const int64_t elapsed_ns = now_ns - window_start_ns_;
  if (elapsed_ns >= window_ns) return go();
  return window_ns - elapsed_ns;
}

Sequence* Scheduler::worst_unscheduled_running() const {
  Sequence* worst = nullptr;
  for (Sequence* s : running_) {
    if (s->scheduled_in_step == step_) continue;
    if (worst == nullptr || preempt_before(s, worst)) worst = s;
  }
  return worst;
}

void Scheduler::preempt(Sequence* s, SchedulerOutput* out) {
  if (cache_ != nullptr) cache_->release(s);
  blocks_->free(&s->block_table);
  s->num_computed = 0;  // recompute prompt + generated tokens when re-admitted
  s->state = SeqState::kPreempted;
  ++s->num_preemptions;
  running_.erase(std::find(running_.begin(), running_.end(), s));
  waiting_.push_back(s);
  out->preempted.push_back(s);
}

void Scheduler::schedule(int64_t now_ns, SchedulerOutput* out) {
  out->clear();
  ++step_;
  run_passes(now_ns, out);
  // Running prefills that cannot grow and no decode to run would stall for
  // ever: free the worst one's blocks and try again (each round removes one).
  while (out->empty() && !running_.empty()) {
    Sequence* victim = worst_unscheduled_running();
    KR_CHECK(victim != nullptr);
    preempt(victim, out);
    run_passes(now_ns, out);
  }
  step_tokens_ = out->num_tokens;
}

int32_t Scheduler::time_fit(int32_t context, int32_t want, int32_t step_tokens) {
  if (!time_bound_ || want <= 0) return want;
  const double limit = config_.max_step_ms / budget_.scale(/*mixed=*/true);  // unscaled ms
  double left = limit - step_estimate_ms_;
  // The first chunk of the step always gets a quarter of the budget (and a token).
  if (!step_has_chunk_) left = std::max(left, limit / 4);
  int32_t n = budget_.max_tokens(context, want, left);
  // A chunk the time cut: shortened so that the step's tokens end on a multiple of
  // step_token_align, unless that leaves less than one multiple. A matmul shape
  // the device has not run yet costs its first step milliseconds of launch on the
  // H200 (cuBLAS picking and loading kernels: median +1.5 ms, up to 54 ms), so the
  // shapes of mixed steps come from a small set that the runner warms up at load.
  const int32_t align = std::max(1, config_.step_token_align);
  if (n < want && align > 1) {
    const int32_t aligned = (step_tokens + n) / align * align - step_tokens;
    if (aligned >= align) n = aligned;
  }
  if (!step_has_chunk_) n = std::max<int32_t>(n, 1);
  return n;
}

void Scheduler::run_passes(int64_t now_ns, SchedulerOutput* out) {
  const int32_t max_seqs = config_.scheduler_on ? config_.max_num_seqs : 1;
  const int32_t max_admit = config_.scheduler_on ? admissions_per_step_ : 1;
  int32_t budget = config_.max_batched_tokens - out->num_tokens;
  // The step's estimate from what an earlier round of this schedule() emitted.
  step_estimate_ms_ = budget_.fixed_ms();
  step_has_chunk_ = false;
  step_has_decode_ = false;
  for (const ScheduledSeq& ss : out->seqs) {
    step_estimate_ms_ += budget_.chunk_ms(ss.seq->num_computed, ss.num_tokens);
    step_has_chunk_ |= ss.num_tokens > 1;
    step_has_decode_ |= ss.num_tokens == 1 && ss.seq->num_output_tokens() > 0;
  }
  const bool timed = config_.scheduler_on && config_.max_step_ms > 0 && budget_.known();
  time_bound_ = timed && step_has_decode_;
  auto emit = [&](Sequence* s, int32_t n) {
    s->scheduled_in_step = step_;
    step_estimate_ms_ += budget_.chunk_ms(s->num_computed, n);
    step_has_chunk_ |= n > 1;
    out->seqs.push_back({s, n, n == s->num_uncomputed()});
    out->num_tokens += n;
    budget -= n;
  };

  // Best priority first, so that preemption victims come from the tail.
  std::vector<Sequence*>& order = order_;
  order.assign(running_.begin(), running_.end());
  if (order.size() > 1)
    std::sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) { return preempt_before(b, a); });

  // 1. Decodes: one token each.
  for (Sequence* s : order) {
    if (budget < 1) break;
    if (s->state != SeqState::kRunning || s->scheduled_in_step == step_ || s->num_uncomputed() != 1) continue;
    while (!blocks_->can_allocate(s->block_table, s->num_computed + 1)) {
      Sequence* victim = worst_unscheduled_running();
      preempt(victim, out);
      if (victim == s) break;
    }
    if (s->state != SeqState::kRunning) continue;
    KR_CHECK(blocks_->allocate(&s->block_table, s->num_computed + 1));
    emit(s, 1);
    step_has_decode_ |= s->num_output_tokens() > 0;
    time_bound_ = timed && step_has_decode_;
  }
  // 2. Prefills already running: the next chunk, as far as budget, time and blocks
  // allow. One of a worse priority than a waiting request that could be admitted
  // yields: it comes after the admissions (2b).
  const bool can_admit = out->preempted.empty() && static_cast<int32_t>(running_.size()) < max_seqs;
  int32_t best_waiting = std::numeric_limits<int32_t>::max();
  if (config_.scheduler_on && can_admit)
    for (const Sequence* w : waiting_) best_waiting = std::min(best_waiting, w->priority());
  auto feed_prefill = [&](Sequence* s) {
    const int64_t fit = blocks_->tokens_that_fit(s->block_table, s->num_computed);
    const int32_t want = static_cast<int32_t>(std::min<int64_t>({s->num_uncomputed(), budget, fit}));
    const int32_t n = time_fit(s->num_computed, want, out->num_tokens);
    if (n < 1) return;
    KR_CHECK(blocks_->allocate(&s->block_table, s->num_computed + n));
    emit(s, n);
  };
  std::vector<Sequence*>& yielded = yielded_;
  yielded.clear();
  for (Sequence* s : order) {
    if (budget < 1) break;
    if (s->state != SeqState::kRunning || s->scheduled_in_step == step_ || s->num_uncomputed() < 2) continue;
    if (s->priority() > best_waiting) {
      yielded.push_back(s);
      continue;
    }
    feed_prefill(s);
  }
  auto run_yielded = [&] {
    for (Sequence* s : yielded) {
      if (budget < 1) break;
      if (s->state == SeqState::kRunning && s->scheduled_in_step != step_) feed_prefill(s);
    }
  };
  // 3. Admissions. None in a step that had to preempt: memory is short.
  if (!out->preempted.empty() || waiting_.empty()) {
    run_yielded();
    return;
  }
  std::sort(waiting_.begin(), waiting_.end(),
            [&](const Sequence* a, const Sequence* b) { return before(a, b, now_ns); });
  int32_t admitted = 0;
  size_t i = 0;
  while (i < waiting_.size() && admitted < max_admit && budget >= 1 &&
         static_cast<int32_t>(running_.size()) < max_seqs) {
    Sequence* s = waiting_[i];
    int32_t n = 0;
    const Admit a = admit_blocks(s, budget, &n);
    if (a == Admit::kWait) {  // a running sequence is computing its next block
      ++i;
      continue;
    }
    // Strict order: the head waits for blocks (or the next step's time) rather than being overtaken.
    if (a == Admit::kNoBlocks) break;
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
    s->state = SeqState::kRunning;
    if (s->first_scheduled_ns == 0) s->first_scheduled_ns = now_ns;
    running_.push_back(s);
    out->admitted.push_back(s);
    ++admitted;
    emit(s, n);
  }
  // 2b. The prefills that yielded, with what is left.
  run_yielded();
}

void Scheduler::on_step_timed(double measured_ms, bool waited) {
  if (!step_has_chunk_) return;
  // KR_LOG_LEVEL=debug: the budget's estimate against the measurement, step by step.
  KR_LOG(kDebug, "step %lld chunk: %d tokens, estimate %.3f ms x scale %.3f = %.3f ms, measured %.3f ms, decodes %s%s",
         static_cast<long long>(step_), step_tokens_, step_estimate_ms_, budget_.scale(step_has_decode_),
         step_estimate_ms_ * budget_.scale(step_has_decode_), measured_ms, step_has_decode_ ? "yes" : "no",
         waited ? "" : " (no wait: not counted)");
  if (waited) budget_.observe(step_estimate_ms_, measured_ms, step_has_decode_);
}

Scheduler::Admit Scheduler::admit_blocks(Sequence* s, int32_t budget, int32_t* n) {
  // The chunk: what the token budget and the step's time budget allow (kNoBlocks
  // when no time is left: the head waits for the next step).
  if (cache_ == nullptr) {
    *n = time_fit(s->num_computed, std::min(s->num_uncomputed(), budget), config_.max_batched_tokens - budget);
    if (*n < 1) return Admit::kNoBlocks;
    return blocks_->allocate(&s->block_table, s->num_computed + *n) ? Admit::kOk : Admit::kNoBlocks;
  }
  const PrefixMatch m = cache_->match(s);
  if (m.wait) return Admit::kWait;
  const int32_t cached = m.blocks() * blocks_->block_size();
  *n = time_fit(cached, std::min(s->num_tokens() - cached, budget),  // only uncached tokens
                config_.max_batched_tokens - budget);
  if (*n < 1) return Admit::kNoBlocks;
  return cache_->admit(s, m, *n) ? Admit::kOk : Admit::kNoBlocks;
}

bool Scheduler::schedule_continuation(const SchedulerOutput& prev,
                                      const std::function<bool(const Sequence&)>& may_continue,
                                      SchedulerOutput* next) {
  if (prev.empty() || !waiting_.empty() || !prev.preempted.empty() || prev.seqs.size() != running_.size()) return false;
  int32_t blocks_needed = 0;
  for (const ScheduledSeq& ss : prev.seqs) {
    const Sequence* s = ss.seq;
    if (ss.num_tokens != 1 || !ss.sample || s->state != SeqState::kRunning || !may_continue(*s)) return false;
    // prev feeds the last token, tokens[num_computed] (prev is not done; a fed prev's
    // token was appended when the step before it was done); next feeds the one after.
    if (s->num_tokens() != s->num_computed + 1) return false;
    blocks_needed += blocks_->blocks_needed(s->block_table, s->num_computed + 2);
  }
  if (blocks_needed > blocks_->num_free_blocks()) return false;
  next->clear();
  ++step_;
  for (const ScheduledSeq& ss : prev.seqs) {
    Sequence* s = ss.seq;
    KR_CHECK(blocks_->allocate(&s->block_table, s->num_computed + 2));
    s->scheduled_in_step = step_;
    next->seqs.push_back({s, 1, true, true});
    next->num_tokens += 1;
  }
  step_has_chunk_ = false;
  step_has_decode_ = true;
  step_tokens_ = next->num_tokens;
  return true;
}

void Scheduler::on_step_done(const SchedulerOutput& out) {
  for (const ScheduledSeq& ss : out.seqs) {
    // Finished while the step was in flight (an overlapped decode): its last token
    // may never have been committed, and it leaves once the step is collected.
    if (ss.seq->finished) continue;
    ss.seq->num_computed += ss.num_tokens;
    KR_CHECK(ss.seq->num_computed <= ss.seq->num_tokens());
    if (cache_ != nullptr) cache_->on_computed(ss.seq);
  }
}

}  // namespace kr
