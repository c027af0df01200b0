// Prefix caching below the engine: the block pool's names and LRU, the chained
// hashes, and the scheduler with a PrefixCache (and a host tier), driven step by
// step like the engine drives it, over the FakeRunner (its KV holds token ids,
// so a wrong or torn shared block changes the tokens).
#include "engine/prefix_cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "engine/fake_runner_for_test.h"
#include "engine/kv_host_tier.h"
#include "engine/scheduler.h"

namespace kr {
namespace {

constexpr int64_t kMs = 1'000'000;

BlockHasher test_hasher() { return BlockHasher(SipKey{0x1234, 0x5678}); }

BlockHash hash_n(uint64_t n) { return BlockHash{n, ~n}; }

struct EvictLog final : KvEvictionListener {
  void on_evict(int32_t block, const BlockHash& hash) override { evicted.emplace_back(block, hash); }
  std::vector<std::pair<int32_t, BlockHash>> evicted;
};

TEST(KvBlockManagerNames, FreedNamedBlocksStayFindableUntilTheLruTakesThem) {
  KvBlockManager m(4, 2);
  EvictLog log;
  m.set_eviction_listener(&log);
  BlockTable a;
  ASSERT_TRUE(m.allocate(&a, 6));  // blocks 0 1 2
  ASSERT_TRUE(m.name(a[0], hash_n(10)));
  ASSERT_TRUE(m.name(a[1], hash_n(11)));
  EXPECT_FALSE(m.name(a[1], hash_n(12)));  // named already
  m.free(&a);
  EXPECT_EQ(m.num_free_blocks(), 4);  // named free blocks count as free
  EXPECT_EQ(m.num_free_named_blocks(), 2);
  EXPECT_EQ(m.find(hash_n(10)), 0);
  EXPECT_EQ(m.usage(), 0.0);
  // Unnamed blocks go first, then the LRU: the table's tail (block 1) was freed first.
  BlockTable b;
  ASSERT_TRUE(m.allocate(&b, 6));
  EXPECT_EQ(log.evicted.size(), 1u);
  EXPECT_EQ(log.evicted[0].first, 1);
  EXPECT_EQ(log.evicted[0].second, hash_n(11));
  EXPECT_EQ(m.find(hash_n(11)), -1);
  EXPECT_EQ(m.find(hash_n(10)), 0);  // still there
  EXPECT_EQ(m.check_consistency(), "");
  // A free named block can be taken again; it leaves the free pool.
  m.share(0);
  EXPECT_EQ(m.refcount(0), 1);
  EXPECT_EQ(m.num_free_blocks(), 0);
  EXPECT_FALSE(m.name(b[0], hash_n(10)));  // a second block cannot take a name in use
  m.free(&b);
  BlockTable only0{0};
  m.free(&only0);
  EXPECT_EQ(m.num_free_blocks(), 4);
  EXPECT_EQ(m.check_consistency(), "");
}

TEST(BlockHasher, ChainsOverParentAndSalt) {
  const BlockHasher h = test_hasher();
  const std::vector<int32_t> t = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<BlockHash> a, b, salted;
  h.extend(t, 4, h.root({}), &a);
  h.extend(t, 4, h.root({}), &b);
  h.extend(t, 4, h.root({"tenant-1", 0}), &salted);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], salted[0]);
  EXPECT_NE(a[1], salted[1]);
  EXPECT_NE(h.root({"x", 0}), h.root({"y", 0}));
  EXPECT_NE(h.root({"", 0}), h.root({"", 1}));  // adapters will separate too
  // The same four tokens after a different first block: a different name.
  const std::vector<int32_t> u = {9, 2, 3, 4, 5, 6, 7, 8};
  std::vector<BlockHash> c;
  h.extend(u, 4, h.root({}), &c);
  EXPECT_NE(a[1], c[1]);
  // extend only appends what is missing; a partial block gets no hash.
  std::vector<BlockHash> d;
  h.extend(std::span<const int32_t>(t.data(), 7), 4, h.root({}), &d);
  EXPECT_EQ(d.size(), 1u);
}

