#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>

namespace kr {
namespace {

constexpr int64_t kMs = 1'000'000;

// Drives a Scheduler the way the engine does, with a fake "model" that
// appends token 7 to every sequence that samples; finishes a sequence once it
// has max_tokens outputs.
struct Harness {
  Harness(EngineConfig c, int32_t num_blocks, int32_t block_size)
      : config(c), blocks(num_blocks, block_size), sched(config, &blocks) {}

  Sequence* add(const std::string& name, int32_t prompt_len, int32_t max_tokens, int32_t priority = 0,
                int64_t arrival_ns = -1) {
    auto s = std::make_unique<Sequence>();
    s->request.id = static_cast<RequestId>(seqs.size() + 1);
    s->request.priority = priority;
    s->request.max_tokens = max_tokens;
    s->request.arrival_ns = arrival_ns >= 0 ? arrival_ns : now_ns;
    s->tokens.assign(static_cast<size_t>(prompt_len), 5);
    s->num_prompt_tokens = prompt_len;
    names[s.get()] = name;
    Sequence* raw = s.get();
    seqs.push_back(std::move(s));
    sched.add(raw);
    return raw;
  }

  // One step; returns e.g. "A:8 B:1*" (* = sampled).
  std::string step() {
    sched.schedule(now_ns, &last);
    std::string d;
    for (const ScheduledSeq& ss : last.seqs) {
      if (!d.empty()) d += ' ';
      d += names[ss.seq] + ":" + std::to_string(ss.num_tokens) + (ss.sample ? "*" : "");
    }
    sched.on_step_done(last);
    for (const ScheduledSeq& ss : last.seqs) {
      if (!ss.sample) continue;
      ss.seq->tokens.push_back(7);
      if (ss.seq->num_output_tokens() >= ss.seq->request.max_tokens) sched.remove(ss.seq);
    }
    return d;
  }

  std::string ids(const std::vector<Sequence*>& v) {
    std::vector<std::string> n;
    for (Sequence* s : v) n.push_back(names[s]);
    std::sort(n.begin(), n.end());
    std::string d;
    for (auto& x : n) d += x;
    return d;
  }

  EngineConfig config;
  KvBlockManager blocks;
  Scheduler sched;
  int64_t now_ns = 1000 * kMs;
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::map<const Sequence*, std::string> names;
  SchedulerOutput last;
};

struct Expect {
  std::string step;       // what ran
  std::string running;    // after the step (sorted names)
  std::string waiting;
  int32_t free_blocks;
};

void walk(Harness& h, const std::vector<Expect>& table) {
  for (size_t i = 0; i < table.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i + 1));
    EXPECT_EQ(h.step(), table[i].step);
    EXPECT_EQ(h.ids(h.sched.running()), table[i].running);
    EXPECT_EQ(h.ids(h.sched.waiting()), table[i].waiting);
    EXPECT_EQ(h.blocks.num_free_blocks(), table[i].free_blocks);
  }
}

TEST(SchedulerTable, ChunkedPrefillNeverStallsAndFitsBudget) {
  EngineConfig c;
  c.max_batched_tokens = 8;
  Harness h(c, 16, 4);
  h.add("A", 10, 3);
  h.add("B", 3, 2);
  walk(h, {
              {"A:8", "A", "B", 14},            // A's first chunk takes the whole budget
              {"A:2* B:3*", "AB", "", 12},      // A's last chunk, then B admitted
              {"A:1* B:1*", "A", "", 13},       // decodes fit their blocks; B done, its block back
              {"A:1*", "", "", 16},             // A done
          });
}

TEST(SchedulerTable, PreemptsLowestPriorityByRecompute) {
  EngineConfig c;
  Harness h(c, 4, 2);  // 8 token slots
  h.add("A", 3, 4, kPriorityDefault, 1 * kMs);
  Sequence* b = h.add("B", 3, 4, kPriorityBackground, 2 * kMs);
  walk(h, {
              {"A:3* B:3*", "AB", "", 0},
              {"A:1* B:1*", "AB", "", 0},
              {"A:1*", "A", "B", 1},  // A needs a block: B (background) is preempted
              {"A:1*", "", "B", 4},   // A done; B needs 3 blocks, only 1 was free at schedule time
              {"B:5*", "B", "", 1},   // B recomputes prompt + its 2 tokens, samples the 3rd
              {"B:1*", "", "", 4},
          });
  EXPECT_EQ(b->num_preemptions, 1);
}

