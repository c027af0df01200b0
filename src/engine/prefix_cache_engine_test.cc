// Prefix caching through the Engine and its thread, over the FakeRunner: many
// requests racing for a prefix that is still being computed (submitted before
// the engine starts, so the first step sees them all: deterministic), a
// cancelled computer, cache_salt isolation, what the events and the metrics
// report.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "engine/fake_runner_for_test.h"
#include "metrics/metrics.h"

namespace kr {
namespace {

struct Collector {
  struct Result {
    std::vector<int32_t> tokens;
    bool finished = false;
    FinishReason reason = FinishReason::kNone;
    int32_t cached_tokens = -1;
  };
  std::function<void(TokenEvent&&)> sink() {
    return [this](TokenEvent&& ev) {
      std::lock_guard<std::mutex> lock(mu);
      Result& r = results[ev.request_id];
      for (const SampledToken& t : ev.tokens) r.tokens.push_back(t.id);
      r.cached_tokens = ev.cached_tokens;
      if (ev.finished) {
        r.finished = true;
        r.reason = ev.finish_reason;
        ++finished;
      }
      cv.notify_all();
    };
  }
  bool wait_finished(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return finished >= n; });
  }
  Result get(RequestId id) {
    std::lock_guard<std::mutex> lock(mu);
    return results[id];
  }
  std::mutex mu;
  std::condition_variable cv;
  std::map<RequestId, Result> results;
  size_t finished = 0;
};

GenerationRequest request(RequestId id, std::vector<int32_t> prompt, int32_t max_tokens, Collector* c,
                          std::string salt = "") {
  GenerationRequest r;
  r.id = id;
  r.prompt_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.cache_salt = std::move(salt);
  r.on_event = c->sink();
  return r;
}

std::vector<int32_t> tokens_from(int32_t first, int32_t n) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < n; ++i) v.push_back(first + i);
  return v;
}

