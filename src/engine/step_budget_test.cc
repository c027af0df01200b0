// The scheduler's time budget (EngineConfig::max_step_ms with a StepCostModel)
// and the priority yield of running prefills, as tables of steps; and the cost
// model's arithmetic. Expected chunk sizes follow from the cost model by hand
// (the largest n whose estimate fits what the decodes leave).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "engine/step_cost.h"

namespace kr {
namespace {

// Drives a Scheduler as the engine does; a sequence that samples gets token 7
// and finishes at max_tokens outputs. With measured_factor > 0 each step is
// "measured" at that multiple of its unscaled estimate (on_step_timed).
struct Harness {
  Harness(EngineConfig c, const StepCostModel& m) : config(c), blocks(4096, 16), sched(config, &blocks) {
    sched.set_cost_model(m);
  }
  void add(const std::string& name, int32_t prompt_len, int32_t max_tokens, int32_t priority = kPriorityDefault) {
    auto s = std::make_unique<Sequence>();
    s->request.id = static_cast<RequestId>(seqs.size() + 1);
    s->request.priority = priority;
    s->request.max_tokens = max_tokens;
    s->request.arrival_ns = static_cast<int64_t>(seqs.size());
    s->tokens.assign(static_cast<size_t>(prompt_len), 5);
    s->num_prompt_tokens = prompt_len;
    names[s.get()] = name;
    sched.add(s.get());
    seqs.push_back(std::move(s));
  }
  // One step: "A:8 B:1*" (* = sampled).
  std::string step() {
    sched.schedule(1'000'000, &out);
    bool waited = false;  // as the engine: a step waits for the device when it samples
    for (const ScheduledSeq& ss : out.seqs) waited = waited || ss.sample;
    const double factor = waited || unwaited_factor == 0 ? measured_factor : unwaited_factor;
    if (factor > 0) sched.on_step_timed(factor * sched.last_estimate_ms(), waited);
    std::string d;
    for (const ScheduledSeq& ss : out.seqs) d += (d.empty() ? "" : " ") + names[ss.seq] + ":" + std::to_string(ss.num_tokens) + (ss.sample ? "*" : "");
    sched.on_step_done(out);
    for (const ScheduledSeq& ss : out.seqs) {
      if (!ss.sample) continue;
      ss.seq->tokens.push_back(7);
      if (ss.seq->num_output_tokens() >= ss.seq->request.max_tokens) sched.remove(ss.seq);
    }
    return d;
  }
  void walk(const std::vector<std::string>& table) {
    for (size_t i = 0; i < table.size(); ++i) {
      SCOPED_TRACE("step " + std::to_string(i + 1));
      EXPECT_EQ(step(), table[i]);
    }
  }

