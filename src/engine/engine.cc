// The engine thread's loop: take the inbox, then step() — which reads like
// nano-vllm's: schedule, run, postprocess (commit tokens, detect finishes) —
// and one observer call per step for metrics and auto-tune.
#include "engine/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/check.h"
#include "base/log.h"
#include "engine/engine_observer.h"
#include "engine/kv_block_manager.h"
#include "engine/kv_host_tier.h"
#include "engine/prefix_cache.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"

namespace kr {

struct Engine::Impl {
  Impl(ModelRunner* r, const EngineConfig& c, const Clock* clk, Metrics* m)
      : runner(r),
        config(c),
        clock(clk),
        max_model_len(c.max_model_len > 0 ? std::min(c.max_model_len, r->max_model_len()) : r->max_model_len()),
        blocks(r->num_kv_blocks(), r->block_size()),
        host_tier(c.prefix_caching && r->num_host_slots() > 0
                      ? std::make_unique<KvHostTier>(r, &blocks, host_prefetch_blocks(c, r->block_size()))
                      : nullptr),
        prefix_cache(c.prefix_caching
                         ? std::make_unique<PrefixCache>(&blocks, host_tier.get(), BlockHasher::with_random_key())
                         : nullptr),
        sched(c, &blocks, prefix_cache.get()),
        observer(m, c, &sched),
        eos(r->eos_ids().begin(), r->eos_ids().end()),
        seed_source(std::random_device{}()) {
    sched.set_cost_model(r->step_cost_model());
    free_blocks.store(blocks.num_free_blocks());
    log_step_budget();
    warm_up_step_shapes();
  }

  // The step sizes a time-cut chunk aligns to (Scheduler::time_fit), run once
  // now: the first step of a new size costs milliseconds more where the device
  // picks and loads kernels per shape (measured on the H200: a long prompt's
  // mixed steps of a new size took median 1.5 ms, up to 54 ms, longer to launch).
  // At most kMaxWarmUpSizes sizes, the smallest: start-up stays bounded (the H200
  // took 728 ms for 128 sizes of the 3B shape) whatever --max-batched-tokens is,
  // and a time-cut step of 20 ms holds far fewer than 256 * 16 tokens.
  static constexpr size_t kMaxWarmUpSizes = 256;
  void warm_up_step_shapes() {
    const int32_t align = config.step_token_align;
    if (!(config.scheduler_on && config.max_step_ms > 0) || align <= 1) return;
    std::vector<int32_t> sizes;
    for (int32_t t = align; t <= config.max_batched_tokens && sizes.size() < kMaxWarmUpSizes; t += align)
      sizes.push_back(t);
    const int64_t t0 = steady_now_ns();
    if (sizes.empty() || !runner->warm_up(sizes)) return;
    KR_LOG(kInfo, "warmed up the matmuls of %zu step sizes (%d to %d tokens) in %.0f ms", sizes.size(), sizes.front(),
           sizes.back(), static_cast<double>(steady_now_ns() - t0) * 1e-6);
  }

  // What the step-time budget starts from (the measured corrections come later).
  void log_step_budget() const {
    const StepCostModel& m = sched.step_budget().model();
    if (!(config.scheduler_on && config.max_step_ms > 0)) return;
    if (!m.known()) {
      KR_LOG(kInfo, "step budget %g ms: the backend gives no rates, prefill chunks follow the token budget only",
             config.max_step_ms);
      return;
    }
    KR_LOG(kInfo,
           "step budget %g ms; prior cost: %.3f ms/step + %.5f ms/token + %.3g ms/attention pair + %.3g ms/key read "
           "(%d query tokens per read of the keys)",
           config.max_step_ms, m.fixed_ms, m.token_ms, m.pair_ms + m.window_pair_ms, m.ctx_ms + m.window_ctx_ms,
           m.tile_tokens);
  }

  // Blocks the host tier copies out ahead of eviction: what one step may allocate.
  static int32_t host_prefetch_blocks(const EngineConfig& c, int32_t block_size) {
    return (c.max_batched_tokens + block_size - 1) / block_size + c.max_num_seqs;
  }

  // ---- any thread ----
  Status submit(GenerationRequest req);
  void cancel(RequestId id);

