// The engine on the real tiny Llama (CPU backend): with temperature 0 a
// request's tokens must be bit-identical whether it runs alone or among 63
// others, and also when a small KV cache forces preemptions (recompute).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
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

// Runs every prompt through one engine and returns each request's tokens.
// Preemptions counted by the engine, read back from the Prometheus text.
double preemptions(const Metrics& m) {
  const std::string text = m.render_prometheus();
  const std::string name = "krserve_num_preemptions_total{";
  const size_t pos = text.find("\n" + name);
  if (pos == std::string::npos) return -1;
  const size_t end = text.find('\n', pos + 1);
  const std::string line = text.substr(pos + 1, end - pos - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

std::map<RequestId, std::vector<int32_t>> run_all(ForwardRunner* runner, const EngineConfig& config,
                                                  const std::vector<std::vector<int32_t>>& prompts,
                                                  int32_t gen_len, double* num_preemptions) {
  SteadyClock clock;
  Metrics metrics(&clock, MetricsOptions{});
  Engine engine(runner, config, &clock, &metrics);
  std::mutex mu;
  std::condition_variable cv;
  std::map<RequestId, std::vector<int32_t>> out;
  size_t finished = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationRequest r;
    r.id = static_cast<RequestId>(i);
    r.prompt_ids = prompts[i];
    r.max_tokens = gen_len;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    r.on_event = [&](TokenEvent&& ev) {
      std::lock_guard<std::mutex> lock(mu);
      for (const SampledToken& t : ev.tokens) out[ev.request_id].push_back(t.id);
      if (ev.finished) {
        EXPECT_EQ(ev.finish_reason, FinishReason::kLength) << ev.error.to_string();
        ++finished;
        cv.notify_all();
      }
    };
    EXPECT_TRUE(engine.submit(std::move(r)).ok());
  }
  engine.start();
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return finished == prompts.size(); }));
  lock.unlock();
  engine.stop(0);
  EXPECT_EQ(engine.num_free_blocks(), runner->num_kv_blocks());
  *num_preemptions = preemptions(metrics);
  return out;
}

TEST(EngineTinyLlama, GreedyTokensDoNotDependOnBatchOrPreemption) {
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> prompts(64);
  for (auto& p : prompts) {
    p.resize(2 + rng() % 20);
    for (auto& t : p) t = static_cast<int32_t>(rng() % 128000);
  }
  const int32_t gen_len = 5;

  auto runner = make_runner(0);
  ASSERT_NE(runner, nullptr);
  EngineConfig alone;
  alone.scheduler_on = false;  // one request at a time
  alone.max_batched_tokens = 512;
  double n_preempted = 0;
  const auto ref = run_all(runner.get(), alone, prompts, gen_len, &n_preempted);
  ASSERT_EQ(ref.size(), prompts.size());

  EngineConfig together;
  together.admissions_per_step = 64;
  together.max_num_seqs = 64;
  together.max_batched_tokens = 256;  // chunked prefill as well
  together.window_ms = 0;
  EXPECT_EQ(run_all(runner.get(), together, prompts, gen_len, &n_preempted), ref);
  EXPECT_EQ(n_preempted, 0);

  // A cache of 128 tokens (32 blocks) for 64 sequences of up to 26 tokens: preemptions.
  auto small = make_runner(128);
  ASSERT_NE(small, nullptr);
  ASSERT_LT(small->num_kv_blocks(), 64);
  EXPECT_EQ(run_all(small.get(), together, prompts, gen_len, &n_preempted), ref);
  EXPECT_GT(n_preempted, 0);
}

}  // namespace
}  // namespace kr