// Drives scheduler + prefix cache (+ host tier) + FakeRunner the way the engine does.
struct Sim {
  Sim(EngineConfig c, int32_t num_blocks, int32_t block_size, int32_t host_slots = 0)
      : config(c), runner(block_size, num_blocks, 1 << 20), blocks(num_blocks, block_size) {
    if (host_slots > 0) {
      EXPECT_TRUE(runner.init_host_tier(host_slots).ok());
      host = std::make_unique<KvHostTier>(&runner, &blocks, 8);
    }
    cache = std::make_unique<PrefixCache>(&blocks, host.get(), test_hasher());
    sched = std::make_unique<Scheduler>(config, &blocks, cache.get());
  }

  Sequence* add(const std::string& name, std::vector<int32_t> prompt, int32_t max_tokens, std::string salt = "",
                int32_t priority = 0) {
    auto s = std::make_unique<Sequence>();
    s->request.id = next_id++;
    s->request.max_tokens = max_tokens;
    s->request.priority = priority;
    s->request.arrival_ns = now_ns;
    s->request.cache_salt = std::move(salt);
    s->tokens = prompt;
    s->num_prompt_tokens = static_cast<int32_t>(prompt.size());
    names[s.get()] = name;
    prompts[s.get()] = std::move(prompt);
    Sequence* raw = s.get();
    seqs.push_back(std::move(s));
    sched->add(raw);
    return raw;
  }

  // One step; returns e.g. "A:8 B:1*". Checks every finished sequence's tokens.
  std::string step() {
    now_ns += kMs;
    sched->schedule(now_ns, &out);
    preempted += static_cast<int64_t>(out.preempted.size());
    if (host) host->flush();
    std::string d;
    std::vector<SeqStep> steps;
    for (const ScheduledSeq& ss : out.seqs) {
      if (!d.empty()) d += ' ';
      d += names[ss.seq] + ":" + std::to_string(ss.num_tokens) + (ss.sample ? "*" : "");
      SeqStep st;
      st.seq_id = ss.seq->id();
      st.tokens = std::span<const int32_t>(ss.seq->tokens.data() + ss.seq->num_computed, static_cast<size_t>(ss.num_tokens));
      st.start_pos = ss.seq->num_computed;
      st.block_table = ss.seq->block_table;
      st.sample = ss.sample;
      steps.push_back(st);
    }
    if (out.empty()) return d;
    std::vector<SampledToken> sampled;
    EXPECT_TRUE(runner.step(steps, &sampled).ok());
    sched->on_step_done(out);
    size_t j = 0;
    for (const ScheduledSeq& ss : out.seqs) {
      if (!ss.sample) continue;
      Sequence* s = ss.seq;
      s->tokens.push_back(sampled[j++].id);
      if (s->num_output_tokens() >= s->request.max_tokens) finish(s);
    }
    return d;
  }

  void finish(Sequence* s) {
    const std::vector<int32_t>& p = prompts[s];
    const std::vector<int32_t> got(s->tokens.begin() + static_cast<std::ptrdiff_t>(p.size()), s->tokens.end());
    EXPECT_EQ(got, fake_continuation(p, static_cast<int32_t>(got.size()))) << names[s];
    ++finished;
    sched->remove(s);
  }

  void run_until_idle(int max_steps = 100000) {
    for (int i = 0; i < max_steps && (sched->num_running() > 0 || sched->num_waiting() > 0); ++i) step();
  }

  EngineConfig config;
  FakeRunner runner;
  KvBlockManager blocks;
  std::unique_ptr<KvHostTier> host;
  std::unique_ptr<PrefixCache> cache;
  std::unique_ptr<Scheduler> sched;
  SchedulerOutput out;
  int64_t now_ns = 1000 * kMs;
  RequestId next_id = 1;
  int finished = 0;
  int64_t preempted = 0;
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::map<const Sequence*, std::string> names;
  std::map<const Sequence*, std::vector<int32_t>> prompts;
};

std::vector<int32_t> iota_tokens(int32_t n, int32_t first = 100) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = first + i;
  return v;
}