  // ---- engine thread ----
  void loop();
  void take_inbox();
  void step(bool fast_path);
  void begin_record(StepRecord* r, bool fast_path);
  SeqStep seq_step(const ScheduledSeq& ss) const;
  Status launch(const SchedulerOutput& out);
  Status collect(const SchedulerOutput& out);
  bool plan_continuation(const SchedulerOutput& prev, SchedulerOutput* next);
  void postprocess(const SchedulerOutput& out, int64_t now_ns, StepRecord* r);
  FinishReason check_finish(const Sequence& s, int32_t token) const;
  void publish(Sequence* s);
  // Publishes the final event; the sequence leaves (blocks freed, Sequence deleted)
  // now, or, while a launched step still feeds it, at reap_finished().
  void finish(Sequence* s, FinishReason reason, Status error);
  void remove(Sequence* s);
  void reap_finished();
  void check_timeouts(int64_t now_ns);
  void publish_gauges();

  ModelRunner* runner;
  EngineConfig config;
  const Clock* clock;
  const int32_t max_model_len;

  // Shared with other threads, under mu. Held only to move items in or out.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<GenerationRequest> inbox;
  std::vector<RequestId> cancels;
  std::unordered_set<RequestId> live_ids;  // submitted, not yet finished
  bool accepting = true;
  bool stopping = false;
  int64_t drain_deadline_ns = 0;  // steady clock: stop() is a wall-clock affair

  std::atomic<int32_t> running_count{0}, waiting_count{0}, free_blocks{0};

  // Engine thread only.
  KvBlockManager blocks;
  std::unique_ptr<KvHostTier> host_tier;      // null: no host tier
  std::unique_ptr<PrefixCache> prefix_cache;  // null: prefix caching off
  Scheduler sched;
  EngineObserver observer;
  std::vector<int32_t> eos;
  std::mt19937_64 seed_source;
  std::unordered_map<RequestId, std::unique_ptr<Sequence>> seqs;
  // Per-step scratch, reused: the step being collected (out, record) and, in an
  // overlapped decode, the one launched after it (next, next_record).
  SchedulerOutput out, next;
  StepRecord record, next_record;
  std::vector<SeqStep> steps;
  std::vector<SampledToken> sampled;
  std::vector<Sequence*> finished_in_flight;  // finished while a launched step fed them
  std::thread thread;
};

Status Engine::Impl::submit(GenerationRequest req) {
  auto reject = [this](Status s) {
    observer.on_rejected();
    return s;
  };
  if (req.prompt_ids.empty()) return reject(InvalidArgument("the prompt is empty"));
  if (req.max_tokens < 1) return reject(InvalidArgument("max_tokens must be at least 1"));
  if (req.cache_salt.size() > kMaxCacheSaltBytes)
    return reject(InvalidArgument("cache_salt is longer than " + std::to_string(kMaxCacheSaltBytes) + " bytes"));
  if (Status s = check_context_length(static_cast<int64_t>(req.prompt_ids.size()), req.max_tokens, max_model_len);
      !s.ok())
    return reject(std::move(s));
  // The submitter may date the arrival earlier (a wait for the model's load), never later.
  const int64_t now_ns = clock->now_ns();
  if (req.arrival_ns <= 0 || req.arrival_ns > now_ns) req.arrival_ns = now_ns;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!accepting) return reject(FailedPrecondition("the engine is stopping"));
    if (live_ids.count(req.id) != 0) {
      return reject(InvalidArgument("request id " + std::to_string(req.id) + " is already in flight"));
    }
    const int32_t queued = static_cast<int32_t>(inbox.size()) + waiting_count.load(std::memory_order_relaxed);
    if (queued >= config.max_queued_requests) {
      return reject(ResourceExhausted("the request queue is full (" + std::to_string(config.max_queued_requests) +
                                      " waiting); retry later"));
    }
    live_ids.insert(req.id);
    inbox.push_back(std::move(req));
  }
  observer.on_arrival();
  cv.notify_one();
  return Status::Ok();
}

void Engine::Impl::cancel(RequestId id) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (live_ids.count(id) == 0) return;
    cancels.push_back(id);
  }
  cv.notify_one();
}

