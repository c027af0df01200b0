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
    if (measured_factor > 0) {
      const double unscaled = sched.last_estimate_ms() / sched.step_budget().scale();
      sched.on_step_timed(measured_factor * unscaled);
    }
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
  return c;
}

// While D decodes, L's chunks are cut to what 10 ms leave after the step's 1 ms
// and D's token: 0.01 n + 1e-5 (n s + n (n + 1) / 2) <= 8.99, so they shrink as
// L's context s grows (672 at s = 0, 471 at s = 672). Counting tokens only gives
// 999-token chunks; leaving out the attention pairs, 899 every step.
TEST(StepBudgetTable, ChunksShrinkWithTheContextWhileDecodesRun) {
  Harness h(budget_config(), attention_model());
  h.add("D", 2, 100);
  h.walk({"D:2*"});
  h.add("L", 1500, 1);
  h.walk({
      "D:1* L:672",   // admitted: 8.99 ms of chunk at context 0
      "D:1* L:471",   // at context 672 the same time buys fewer tokens
      "D:1* L:357*",  // the rest (it fits)
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
// it (2.5 ms), so a prefill always progresses: here D's token reads 1001 keys at
// 0.01 ms each (11 ms with the step).
TEST(StepBudgetTable, FirstChunkProgressesWhenDecodesFillTheStep) {
  StepCostModel m = attention_model();
  m.ctx_ms = 0.01;
  m.tile_tokens = 64;
  Harness h(budget_config(), m);
  h.add("D", 1000, 100);
  h.walk({"D:1000*"});
  h.add("L", 500, 1);
  h.walk({"D:1* L:82", "D:1* L:64"});
}

// Steps measured at twice their estimate: the budget's scale moves to 1.2 after
// one step (a fifth of the way), and the next chunk fits 10 / 1.2 ms: 391 tokens
// instead of 471.
TEST(StepBudgetTable, MeasuredStepTimesCorrectTheEstimate) {
  Harness h(budget_config(), attention_model());
  h.add("D", 2, 100);
  h.walk({"D:2*"});
  h.add("L", 1500, 1);
  h.measured_factor = 2.0;
  h.walk({"D:1* L:672", "D:1* L:391"});
  EXPECT_NEAR(h.sched.step_budget().scale(), 0.8 * 1.2 + 0.2 * 2.0, 1e-9);
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

TEST(StepCost, ObserveMovesTheScaleWithinBounds) {
  StepBudget b;
  b.set_model(attention_model());
  b.observe(10.0, 20.0);
  EXPECT_NEAR(b.scale(), 1.2, 1e-12);
  b.observe(0.5, 100.0);  // estimates under 1 ms are noise
  EXPECT_NEAR(b.scale(), 1.2, 1e-12);
  for (int i = 0; i < 100; ++i) b.observe(10.0, 1000.0);
  EXPECT_EQ(b.scale(), StepBudget::kMaxScale);
  for (int i = 0; i < 100; ++i) b.observe(10.0, 0.01);
  EXPECT_EQ(b.scale(), StepBudget::kMinScale);
}

}  // namespace
}  // namespace kr