TEST(PrefixCacheScheduler, RepeatStartsAfterTheCachedPrefixAndOnlyUncachedTokensCount) {
  EngineConfig c;
  c.max_batched_tokens = 8;
  Sim sim(c, 32, 4);
  sim.add("A", iota_tokens(20), 1);
  EXPECT_EQ(sim.step(), "A:8");
  EXPECT_EQ(sim.step(), "A:8");
  EXPECT_EQ(sim.step(), "A:4*");
  Sequence* b = sim.add("B", iota_tokens(20), 1);
  EXPECT_EQ(sim.step(), "B:4*");  // 16 cached; the last block and token computed
  EXPECT_EQ(b->num_cached_tokens, 16);
  // A prompt of whole blocks: the last block is recomputed, so the last token gets its logits.
  Sequence* c16 = sim.add("C", iota_tokens(16), 1);
  EXPECT_EQ(sim.step(), "C:4*");
  EXPECT_EQ(c16->num_cached_tokens, 12);
  // A longer prompt with the same start: all of A's prompt (5 computed blocks) hits.
  Sequence* d = sim.add("D", iota_tokens(28), 1);
  EXPECT_EQ(sim.step(), "D:8*");
  EXPECT_EQ(d->num_cached_tokens, 20);
  EXPECT_EQ(sim.finished, 4);
  EXPECT_EQ(sim.cache->stats().queries, 20 + 20 + 16 + 28);
  EXPECT_EQ(sim.cache->stats().hits, 16 + 12 + 20);
  EXPECT_EQ(sim.blocks.check_consistency(), "");
}

TEST(PrefixCacheScheduler, GeneratedBlocksAreCachedForTheNextTurn) {
  EngineConfig c;
  Sim sim(c, 32, 4);
  Sequence* a = sim.add("A", iota_tokens(6), 7);
  sim.run_until_idle();
  // The next turn: the whole conversation so far plus a new message.
  std::vector<int32_t> turn2 = a->tokens;  // 6 prompt + 7 generated: positions [0, 12) were computed
  for (int32_t t : {500, 501, 502}) turn2.push_back(t);
  Sequence* b = sim.add("B", turn2, 1);
  sim.run_until_idle();
  EXPECT_EQ(b->num_cached_tokens, 12);
}

TEST(PrefixCacheScheduler, RacersWaitForTheBlocksBeingComputed) {
  EngineConfig c;
  c.max_batched_tokens = 16;
  Sim sim(c, 64, 4);
  std::vector<int32_t> shared = iota_tokens(24);
  std::vector<int32_t> p1 = shared, p2 = shared;
  p1.push_back(1);
  p2.push_back(2);
  sim.add("A", p1, 1);
  sim.add("B", p2, 1);  // same 24-token prefix, arrives with A
  EXPECT_EQ(sim.step(), "A:16");   // B waits: its first block is A's to compute
  EXPECT_EQ(sim.step(), "A:9*");   // A's prefix is complete after this step
  EXPECT_EQ(sim.step(), "B:1*");   // B takes the 24 tokens
  EXPECT_EQ(sim.runner.tokens_fed.load(), 26);  // the shared prefix was computed once
  EXPECT_EQ(sim.cache->num_claims(), 0);
}

TEST(PrefixCacheScheduler, SaltsNeverShare) {
  EngineConfig c;
  Sim sim(c, 64, 4);
  sim.add("A", iota_tokens(17), 1, "alice");
  sim.run_until_idle();
  Sequence* b = sim.add("B", iota_tokens(17), 1, "bob");
  Sequence* u = sim.add("U", iota_tokens(17), 1, "");
  sim.run_until_idle();
  Sequence* a2 = sim.add("A2", iota_tokens(17), 1, "alice");
  sim.run_until_idle();
  EXPECT_EQ(b->num_cached_tokens, 0);
  EXPECT_EQ(u->num_cached_tokens, 0);
  EXPECT_EQ(a2->num_cached_tokens, 16);
}

TEST(PrefixCacheScheduler, HostTierBringsEvictedBlocksBack) {
  EngineConfig c;
  Sim sim(c, 8, 4, /*host_slots=*/16);  // 32 GPU token slots
  sim.add("A", iota_tokens(24), 1);
  sim.run_until_idle();
  // B fills the GPU pool with other blocks: A's blocks are evicted into the host tier.
  sim.add("B", iota_tokens(30, 5000), 1);
  sim.run_until_idle();
  Sequence* a2 = sim.add("A2", iota_tokens(24), 2);
  sim.run_until_idle();
  EXPECT_EQ(a2->num_cached_tokens, 20);
  EXPECT_GT(sim.host->stats().blocks_reloaded, 0);
  EXPECT_GT(sim.cache->stats().host_hits, 0);
  EXPECT_EQ(sim.finished, 3);  // tokens checked against the continuation in finish()
  EXPECT_EQ(sim.host->check_consistency(), "");
}

