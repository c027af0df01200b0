// Prefix caching on the real tiny Llama (CPU backend): multi-turn sessions that
// share a system prompt, each turn re-sending the conversation so far. With
// temperature 0 the tokens must be bit-identical with caching off (one request
// at a time), caching on, and caching on with a KV pool too small for the
// sessions plus a host tier (evictions, reloads and preemptions).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>

#include "engine/engine.h"
#include "engine/forward_runner.h"
#include "metrics/metrics.h"

namespace kr {
namespace {

const std::string kModelDir = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";

std::unique_ptr<ForwardRunner> make_runner(int64_t max_kv_tokens) {
  ModelOptions opt;
  opt.block_size = 4;
  opt.max_tokens_per_step = 512;
  opt.max_logit_rows = 64;
  opt.max_kv_tokens = max_kv_tokens;
  auto r = make_forward_runner(kModelDir, make_cpu_backend(2, size_t{2} << 20), opt);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

double counter(const Metrics& m, const std::string& name) {
  const std::string text = m.render_prometheus();
  const size_t pos = text.find("\n" + name + "{");
  if (pos == std::string::npos) return -1;
  const size_t end = text.find('\n', pos + 1);
  const std::string line = text.substr(pos + 1, end - pos - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

struct SessionRun {
  std::vector<std::vector<int32_t>> outputs;  // [turn * sessions + session]
  double hits = 0, host_hits = 0, reloaded = 0, preemptions = 0;
};

SessionRun run_sessions(ForwardRunner* runner, const EngineConfig& config, int sessions, int turns) {
  SteadyClock clock;
  Metrics metrics(&clock, MetricsOptions{});
  Engine engine(runner, config, &clock, &metrics);
  engine.start();
  std::mt19937 rng(11);
  auto random_tokens = [&](int n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = static_cast<int32_t>(rng() % 128000);
    return v;
  };
  const std::vector<int32_t> system = random_tokens(37);
  std::vector<std::vector<int32_t>> history(static_cast<size_t>(sessions), system);
  SessionRun run;
  for (int t = 0; t < turns; ++t) {
    for (auto& h : history) {
      const auto msg = random_tokens(5 + static_cast<int>(rng() % 8));
      h.insert(h.end(), msg.begin(), msg.end());
    }
    std::mutex mu;
    std::condition_variable cv;
    std::map<RequestId, std::vector<int32_t>> out;
    size_t finished = 0;
    for (int s = 0; s < sessions; ++s) {
      GenerationRequest r;
      r.id = static_cast<RequestId>(t * 1000 + s);
      r.prompt_ids = history[static_cast<size_t>(s)];
      r.max_tokens = 6;
      r.ignore_eos = true;
      r.sampling.temperature = 0;
      r.on_event = [&](TokenEvent&& ev) {
        std::lock_guard<std::mutex> lock(mu);
        for (const SampledToken& tok : ev.tokens) out[ev.request_id].push_back(tok.id);
        if (ev.finished) {
          EXPECT_EQ(ev.finish_reason, FinishReason::kLength) << ev.error.to_string();
          ++finished;
          cv.notify_all();
        }
      };
      EXPECT_TRUE(engine.submit(std::move(r)).ok());
    }
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return finished == static_cast<size_t>(sessions); }));
    for (int s = 0; s < sessions; ++s) {
      const std::vector<int32_t>& o = out[static_cast<RequestId>(t * 1000 + s)];
      run.outputs.push_back(o);
      auto& h = history[static_cast<size_t>(s)];
      h.insert(h.end(), o.begin(), o.end());  // the answer becomes part of the next turn
    }
  }
  engine.stop(0);
  EXPECT_EQ(engine.num_free_blocks(), runner->num_kv_blocks());
  run.hits = counter(metrics, "krserve_prefix_cache_hits_total");
  run.host_hits = counter(metrics, "krserve_prefix_cache_host_hits_total");
  run.reloaded = counter(metrics, "krserve_kv_host_blocks_reloaded_total");
  run.preemptions = counter(metrics, "krserve_num_preemptions_total");
  return run;
}

TEST(PrefixCacheTinyLlama, GreedyTokensAreBitIdenticalWithCachingOnOffAndTheHostTier) {
  const int sessions = 6, turns = 4;
  auto runner = make_runner(0);
  ASSERT_NE(runner, nullptr);
  EngineConfig off;
  off.prefix_caching = false;
  off.scheduler_on = false;  // one request at a time: the reference
  const SessionRun ref = run_sessions(runner.get(), off, sessions, turns);
  ASSERT_EQ(ref.outputs.size(), static_cast<size_t>(sessions * turns));
  EXPECT_EQ(ref.hits, 0);

  EngineConfig on;
  on.admissions_per_step = 64;
  on.max_num_seqs = 64;
  on.max_batched_tokens = 48;  // chunked prefill after the cached prefix
  on.window_ms = 0;
  const SessionRun cached = run_sessions(runner.get(), on, sessions, turns);
  EXPECT_EQ(cached.outputs, ref.outputs);
  EXPECT_GT(cached.hits, 0);

  // 160 KV tokens for six sessions of up to ~110: evictions, preemptions, and a
  // host tier of 64 blocks that brings evicted prefixes back.
  auto small = make_runner(160);
  ASSERT_NE(small, nullptr);
  ASSERT_TRUE(small->init_host_tier(64).ok());
  const SessionRun host = run_sessions(small.get(), on, sessions, turns);
  std::printf("cached: %.0f hit tokens; small pool + host tier: %.0f hit tokens (%.0f from the host), %.0f blocks "
              "reloaded, %.0f preemptions\n",
              cached.hits, host.hits, host.host_hits, host.reloaded, host.preemptions);
  EXPECT_EQ(host.outputs, ref.outputs);
  EXPECT_GT(host.hits, 0);
  EXPECT_GT(host.host_hits, 0);
  EXPECT_GT(host.reloaded, 0);
  EXPECT_GT(host.preemptions, 0);
}

}  // namespace
}  // namespace kr