// Moves submissions into sequences and applies cancels. The lock is held
// only for the swap.
void Engine::Impl::take_inbox() {
  std::vector<GenerationRequest> reqs;
  std::vector<RequestId> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu);
    reqs.swap(inbox);
    cancelled.swap(cancels);
  }
  for (GenerationRequest& r : reqs) {
    auto s = std::make_unique<Sequence>();
    s->rng.seed(r.sampling.seed.has_value() ? *r.sampling.seed : seed_source());
    s->tokens = r.prompt_ids;
    s->num_prompt_tokens = static_cast<int32_t>(r.prompt_ids.size());
    if (r.grammar != nullptr) s->constraint = std::make_unique<TokenConstraint>(r.grammar, r.grammar_trigger);
    s->request = std::move(r);
    Sequence* raw = s.get();
    seqs.emplace(raw->id(), std::move(s));
    sched.add(raw);
  }
  for (RequestId id : cancelled) {
    auto it = seqs.find(id);
    if (it != seqs.end()) finish(it->second.get(), FinishReason::kCancelled, Status::Ok());
  }
}

void Engine::Impl::check_timeouts(int64_t now_ns) {
  if (config.request_timeout_s <= 0) return;
  std::vector<Sequence*> late;
  for (auto& [id, s] : seqs) {
    if (static_cast<double>(now_ns - s->arrival_ns()) >= config.request_timeout_s * 1e9) late.push_back(s.get());
  }
  for (Sequence* s : late) {
    finish(s, FinishReason::kError,
           Status(StatusCode::kDeadlineExceeded,
                  "request timed out after " + std::to_string(config.request_timeout_s) + " s"));
  }
}

void Engine::Impl::loop() {
  observer.on_start();
  observer.on_kv_geometry(runner->block_size(), runner->kv_block_bytes());
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !inbox.empty() || !cancels.empty() || stopping || !seqs.empty(); });
    }
    take_inbox();
    bool stop_now = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      stop_now = stopping && (seqs.empty() || steady_now_ns() >= drain_deadline_ns);
    }
    if (stop_now) {
      while (!seqs.empty()) finish(seqs.begin()->second.get(), FinishReason::kCancelled, Status::Ok());
      std::lock_guard<std::mutex> lock(mu);
      if (inbox.empty()) break;  // accepting is false: nothing more can come
      continue;
    }
    const int64_t now = clock->now_ns();
    check_timeouts(now);
    const int64_t wait_ns = sched.ready_in_ns(now);
    if (wait_ns < 0) {
      publish_gauges();
      continue;  // nothing runnable: sleep on the condition variable
    }
    if (wait_ns > 0) {  // batching window: wake at its end or on an arrival
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::nanoseconds(wait_ns),
                  [&] { return !inbox.empty() || !cancels.empty() || stopping; });
      continue;
    }
    step(sched.fast_path_taken());
    publish_gauges();
  }
  publish_gauges();
}

void Engine::Impl::begin_record(StepRecord* r, bool fast_path) {
  r->clear();
  r->fast_path = fast_path;
  r->start_ns = clock->now_ns();
}