// 10,000 random requests over a small pool: shared prefixes, salts, evictions
// into a small host tier, preemptions (priorities), cancellations. Every
// finished request's tokens are checked; at the end every block is free
// (named or not) with count zero, no claim is left, and the host tier holds
// no slot.
TEST(PrefixCacheScheduler, TenThousandRandomRequestsLeaveNothingBehind) {
  EngineConfig c;
  c.max_batched_tokens = 48;
  c.max_num_seqs = 12;
  c.admissions_per_step = 6;
  const int32_t bs = 4;
  Sim sim(c, 40, bs, /*host_slots=*/24);
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> stems;
  for (int i = 0; i < 6; ++i) stems.push_back(iota_tokens(8 + static_cast<int32_t>(rng() % 20), 1000 * (i + 1)));
  const char* salts[] = {"", "", "", "t1", "t2"};
  int added = 0, cancelled = 0;
  std::vector<Sequence*> live;
  while (added < 10000 || sim.sched->num_running() + sim.sched->num_waiting() > 0) {
    for (int k = 0; k < 3 && added < 10000 && sim.sched->num_waiting() < 24; ++k, ++added) {
      std::vector<int32_t> p = stems[rng() % stems.size()];
      p.resize(static_cast<size_t>(1 + rng() % p.size()));
      const int32_t extra = static_cast<int32_t>(rng() % 12);
      for (int32_t i = 0; i < extra; ++i) p.push_back(static_cast<int32_t>(3 + rng() % 50));
      const int32_t priority = static_cast<int32_t>(rng() % 3) - 1;
      std::string name = std::to_string(added);  // ("r" + to_string trips g++ 12's -Wrestrict)
      live.push_back(sim.add(name, p, 1 + static_cast<int32_t>(rng() % 10), salts[rng() % 5], priority));
    }
    if (rng() % 8 == 0 && !live.empty()) {  // cancel one, wherever it is
      const size_t i = rng() % live.size();
      if (live[i]->state != SeqState::kFinished) {
        sim.sched->remove(live[i]);
        ++cancelled;
      }
    }
    sim.step();
    std::erase_if(live, [](const Sequence* s) { return s->state == SeqState::kFinished; });
    ASSERT_EQ(sim.blocks.check_consistency(), "");
    if (sim.seqs.size() > 512) {  // keep memory flat: drop finished sequences
      std::erase_if(sim.seqs, [&](const std::unique_ptr<Sequence>& s) {
        if (s->state != SeqState::kFinished) return false;
        sim.names.erase(s.get());
        sim.prompts.erase(s.get());
        return true;
      });
    }
  }
  std::printf("finished %d, cancelled %d, preempted %lld, hit tokens %lld of %lld (host %lld), blocks reloaded %lld\n",
              sim.finished, cancelled, static_cast<long long>(sim.preempted),
              static_cast<long long>(sim.cache->stats().hits), static_cast<long long>(sim.cache->stats().queries),
              static_cast<long long>(sim.cache->stats().host_hits),
              static_cast<long long>(sim.host->stats().blocks_reloaded));
  EXPECT_EQ(sim.finished + cancelled, 10000);
  EXPECT_GT(sim.cache->stats().hits, 0);
  EXPECT_GT(sim.cache->stats().host_hits, 0);
  EXPECT_GT(sim.host->stats().blocks_reloaded, 0);
  EXPECT_GT(sim.preempted, 0);
  EXPECT_EQ(sim.blocks.num_free_blocks(), sim.blocks.num_blocks());
  for (int32_t b = 0; b < sim.blocks.num_blocks(); ++b) ASSERT_EQ(sim.blocks.refcount(b), 0) << b;
  EXPECT_EQ(sim.blocks.check_consistency(), "");
  EXPECT_EQ(sim.cache->num_claims(), 0);
  EXPECT_EQ(sim.host->check_consistency(), "");
  EXPECT_GT(sim.finished, 5000);
}

}  // namespace
}  // namespace kr