// A step that had to preempt admits nobody, even a request that the victim's
// blocks would fit: memory is short, and admitting would preempt again next step.
TEST(SchedulerTable, NoAdmissionInAStepThatPreempted) {
  EngineConfig c;
  Harness h(c, 4, 2);  // 8 token slots
  h.add("A", 3, 4, kPriorityDefault, 1 * kMs);
  h.add("B", 3, 4, kPriorityBackground, 2 * kMs);
  walk(h, {
              {"A:3* B:3*", "AB", "", 0},
              {"A:1* B:1*", "AB", "", 0},
          });
  h.add("C", 1, 1, kPriorityDefault, 3 * kMs);  // one block; ahead of B by priority
  walk(h, {
              {"A:1*", "A", "BC", 1},       // B preempted: 2 blocks back, A takes 1; C waits
              {"A:1* C:1*", "", "B", 4},    // now C is admitted; A and C finish
              {"B:5*", "B", "", 1},         // B recomputes prompt + 2 tokens
              {"B:1*", "", "", 4},
          });
}

TEST(SchedulerTable, SchedulerOffRunsOneAtATimeFifo) {
  EngineConfig c;
  c.scheduler_on = false;
  Harness h(c, 16, 4);
  h.add("A", 4, 2, kPriorityBackground, 1 * kMs);
  h.add("B", 2, 1, kPriorityUrgent, 2 * kMs);  // urgent, but the baseline is FIFO
  walk(h, {
              {"A:4*", "A", "B", 15},
              {"A:1*", "", "B", 16},
              {"B:2*", "", "", 16},
          });
}

TEST(Scheduler, AdmitsByPriorityThenFifo) {
  EngineConfig c;
  c.admissions_per_step = 1;
  Harness h(c, 64, 4);
  h.add("C", 2, 100, kPriorityBackground, 1 * kMs);
  h.add("B", 2, 100, kPriorityDefault, 2 * kMs);
  h.add("A", 2, 100, kPriorityUrgent, 3 * kMs);
  h.add("D", 2, 100, kPriorityDefault, 4 * kMs);
  std::string order;
  for (int i = 0; i < 4; ++i) {
    h.step();
    ASSERT_EQ(h.last.admitted.size(), 1u);
    order += h.names[h.last.admitted[0]];
  }
  EXPECT_EQ(order, "ABDC");
}

TEST(Scheduler, AgingBoundsBackgroundWait) {
  EngineConfig c;
  c.admissions_per_step = 1;
  c.background_max_wait_s = 1.0;
  Harness h(c, 64, 4);
  h.now_ns = 10'000 * kMs;
  h.add("X", 2, 100, kPriorityBackground, h.now_ns);
  h.add("Y", 2, 100, kPriorityDefault, h.now_ns + 1);
  h.add("Z", 2, 100, kPriorityDefault, h.now_ns + 2);
  h.step();
  EXPECT_EQ(h.names[h.last.admitted.at(0)], "Y");  // not aged yet: priority wins
  h.now_ns += 1000 * kMs;                          // X has now waited 1 s
  h.step();
  EXPECT_EQ(h.names[h.last.admitted.at(0)], "X");
  h.step();
  EXPECT_EQ(h.names[h.last.admitted.at(0)], "Z");
}

TEST(Scheduler, WindowWaitsForMoreArrivalsWhenIdle) {
  EngineConfig c;
  c.window_ms = 2.0;
  c.admissions_per_step = 4;
  Harness h(c, 64, 4);
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), -1);
  h.add("A", 2, 2);
  h.add("B", 2, 2);
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 2 * kMs);
  h.now_ns += 1 * kMs;
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 1 * kMs);
  h.now_ns += 1 * kMs;
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 0);
  EXPECT_FALSE(h.sched.fast_path_taken());
  EXPECT_EQ(h.step(), "A:2* B:2*");
  // Busy: a new arrival joins at the next step, no window.
  h.add("C", 2, 2);
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 0);
}

TEST(Scheduler, UrgentArrivalEndsTheWindow) {
  EngineConfig c;
  c.window_ms = 5.0;
  c.fast_path = false;
  Harness h(c, 64, 4);
  h.add("A", 2, 2);
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 5 * kMs);
  h.now_ns += 1 * kMs;
  h.add("U", 2, 2, kPriorityUrgent);
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 0);
}

TEST(Scheduler, FullBatchEndsTheWindow) {
  EngineConfig c;
  c.window_ms = 5.0;
  c.admissions_per_step = 3;
  Harness h(c, 64, 4);
  h.add("A", 2, 2);
  h.add("B", 2, 2);
  EXPECT_GT(h.sched.ready_in_ns(h.now_ns), 0);
  h.add("C", 2, 2);
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 0);
}