  EngineConfig config;
  KvBlockManager blocks;
  Scheduler sched;
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::map<const Sequence*, std::string> names;
  SchedulerOutput out;
  double measured_factor = 0.0;
  double unwaited_factor = 0.0;  // > 0: steps that sample nothing "measure" this (their launch only)
};

// 1 ms per step, 0.01 ms per token, 1e-5 ms per attention pair; no K/V read term.
StepCostModel attention_model() {
  StepCostModel m;
  m.fixed_ms = 1.0;
  m.token_ms = 0.01;
  m.pair_ms = 1e-5;
  return m;
}

EngineConfig budget_config() {
  EngineConfig c;
  c.max_batched_tokens = 1000;
  c.max_step_ms = 10.0;
  c.step_token_align = 1;  // the tables below: chunks exactly as the cost model cuts them
  return c;
}

// While D decodes, L's chunks are cut to what the budget leaves after the step's
// 1 ms and D's token. No step has been measured, so the budget carries the cold
// margin: 10 / 1.5 = 6.67 ms, 5.66 of it for the chunk:
// 0.01 n + 1e-5 (n s + n (n + 1) / 2) <= 5.66, shrinking as L's context s grows
// (459 at s = 0, 346 at s = 459). Counting tokens only gives 999-token chunks;
// leaving out the attention pairs, 565 every step.
TEST(StepBudgetTable, ChunksShrinkWithTheContextWhileDecodesRun) {
  Harness h(budget_config(), attention_model());
  h.add("D", 2, 100);
  h.walk({"D:2*"});
  h.add("L", 1500, 1);
  h.walk({
      "D:1* L:459",  // admitted: 5.66 ms of chunk at context 0
      "D:1* L:346",  // at context 459 the same time buys fewer tokens
      "D:1* L:290",
      "D:1* L:254",
      "D:1* L:151*",  // the rest (it fits)
      "D:1*",
  });
}

// Without decodes the time budget does not bind: a prompt alone takes whole
// token-budget chunks (its time to first token is what counts).
TEST(StepBudgetTable, NoDecodesMeansTokenBudgetOnly) {
  Harness h(budget_config(), attention_model());
  h.add("L", 1500, 1);
  h.walk({"L:1000", "L:500*"});
}

// Decodes that alone exceed the budget still leave the first chunk a quarter of
// it (6.67 / 4 ms with the cold margin), so a prefill always progresses: here D's
// token reads 1001 keys at 0.01 ms each (11 ms with the step).
TEST(StepBudgetTable, FirstChunkProgressesWhenDecodesFillTheStep) {
  StepCostModel m = attention_model();
  m.ctx_ms = 0.01;
  m.tile_tokens = 64;
  Harness h(budget_config(), m);
  h.add("D", 1000, 100);
  h.walk({"D:1000*"});
  h.add("L", 500, 1);
  h.walk({"D:1* L:64", "D:1* L:49"});
}

// Every step measured at half its estimate. The first measurement (D's prompt, no
// decode) replaces the prior: 0.5. The first mixed steps start from it with the
// cold margin (0.75: 10 / 0.75 ms, 861 tokens instead of 459); after 4 measured
// mixed steps the margin goes (0.5: the chunk grows again, 533 at context 2294,
// where it had fallen to 398).
TEST(StepBudgetTable, MeasuredStepTimesCorrectTheEstimate) {
  Harness h(budget_config(), attention_model());
  h.measured_factor = 0.5;
  h.add("D", 2, 100);
  h.walk({"D:2*"});
  EXPECT_NEAR(h.sched.step_budget().scale(/*mixed=*/false), 0.5, 1e-12);
  h.add("L", 3000, 1);
  h.walk({"D:1* L:861", "D:1* L:573", "D:1* L:462", "D:1* L:398", "D:1* L:533", "D:1* L:173*"});
  EXPECT_NEAR(h.sched.step_budget().scale(/*mixed=*/true), 0.5, 1e-12);
}

// A prefill chunk that samples nothing does not wait for the device, so its
// measured time is the launch only (on the H200, 2 ms for a 2,048-token chunk,
// then 125 ms for the next one that waited): only the steps that waited move the
// scale. Here the last chunk of L: 0.5.
TEST(StepBudgetTable, StepsThatDidNotWaitAreNotCounted) {
  Harness h(budget_config(), attention_model());
  h.measured_factor = 0.5;
  h.unwaited_factor = 0.05;
  h.add("L", 2500, 1);
  h.walk({"L:1000", "L:1000", "L:500*"});
  EXPECT_NEAR(h.sched.step_budget().scale(/*mixed=*/false), 0.5, 1e-12);
}

// With step_token_align 64 a chunk the time budget cuts ends the step at a
// multiple of 64 tokens with D's token: the cost model allows 459 at context 0
// and 348 at context 447 (as in ChunksShrinkWithTheContextWhileDecodesRun), cut
// to 447 and 319; then 255, 255 (steps of 448, 320, 256, 256 tokens); the last chunk,
// which the prompt's end cuts, does not move.
TEST(StepBudgetTable, TimeCutChunksEndTheStepOnTheAlignment) {
  EngineConfig c = budget_config();
  c.step_token_align = 64;
  Harness h(c, attention_model());
  h.add("D", 2, 100);
  h.walk({"D:2*"});
  h.add("L", 1300, 1);
  h.walk({"D:1* L:447", "D:1* L:319", "D:1* L:255", "D:1* L:255", "D:1* L:24*"});
}

// max_step_ms 0 turns the time budget off.
TEST(StepBudgetTable, ZeroMaxStepMsIsTokenBudgetOnly) {
  EngineConfig c = budget_config();
  c.max_step_ms = 0;
  Harness h(c, attention_model());
  h.add("D", 2, 100);
  h.walk({"D:2*"});
  h.add("L", 1500, 1);
  h.walk({"D:1* L:999", "D:1* L:501*"});
}

// A running background prefill yields to an urgent arrival: the urgent prompt is
// admitted first and the background chunk gets what is left (before, the
// background chunk took the whole budget and the urgent request waited for it).
TEST(StepBudgetTable, BackgroundPrefillYieldsToUrgentArrival) {
  EngineConfig c;
  c.max_batched_tokens = 1000;
  Harness h(c, StepCostModel{});
  h.add("B", 3000, 1, kPriorityBackground);
  h.walk({"B:1000"});
  h.add("U", 50, 2, kPriorityUrgent);
  h.walk({
      "U:50* B:950",
      "U:1* B:999",
      "B:51*",
  });
}

// Equal priorities keep the old order: the running prefill first.
TEST(StepBudgetTable, EqualPriorityPrefillKeepsItsTurn) {
  EngineConfig c;
  c.max_batched_tokens = 1000;
  Harness h(c, StepCostModel{});
  h.add("A", 1500, 1);
  h.walk({"A:1000"});
  h.add("B", 50, 1);
  h.walk({"A:500* B:50*"});
}

TEST(StepCost, AttentionPairs) {
  EXPECT_EQ(attention_pairs(0, 1, 0), 1.0);
  EXPECT_EQ(attention_pairs(0, 4, 0), 10.0);              // 1 + 2 + 3 + 4
  EXPECT_EQ(attention_pairs(100, 2, 0), 101.0 + 102.0);
  EXPECT_EQ(attention_pairs(0, 6, 3), 1.0 + 2 + 3 + 3 + 3 + 3);
  EXPECT_EQ(attention_pairs(2, 3, 3), 3.0 + 3 + 3);       // positions 2..4, all clipped
  EXPECT_EQ(attention_pairs(0, 2, 3), 3.0);               // inside the window
  EXPECT_EQ(attention_pairs(5, 0, 0), 0.0);
}

TEST(StepCost, ChunkCostGrowsWithTokensAndContext) {
  StepCostModel m = attention_model();
  m.ctx_ms = 1e-4;
  m.tile_tokens = 42;
  m.window = 4096;
  m.window_pair_ms = 2e-5;
  m.window_ctx_ms = 1e-4;
  for (int64_t start : {0, 100, 30000}) {
    double last = 0.0;
    for (int64_t n = 1; n <= 300; ++n) {
      const double ms = m.chunk_ms(start, n);
      ASSERT_GT(ms, last) << "start " << start << " n " << n;
      last = ms;
    }
  }
  EXPECT_GT(m.chunk_ms(30000, 100), 10 * m.chunk_ms(100, 100));  // deep context costs far more
  StepBudget b;
  b.set_model(m);
  for (double ms : {0.5, 3.0, 20.0}) {
    const int32_t n = b.max_tokens(30000, 5000, ms);
    EXPECT_LE(m.chunk_ms(30000, n), ms);
    EXPECT_GT(m.chunk_ms(30000, n + 1), ms);
  }
  EXPECT_EQ(b.max_tokens(0, 0, 100.0), 0);
}

// The K/V read terms by hand: a chunk reads its keys once per tile of
// tile_tokens queries, rounded up (a decode token reads its context once), and
// the sliding-window layers read and pair with at most `window` keys.
TEST(StepCost, KeyReadTermsByHand) {
  StepCostModel m;
  m.token_ms = 1.0;
  m.ctx_ms = 0.5;
  m.tile_tokens = 4;
  EXPECT_EQ(m.chunk_ms(99, 1), 1.0 + 0.5 * 100);      // a decode token: its 100 keys, once
  EXPECT_EQ(m.chunk_ms(96, 4), 4.0 + 0.5 * 100);      // one full tile
  EXPECT_EQ(m.chunk_ms(95, 5), 5.0 + 2 * 0.5 * 100);  // a tile and one query more: two reads
  m.ctx_ms = 0.0;
  m.window = 64;
  m.window_ctx_ms = 0.25;
  EXPECT_EQ(m.chunk_ms(999, 1), 1.0 + 0.25 * 64);  // 1000 keys of context, 64 in the window
  EXPECT_EQ(m.chunk_ms(9, 1), 1.0 + 0.25 * 10);    // all inside the window
  m.window_ctx_ms = 0.0;
  m.window_pair_ms = 0.5;
  EXPECT_EQ(m.chunk_ms(999, 2), 2.0 + 0.5 * 2 * 64);  // 2 queries x 64 keys
}

TEST(StepCost, ObserveMovesTheScalesWithinBounds) {
  StepBudget b;
  b.set_model(attention_model());
  EXPECT_EQ(b.scale(false), 1.0);
  EXPECT_EQ(b.scale(true), StepBudget::kColdMargin);  // nothing measured: the prior, with the margin
  b.observe(10.0, 20.0, /*mixed=*/false);  // the first measurement replaces the prior
  EXPECT_NEAR(b.scale(false), 2.0, 1e-12);
  EXPECT_NEAR(b.scale(true), 2.0 * StepBudget::kColdMargin, 1e-12);  // mixed steps start from it
  b.observe(10.0, 10.0, false);
  EXPECT_NEAR(b.scale(false), 0.7 * 2.0 + 0.3 * 1.0, 1e-12);
  b.observe(0.5, 100.0, false);  // estimates under 1 ms are noise
  EXPECT_NEAR(b.scale(false), 1.7, 1e-12);
  b.observe(10.0, 30.0, /*mixed=*/true);
  EXPECT_NEAR(b.scale(true), 3.0 * StepBudget::kColdMargin, 1e-12);
  EXPECT_NEAR(b.scale(false), 1.7, 1e-12);  // kept apart
  for (int i = 1; i < StepBudget::kWarmupSteps; ++i) b.observe(10.0, 30.0, true);
  EXPECT_NEAR(b.scale(true), 3.0, 1e-12);  // warmed up: no margin
  // Ratios are clamped before they are averaged: one outlier moves the scale by
  // at most kAlphaUp of the way to a bound, and many reach it (in the limit).
  b.observe(10.0, 1e6, true);
  EXPECT_NEAR(b.scale(true), 0.4 * 3.0 + 0.6 * StepBudget::kMaxScale, 1e-12);
  b.observe(10.0, 30.0, true);  // shorter than the scale: moves by kAlpha
  EXPECT_NEAR(b.scale(true), 0.7 * (0.4 * 3.0 + 0.6 * StepBudget::kMaxScale) + 0.3 * 3.0, 1e-12);
  for (int i = 0; i < 100; ++i) b.observe(10.0, 1000.0, true);
  EXPECT_NEAR(b.scale(true), StepBudget::kMaxScale, 1e-9);
  EXPECT_LE(b.scale(true), StepBudget::kMaxScale);
  for (int i = 0; i < 100; ++i) b.observe(10.0, 0.01, true);
  EXPECT_NEAR(b.scale(true), StepBudget::kMinScale, 1e-9);
  EXPECT_GE(b.scale(true), StepBudget::kMinScale);
}

}  // namespace
}  // namespace kr