// One step: schedule, run (launch, collect), postprocess; then one observer call
// with its record. Overlapped decode (EngineConfig::overlap_decode): while the step
// in flight is a greedy decode of every running sequence and nothing waits, the
// step after it is planned and launched before its tokens are read, so the device
// never waits for the host; such a chain runs inside one call, a record per step.
void Engine::Impl::step(bool fast_path) {
  begin_record(&record, fast_path);
  const PrefixCacheStats before = prefix_cache ? prefix_cache->stats() : PrefixCacheStats{};
  const KvHostTierStats host_before = host_tier ? host_tier->stats() : KvHostTierStats{};
  sched.schedule(record.start_ns, &out);
  // The host tier's planned copies go out now, ahead of the forward that needs them.
  if (host_tier) host_tier->flush();
  record.scheduled(out);
  if (prefix_cache) {
    const PrefixCacheStats& after = prefix_cache->stats();
    record.prefix_queries = after.queries - before.queries;
    record.prefix_hits = after.hits - before.hits;
    record.prefix_host_hits = after.host_hits - before.host_hits;
  }
  if (host_tier) {
    record.blocks_offloaded = host_tier->stats().blocks_offloaded - host_before.blocks_offloaded;
    record.blocks_reloaded = host_tier->stats().blocks_reloaded - host_before.blocks_reloaded;
  }
  if (out.empty()) {
    observer.on_step(record);
    return;
  }
  Status st = launch(out);
  bool first = true;
  for (;;) {
    bool chained = false;
    if (st.ok() && plan_continuation(out, &next)) {
      chained = true;
      begin_record(&next_record, false);
      if (host_tier) host_tier->flush();
      next_record.scheduled(next);
      const Status next_st = launch(next);
      if (!next_st.ok()) {
        // Nothing of it was enqueued: its sequences fail (after the step before).
        for (const ScheduledSeq& ss : next.seqs) finish(ss.seq, FinishReason::kError, next_st);
        chained = false;
      }
    }
    if (st.ok()) st = collect(out);
    record.end_ns = clock->now_ns();
    record.ok = st.ok();
    if (first) {
      // A step that sampled nothing did not wait for the device: its time is only
      // the launch, and the device's work lands on the next step that waits.
      const bool waited =
          std::any_of(out.seqs.begin(), out.seqs.end(), [](const ScheduledSeq& ss) { return ss.sample; });
      if (st.ok()) sched.on_step_timed(static_cast<double>(record.end_ns - record.start_ns) * 1e-6, waited);
    }
    if (st.ok()) {
      postprocess(out, record.end_ns, &record);
    } else {
      // The step's sequences are in an unknown state: fail them, keep the rest.
      for (const ScheduledSeq& ss : out.seqs)
        if (!ss.seq->finished) finish(ss.seq, FinishReason::kError, st);
    }
    observer.on_step(record);
    reap_finished();
    if (!chained) break;  // loop() publishes the gauges after this call
    publish_gauges();     // a chain may run for thousands of steps: /stats and /metrics follow it
    std::swap(out, next);
    std::swap(record, next_record);
    first = false;
  }
}

// The runner's input for one scheduled sequence. A fed one (overlapped decode) is
// launched while the step before it is in flight: its token is not on the host yet
// (a placeholder stands for it) and it sits one position further than num_computed.
SeqStep Engine::Impl::seq_step(const ScheduledSeq& ss) const {
  static constexpr int32_t kFedPlaceholder = 0;
  Sequence* s = ss.seq;
  SeqStep st;
  st.seq_id = s->id();
  st.fed = ss.fed;
  const int32_t ahead = ss.fed ? 1 : 0;  // the token the step in flight samples
  st.tokens = ss.fed ? std::span<const int32_t>(&kFedPlaceholder, 1)
                     : std::span<const int32_t>(s->tokens.data() + s->num_computed, static_cast<size_t>(ss.num_tokens));
  st.start_pos = s->num_computed + ahead;
  st.block_table = s->block_table;
  st.sample = ss.sample;
  if (ss.sample) {
    st.sampling.params = &s->request.sampling;
    st.sampling.prompt_ids = std::span<const int32_t>(s->tokens.data(), static_cast<size_t>(s->num_prompt_tokens));
    st.sampling.output_ids = std::span<const int32_t>(s->tokens.data() + s->num_prompt_tokens,
                                                      static_cast<size_t>(s->num_output_tokens()));
    st.sampling.suppress_eos = s->num_output_tokens() + ahead < s->request.min_tokens;
    st.sampling.rng = &s->rng;
    st.constraint = s->constraint.get();
  }
  return st;
}

// Enqueues one forward over the scheduled sequences (prefill chunks and decode
// tokens) and the sampling of a token for each that samples.
Status Engine::Impl::launch(const SchedulerOutput& o) {
  steps.clear();
  for (const ScheduledSeq& ss : o.seqs) steps.push_back(seq_step(ss));
  KR_RETURN_IF_ERROR(runner->launch(steps));
  for (const ScheduledSeq& ss : o.seqs) ++ss.seq->launched_steps;
  return Status::Ok();
}