TEST(Scheduler, FastPathStartsALoneRequestAtOnce) {
  EngineConfig c;
  c.window_ms = 5.0;
  Harness h(c, 64, 4);
  h.add("A", 2, 2);
  EXPECT_EQ(h.sched.ready_in_ns(h.now_ns), 0);
  EXPECT_TRUE(h.sched.fast_path_taken());

  EngineConfig off = c;
  off.fast_path = false;
  Harness h2(off, 64, 4);
  h2.add("A", 2, 2);
  EXPECT_EQ(h2.sched.ready_in_ns(h2.now_ns), 5 * kMs);
  EXPECT_FALSE(h2.sched.fast_path_taken());
}

TEST(Scheduler, BatchSizeAndMaxNumSeqsLimitAdmissions) {
  EngineConfig c;
  c.admissions_per_step = 2;
  c.max_num_seqs = 3;
  Harness h(c, 64, 4);
  for (const char* n : {"A", "B", "C", "D", "E"}) h.add(n, 2, 100);
  EXPECT_EQ(h.step(), "A:2* B:2*");
  EXPECT_EQ(h.step(), "A:1* B:1* C:2*");  // cap of 3 running
  EXPECT_EQ(h.step(), "A:1* B:1* C:1*");
  EXPECT_EQ(h.ids(h.sched.waiting()), "DE");
}

TEST(Scheduler, PreemptionOrderIsWorstPriorityThenLatestArrival) {
  EngineConfig c;
  Harness h(c, 4, 1);  // 4 slots
  h.add("A", 1, 10, kPriorityDefault, 1 * kMs);
  h.add("B", 1, 10, kPriorityBackground, 2 * kMs);
  h.add("C", 1, 10, kPriorityBackground, 3 * kMs);
  h.add("D", 1, 10, kPriorityDefault, 4 * kMs);
  EXPECT_EQ(h.step(), "A:1* D:1* B:1* C:1*");  // best priority first; all blocks used
  std::string victims;
  for (int i = 0; i < 3; ++i) {
    h.step();
    for (Sequence* s : h.last.preempted) victims += h.names[s];
  }
  EXPECT_EQ(victims.substr(0, 3), "CBD");
  EXPECT_EQ(h.ids(h.sched.running()), "A");
}

// 10,000 requests with random sizes, priorities, cancellations and a KV cache
// small enough to force preemptions: every block comes back.
TEST(Scheduler, RandomWorkloadFreesEveryBlock) {
  EngineConfig c;
  c.max_batched_tokens = 64;
  c.admissions_per_step = 8;
  c.max_num_seqs = 32;
  Harness h(c, 48, 4);
  std::mt19937 rng(42);
  int added = 0;
  int64_t preemptions = 0;
  std::vector<Sequence*> live;
  while (added < 10000 || h.sched.num_running() + h.sched.num_waiting() > 0) {
    // About one arrival per 3 steps: a little above what 48 blocks serve, so a
    // queue builds up but stays short enough for a fast test.
    const int arrivals = added < 10000 && rng() % 3 == 0 ? 1 : 0;
    for (int i = 0; i < arrivals && added < 10000; ++i, ++added) {
      h.add("r", 1 + static_cast<int32_t>(rng() % 40), 1 + static_cast<int32_t>(rng() % 24),
            static_cast<int32_t>(rng() % 3) - 1);
    }
    h.now_ns += kMs;
    h.step();
    preemptions += static_cast<int64_t>(h.last.preempted.size());
    // Random cancellations, running or waiting.
    if (rng() % 5 == 0) {
      std::vector<Sequence*> all = h.sched.running();
      all.insert(all.end(), h.sched.waiting().begin(), h.sched.waiting().end());
      if (!all.empty()) h.sched.remove(all[rng() % all.size()]);
    }
    int32_t used = 0;
    for (Sequence* s : h.sched.running()) used += static_cast<int32_t>(s->block_table.size());
    for (Sequence* s : h.sched.waiting()) ASSERT_TRUE(s->block_table.empty());
    ASSERT_EQ(used + h.blocks.num_free_blocks(), h.blocks.num_blocks());
  }
  EXPECT_GT(preemptions, 0);
  EXPECT_EQ(h.blocks.num_free_blocks(), h.blocks.num_blocks());
  for (int32_t b = 0; b < h.blocks.num_blocks(); ++b) EXPECT_EQ(h.blocks.refcount(b), 0);
}

