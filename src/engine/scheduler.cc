#include "engine/scheduler.h"

#include <algorithm>

#include "base/check.h"

namespace kr {

bool preempt_before(const Sequence* a, const Sequence* b) {
  if (a->priority() != b->priority()) return a->priority() > b->priority();
  if (a->arrival_ns() != b->arrival_ns()) return a->arrival_ns() > b->arrival_ns();
  return a->id() > b->id();
}

Scheduler::Scheduler(const EngineConfig& config, KvBlockManager* blocks)
    : config_(config), blocks_(blocks), window_ms_(config.window_ms), admissions_per_step_(config.admissions_per_step) {}

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
}

void Scheduler::run_passes(int64_t now_ns, SchedulerOutput* out) {
  const int32_t max_seqs = config_.scheduler_on ? config_.max_num_seqs : 1;
  const int32_t max_admit = config_.scheduler_on ? admissions_per_step_ : 1;
  int32_t budget = config_.max_batched_tokens - out->num_tokens;
  auto emit = [&](Sequence* s, int32_t n) {
    s->scheduled_in_step = step_;
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
  }
  // 2. Prefills already running: the next chunk, as far as budget and blocks allow.
  for (Sequence* s : order) {
    if (budget < 1) break;
    if (s->state != SeqState::kRunning || s->scheduled_in_step == step_ || s->num_uncomputed() < 2) continue;
    const int64_t fit = blocks_->tokens_that_fit(s->block_table, s->num_computed);
    const int32_t n = static_cast<int32_t>(std::min<int64_t>({s->num_uncomputed(), budget, fit}));
    if (n < 1) continue;
    KR_CHECK(blocks_->allocate(&s->block_table, s->num_computed + n));
    emit(s, n);
  }
  // 3. Admissions. None in a step that had to preempt: memory is short.
  if (!out->preempted.empty() || waiting_.empty()) return;
  std::sort(waiting_.begin(), waiting_.end(),
            [&](const Sequence* a, const Sequence* b) { return before(a, b, now_ns); });
  int32_t admitted = 0;
  size_t i = 0;
  while (i < waiting_.size() && admitted < max_admit && budget >= 1 &&
         static_cast<int32_t>(running_.size()) < max_seqs) {
    Sequence* s = waiting_[i];
    const int32_t n = std::min(s->num_uncomputed(), budget);
    // Strict order: the head waits for blocks rather than being overtaken.
    if (!blocks_->allocate(&s->block_table, s->num_computed + n)) break;
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
    s->state = SeqState::kRunning;
    if (s->first_scheduled_ns == 0) s->first_scheduled_ns = now_ns;
    running_.push_back(s);
    out->admitted.push_back(s);
    ++admitted;
    emit(s, n);
  }
}

void Scheduler::on_step_done(const SchedulerOutput& out) {
  for (const ScheduledSeq& ss : out.seqs) {
    ss.seq->num_computed += ss.num_tokens;
    KR_CHECK(ss.seq->num_computed <= ss.seq->num_tokens());
  }
}

}  // namespace kr