// The tokens of the oldest launched step (o), waiting for the device.
Status Engine::Impl::collect(const SchedulerOutput& o) {
  for (const ScheduledSeq& ss : o.seqs) --ss.seq->launched_steps;
  sampled.clear();
  return runner->collect(&sampled);
}

// The overlapped decode's next step, planned while `prev` is in flight: only when
// it is switched on, nothing arrived or was cancelled (those go through schedule()),
// and every sequence of prev would sample its next token the same way on the device
// without the host seeing prev's token (Scheduler::schedule_continuation says the rest).
bool Engine::Impl::plan_continuation(const SchedulerOutput& prev, SchedulerOutput* n) {
  if (!config.overlap_decode) return false;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!inbox.empty() || !cancels.empty() || stopping) return false;
  }
  const int64_t now = clock->now_ns();
  auto may_continue = [&](const Sequence& s) {
    const GenerationRequest& r = s.request;
    if (s.finished || s.constraint != nullptr) return false;
    // prev's token makes num_output_tokens() + 1: one that surely ends there is not continued.
    if (s.num_output_tokens() + 1 >= r.max_tokens || s.num_tokens() + 1 >= max_model_len) return false;
    if (config.request_timeout_s > 0 && static_cast<double>(now - s.arrival_ns()) >= config.request_timeout_s * 1e9)
      return false;
    return runner->can_feed(seq_step({const_cast<Sequence*>(&s), 1, true, true}));
  };
  return sched.schedule_continuation(prev, may_continue, n);
}

// Advances the KV positions, commits each sampled token (its latency goes to
// the step record), finishes what is done and publishes the rest. A sequence
// that finished while this step was in flight gets nothing more.
void Engine::Impl::postprocess(const SchedulerOutput& o, int64_t now_ns, StepRecord* r) {
  sched.on_step_done(o);
  size_t j = 0;
  for (const ScheduledSeq& ss : o.seqs) {
    if (!ss.sample) continue;
    KR_CHECK_MSG(j < sampled.size(), "the runner returned fewer tokens than sampling sequences");
    SampledToken& t = sampled[j++];
    Sequence* s = ss.seq;
    if (s->finished) continue;
    if (t.non_finite) {
      finish(s, FinishReason::kError, Internal("the model produced non-finite logits"));
      continue;
    }
    // Structured output: the token must be one the grammar allowed (the mask
    // made it so); a dead end or a refusal fails this request alone.
    if (s->constraint != nullptr && (t.no_allowed_token || !s->constraint->accept(t.id))) {
      finish(s, FinishReason::kError,
             FailedPrecondition("structured output: " + s->constraint->error() + " (after " +
                                std::to_string(s->num_output_tokens()) + " output tokens)"));
      continue;
    }
    const int32_t id = t.id;
    s->tokens.push_back(id);
    s->pending.push_back(std::move(t));
    if (s->first_token_ns == 0) {
      s->first_token_ns = now_ns;
      r->ttft_s.push_back(static_cast<double>(now_ns - s->arrival_ns()) * 1e-9);
      r->prefill_s.push_back(static_cast<double>(now_ns - s->first_scheduled_ns) * 1e-9);
    } else {
      r->itl_s.push_back(static_cast<double>(now_ns - s->last_token_ns) * 1e-9);
    }
    s->last_token_ns = now_ns;
    const FinishReason reason = check_finish(*s, id);
    if (reason != FinishReason::kNone) {
      finish(s, reason, Status::Ok());
    } else {
      publish(s);
    }
  }
}

FinishReason Engine::Impl::check_finish(const Sequence& s, int32_t token) const {
  const GenerationRequest& r = s.request;
  const int32_t n_out = s.num_output_tokens();
  if (n_out >= r.min_tokens) {
    if (std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) != r.stop_token_ids.end()) {
      return FinishReason::kStop;
    }
    if (!r.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) return FinishReason::kStop;
  }
  if (n_out >= r.max_tokens || s.num_tokens() >= max_model_len) return FinishReason::kLength;
  return FinishReason::kNone;
}

void Engine::Impl::publish(Sequence* s) {
  TokenEvent ev;
  ev.request_id = s->id();
  ev.tokens.swap(s->pending);
  ev.prompt_tokens = s->num_prompt_tokens;
  ev.completion_tokens = s->num_output_tokens();
  ev.cached_tokens = std::max(s->num_cached_tokens, 0);
  if (s->request.on_event) s->request.on_event(std::move(ev));
}