// Overlapped decode: the step after a launched pure decode is planned before its
// tokens exist: the same sequences in order, one fed token each, one position on,
// with the block that position needs; anything else in the way plans nothing.
TEST(Scheduler, ContinuationRepeatsTheDecodesOnePositionOn) {
  EngineConfig c;
  Harness h(c, 6, 4);
  Sequence* a = h.add("A", 3, 50);
  Sequence* b = h.add("B", 2, 50);
  auto any = [](const Sequence&) { return true; };
  EXPECT_EQ(h.step(), "A:3* B:2*");  // prefills; each now has one uncomputed token
  // Plan from a decode step that is "in flight" (scheduled, not done).
  SchedulerOutput prev, next;
  h.sched.schedule(h.now_ns, &prev);
  ASSERT_EQ(prev.seqs.size(), 2u);
  EXPECT_EQ(a->num_computed, 3);
  EXPECT_EQ(a->block_table.size(), 1u);  // positions 0-3
  ASSERT_TRUE(h.sched.schedule_continuation(prev, any, &next));
  ASSERT_EQ(next.seqs.size(), 2u);
  EXPECT_EQ(next.seqs[0].seq, prev.seqs[0].seq);
  EXPECT_EQ(next.seqs[1].seq, prev.seqs[1].seq);
  for (const ScheduledSeq& ss : next.seqs) EXPECT_TRUE(ss.fed && ss.sample && ss.num_tokens == 1);
  // A's next token sits at position 4: a second block; B's at 3: still the first.
  EXPECT_EQ(a->block_table.size(), 2u);
  EXPECT_EQ(b->block_table.size(), 1u);
  EXPECT_EQ(h.blocks.num_free_blocks(), 3);
  // prev is done: its tokens land; next may be continued in turn.
  h.sched.on_step_done(prev);
  a->tokens.push_back(7);
  b->tokens.push_back(7);
  SchedulerOutput next2;
  ASSERT_TRUE(h.sched.schedule_continuation(next, any, &next2));
  EXPECT_EQ(b->block_table.size(), 2u);  // B's position 4
  h.sched.on_step_done(next);
  EXPECT_EQ(a->num_computed, 5);
  EXPECT_EQ(a->num_tokens(), 5);  // next2's token is not on the host yet
  // No continuation when a sequence may not continue, when one waits, or when the
  // blocks run short (positions 8+ need a third block each; one is free).
  a->tokens.push_back(7);
  b->tokens.push_back(7);
  SchedulerOutput n3;
  EXPECT_FALSE(h.sched.schedule_continuation(next2, [&](const Sequence& s) { return &s != b; }, &n3));
  Sequence* w = h.add("W", 2, 5);
  EXPECT_FALSE(h.sched.schedule_continuation(next2, any, &n3));
  h.sched.remove(w);
  EXPECT_EQ(h.blocks.num_free_blocks(), 2);
  ASSERT_TRUE(h.sched.schedule_continuation(next2, any, &n3));  // positions 6 and 5: no new block
  EXPECT_EQ(h.blocks.num_free_blocks(), 2);
  h.sched.on_step_done(next2);
  a->tokens.push_back(7);
  b->tokens.push_back(7);
  SchedulerOutput n4, n5;
  ASSERT_TRUE(h.sched.schedule_continuation(n3, any, &n4));  // positions 7 and 6: no new block
  h.sched.on_step_done(n3);
  a->tokens.push_back(7);
  b->tokens.push_back(7);
  BlockTable elsewhere;
  ASSERT_TRUE(h.blocks.allocate(&elsewhere, 8));  // the two free blocks
  EXPECT_FALSE(h.sched.schedule_continuation(n4, any, &n5));  // A's position 8 needs a block
  EXPECT_EQ(a->block_table.size(), 2u);  // nothing allocated by the refusal
  EXPECT_EQ(b->block_table.size(), 2u);
  h.blocks.free(&elsewhere);
  ASSERT_TRUE(h.sched.schedule_continuation(n4, any, &n5));
  EXPECT_EQ(a->block_table.size(), 3u);
  EXPECT_EQ(h.blocks.num_free_blocks(), 1);
}

// A step with a prefill chunk (or one that leaves a running sequence out) is not continued.
TEST(Scheduler, NoContinuationOfAPrefill) {
  EngineConfig c;
  Harness h(c, 16, 4);
  h.add("A", 6, 50);
  SchedulerOutput prev, next;
  h.sched.schedule(h.now_ns, &prev);
  ASSERT_EQ(prev.seqs.size(), 1u);
  EXPECT_EQ(prev.seqs[0].num_tokens, 6);
  EXPECT_FALSE(h.sched.schedule_continuation(prev, [](const Sequence&) { return true; }, &next));
  EXPECT_TRUE(next.empty());
}

}  // namespace
}  // namespace kr