double metric(const Metrics& m, const std::string& name) {
  const std::string text = m.render_prometheus();
  const size_t pos = text.find("\n" + name + "{");
  if (pos == std::string::npos) return -1;
  const size_t end = text.find('\n', pos + 1);
  const std::string line = text.substr(pos + 1, end - pos - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

// 32 requests (the n choices of one request look the same) with one 64-token
// prefix arrive together: the first computes it, the others wait for its
// blocks and compute only their own tails. Every token fed is counted.
TEST(PrefixCacheEngine, RacersComputeTheSharedPrefixOnce) {
  FakeRunner runner(4, 256, 4096);
  EngineConfig config;
  config.max_batched_tokens = 32;  // the prefix takes three steps
  config.admissions_per_step = 64;
  config.max_num_seqs = 64;
  SteadyClock clock;
  Metrics metrics(&clock, MetricsOptions{});
  Collector c;
  {
    Engine engine(&runner, config, &clock, &metrics);
    const std::vector<int32_t> shared = tokens_from(100, 64);
    std::map<RequestId, std::vector<int32_t>> prompts;
    for (RequestId id = 1; id <= 32; ++id) {
      std::vector<int32_t> p = shared;
      for (int32_t t : {7, static_cast<int32_t>(id), 9}) p.push_back(t);
      prompts[id] = p;
      ASSERT_TRUE(engine.submit(request(id, p, 4, &c)).ok());
    }
    engine.start();
    ASSERT_TRUE(c.wait_finished(32));
    for (const auto& [id, p] : prompts) {
      const Collector::Result r = c.get(id);
      EXPECT_EQ(r.tokens, fake_continuation(p, 4)) << id;
      EXPECT_EQ(r.cached_tokens, id == 1 ? 0 : 64) << id;
    }
    engine.stop(0);
    EXPECT_EQ(engine.num_free_blocks(), 256);
  }
  // 67 for the first, 3 for each other prompt, 3 decode tokens each.
  EXPECT_EQ(runner.tokens_fed.load(), 67 + 31 * 3 + 32 * 3);
  EXPECT_EQ(metric(metrics, "krserve_prefix_cache_queries_total"), 32 * 67);
  EXPECT_EQ(metric(metrics, "krserve_prefix_cache_hits_total"), 31 * 64);
}

// The request computing a prefix is cancelled while others wait for it: one of
// them takes over, and everything ends correct with all blocks back.
TEST(PrefixCacheEngine, CancellingTheComputerLetsAWaiterTakeOver) {
  FakeRunner runner(4, 128, 4096);
  runner.step_delay_us = 2000;
  EngineConfig config;
  config.max_batched_tokens = 8;  // the 96-token prefix takes twelve steps
  SteadyClock clock;
  Collector c;
  Engine engine(&runner, config, &clock, nullptr);
  const std::vector<int32_t> shared = tokens_from(300, 96);
  std::vector<int32_t> pb = shared, pc = shared;
  pb.push_back(1);
  pc.push_back(2);
  ASSERT_TRUE(engine.submit(request(1, shared, 3, &c)).ok());
  ASSERT_TRUE(engine.submit(request(2, pb, 3, &c)).ok());
  ASSERT_TRUE(engine.submit(request(3, pc, 3, &c)).ok());
  engine.start();
  while (runner.steps.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  engine.cancel(1);
  ASSERT_TRUE(c.wait_finished(3));
  EXPECT_EQ(c.get(1).reason, FinishReason::kCancelled);
  EXPECT_EQ(c.get(2).tokens, fake_continuation(pb, 3));
  EXPECT_EQ(c.get(3).tokens, fake_continuation(pc, 3));
  EXPECT_GT(c.get(2).cached_tokens + c.get(3).cached_tokens, 0);  // the part computed before the cancel, or the other's
  engine.stop(0);
  EXPECT_EQ(engine.num_free_blocks(), 128);
}

TEST(PrefixCacheEngine, CacheSaltsIsolateTenants) {
  FakeRunner runner(4, 128, 4096);
  EngineConfig config;
  SteadyClock clock;
  Collector c;
  Engine engine(&runner, config, &clock, nullptr);
  engine.start();
  const std::vector<int32_t> p = tokens_from(40, 33);
  auto run = [&](RequestId id, const std::string& salt) {
    EXPECT_TRUE(engine.submit(request(id, p, 2, &c, salt)).ok());
    EXPECT_TRUE(c.wait_finished(static_cast<size_t>(id)));
    EXPECT_EQ(c.get(id).tokens, fake_continuation(p, 2));
    return c.get(id).cached_tokens;
  };
  EXPECT_EQ(run(1, "tenant-a"), 0);
  EXPECT_EQ(run(2, "tenant-b"), 0);   // same tokens, other salt: nothing shared
  EXPECT_EQ(run(3, ""), 0);           // no salt is a salt of its own
  EXPECT_EQ(run(4, "tenant-a"), 32);  // same salt: shared
  EXPECT_EQ(run(5, ""), 32);
  GenerationRequest bad = request(6, p, 1, &c, std::string(kMaxCacheSaltBytes + 1, 's'));
  EXPECT_EQ(engine.submit(std::move(bad)).code(), StatusCode::kInvalidArgument);
  engine.stop(0);
}

TEST(PrefixCacheEngine, OffComputesEverything) {
  FakeRunner runner(4, 128, 4096);
  EngineConfig config;
  config.prefix_caching = false;
  SteadyClock clock;
  Collector c;
  Engine engine(&runner, config, &clock, nullptr);
  engine.start();
  const std::vector<int32_t> p = tokens_from(40, 33);
  for (RequestId id = 1; id <= 2; ++id) {
    ASSERT_TRUE(engine.submit(request(id, p, 2, &c)).ok());
    ASSERT_TRUE(c.wait_finished(static_cast<size_t>(id)));
    EXPECT_EQ(c.get(id).cached_tokens, 0);
  }
  engine.stop(0);
  EXPECT_EQ(runner.tokens_fed.load(), 2 * (33 + 1));
}

}  // namespace
}  // namespace kr