void Engine::Impl::finish(Sequence* s, FinishReason reason, Status error) {
  KR_CHECK(!s->finished);
  const int64_t now = clock->now_ns();
  s->finished = true;
  TokenEvent ev;
  ev.request_id = s->id();
  ev.tokens.swap(s->pending);
  ev.finished = true;
  ev.finish_reason = reason;
  ev.error = std::move(error);
  ev.prompt_tokens = s->num_prompt_tokens;
  ev.completion_tokens = s->num_output_tokens();
  ev.cached_tokens = std::max(s->num_cached_tokens, 0);
  const int64_t scheduled = s->first_scheduled_ns != 0 ? s->first_scheduled_ns : now;
  ev.queue_time_s = static_cast<double>(scheduled - s->arrival_ns()) * 1e-9;
  ev.ttft_s = s->first_token_ns != 0 ? static_cast<double>(s->first_token_ns - s->arrival_ns()) * 1e-9 : 0.0;
  ev.e2e_s = static_cast<double>(now - s->arrival_ns()) * 1e-9;
  observer.on_finish(reason, ev.e2e_s, s->first_token_ns != 0 ? static_cast<double>(now - s->first_token_ns) * 1e-9 : -1.0,
                     ev.prompt_tokens, ev.completion_tokens);
  if (s->request.on_event) s->request.on_event(std::move(ev));
  if (s->launched_steps > 0) {
    finished_in_flight.push_back(s);  // a launched step still writes its KV blocks
    return;
  }
  remove(s);
}

// The finished sequence leaves the scheduler (its KV blocks are freed) and the engine.
void Engine::Impl::remove(Sequence* s) {
  sched.remove(s);
  const RequestId id = s->id();
  {
    std::lock_guard<std::mutex> lock(mu);
    live_ids.erase(id);
  }
  seqs.erase(id);  // s is gone from here on
}

void Engine::Impl::reap_finished() {
  size_t kept = 0;
  for (Sequence* s : finished_in_flight) {
    if (s->launched_steps > 0) {
      finished_in_flight[kept++] = s;
    } else {
      remove(s);
    }
  }
  finished_in_flight.resize(kept);
}

void Engine::Impl::publish_gauges() {
  running_count.store(sched.num_running(), std::memory_order_relaxed);
  waiting_count.store(sched.num_waiting(), std::memory_order_relaxed);
  free_blocks.store(blocks.num_free_blocks(), std::memory_order_relaxed);
  observer.on_gauges(sched.num_running(), sched.num_waiting(), blocks.usage());
}

// ---- Engine ----

Engine::Engine(ModelRunner* runner, const EngineConfig& config, const Clock* clock, Metrics* metrics)
    : impl_(std::make_unique<Impl>(runner, config, clock, metrics)) {}

Engine::~Engine() {
  if (impl_->thread.joinable()) {
    stop(0);
    return;
  }
  // Never started: no engine thread exists, so this thread may play its part.
  impl_->take_inbox();
  while (!impl_->seqs.empty()) impl_->finish(impl_->seqs.begin()->second.get(), FinishReason::kCancelled, Status::Ok());
}

void Engine::start() {
  KR_CHECK(!impl_->thread.joinable());
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void Engine::stop(double drain_timeout_s) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->accepting = false;
    impl_->stopping = true;
    impl_->drain_deadline_ns = steady_now_ns() + static_cast<int64_t>(drain_timeout_s * 1e9);
  }
  impl_->cv.notify_one();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Status Engine::submit(GenerationRequest request) { return impl_->submit(std::move(request)); }
void Engine::cancel(RequestId id) { impl_->cancel(id); }
int32_t Engine::max_model_len() const { return impl_->max_model_len; }
int32_t Engine::num_running() const { return impl_->running_count.load(std::memory_order_relaxed); }
int32_t Engine::num_waiting() const { return impl_->waiting_count.load(std::memory_order_relaxed); }
int32_t Engine::num_free_blocks() const { return impl_->free_blocks.load(std::memory_order_relaxed); }

}  // namespace kr
