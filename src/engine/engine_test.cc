#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "engine/fake_runner_for_test.h"
#include "metrics/metrics.h"

namespace kr {
namespace {

// Gathers events from the engine thread; the test thread waits on it.
struct Collector {
  struct Result {
    std::vector<int32_t> tokens;
    bool finished = false;
    FinishReason reason = FinishReason::kNone;
    Status error;
    int events = 0;
  };

  std::function<void(TokenEvent&&)> sink() {
    return [this](TokenEvent&& ev) {
      std::lock_guard<std::mutex> lock(mu);
      Result& r = results[ev.request_id];
      EXPECT_FALSE(r.finished) << "an event after the final one for " << ev.request_id;
      for (const SampledToken& t : ev.tokens) r.tokens.push_back(t.id);
      ++r.events;
      if (ev.finished) {
        r.finished = true;
        r.reason = ev.finish_reason;
        r.error = ev.error;
        EXPECT_EQ(ev.completion_tokens, static_cast<int32_t>(r.tokens.size()));
        order.push_back(ev.request_id);
      }
      cv.notify_all();
    };
  }

  bool wait_finished(size_t n, double timeout_s = 20) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return order.size() >= n; });
  }
  bool wait_tokens(RequestId id, size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return results[id].tokens.size() >= n; });
  }
  Result get(RequestId id) {
    std::lock_guard<std::mutex> lock(mu);
    return results[id];
  }

  std::mutex mu;
  std::condition_variable cv;
  std::map<RequestId, Result> results;
  std::vector<RequestId> order;
};

GenerationRequest make_request(RequestId id, std::vector<int32_t> prompt, int32_t max_tokens, Collector* c) {
  GenerationRequest r;
  r.id = id;
  r.prompt_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.on_event = c->sink();
  return r;
}

bool wait_until(const std::function<bool()>& f) {
  for (int i = 0; i < 4000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return f();
}

EngineConfig small_config() {
  EngineConfig c;
  c.window_ms = 0.5;
  c.max_batched_tokens = 64;
  c.max_num_seqs = 16;
  return c;
}

TEST(Engine, ConcurrentSubmitsGiveEachRequestItsOwnTokens) {
  FakeRunner runner(4, 40, 64);  // small cache: preemptions happen
  SteadyClock clock;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, nullptr);
  engine.start();
  std::map<RequestId, std::vector<int32_t>> expected;
  std::mutex expected_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      for (int i = 0; i < 25; ++i) {
        const RequestId id = t * 100 + i;
        std::vector<int32_t> prompt(1 + rng() % 20);
        for (auto& x : prompt) x = static_cast<int32_t>(3 + rng() % 500);
        const int32_t max_tokens = 1 + static_cast<int32_t>(rng() % 20);
        {
          std::lock_guard<std::mutex> lock(expected_mu);
          expected[id] = fake_continuation(prompt, max_tokens);
        }
        ASSERT_TRUE(engine.submit(make_request(id, prompt, max_tokens, &col)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(col.wait_finished(100));
  for (const auto& [id, want] : expected) {
    const Collector::Result r = col.get(id);
    EXPECT_EQ(r.reason, FinishReason::kLength) << id;
    EXPECT_EQ(r.tokens, want) << id;
  }
  EXPECT_GT(runner.max_seqs_in_step.load(), 1);  // it did batch
  EXPECT_TRUE(wait_until([&] { return engine.num_free_blocks() == 40; }));
  EXPECT_EQ(engine.num_running(), 0);
  EXPECT_EQ(engine.num_waiting(), 0);
}

TEST(Engine, CancelMidStreamFreesBlocks) {
  FakeRunner runner(4, 64, 1024);
  runner.step_delay_us = 1000;
  SteadyClock clock;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, nullptr);
  engine.start();
  ASSERT_TRUE(engine.submit(make_request(1, {5, 6, 7}, 200, &col)).ok());
  ASSERT_TRUE(col.wait_tokens(1, 3));
  EXPECT_LT(engine.num_free_blocks(), 64);
  engine.cancel(1);
  ASSERT_TRUE(col.wait_finished(1));
  const Collector::Result r = col.get(1);
  EXPECT_EQ(r.reason, FinishReason::kCancelled);
  EXPECT_LT(r.tokens.size(), 200u);
  EXPECT_TRUE(wait_until([&] { return engine.num_free_blocks() == 64; }));
  engine.cancel(12345);  // unknown id: no-op
}

TEST(Engine, NonFiniteLogitsFailOneRequestAlone) {
  FakeRunner runner(4, 64, 256);
  runner.make_non_finite(2);
  SteadyClock clock;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, nullptr);
  for (RequestId id = 1; id <= 3; ++id) {
    ASSERT_TRUE(engine.submit(make_request(id, {static_cast<int32_t>(id) + 10, 4}, 8, &col)).ok());
  }
  engine.start();
  ASSERT_TRUE(col.wait_finished(3));
  EXPECT_EQ(col.get(2).reason, FinishReason::kError);
  EXPECT_FALSE(col.get(2).error.ok());
  for (RequestId id : {1, 3}) {
    EXPECT_EQ(col.get(id).reason, FinishReason::kLength);
    EXPECT_EQ(col.get(id).tokens, fake_continuation({static_cast<int32_t>(id) + 10, 4}, 8));
  }
}

TEST(Engine, StopTokensMinTokensAndIgnoreEos) {
  FakeRunner runner(4, 64, 256);
  SteadyClock clock;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, nullptr);
  const std::vector<int32_t> prompt = {9, 8, 7};
  const std::vector<int32_t> cont = fake_continuation(prompt, 10);
  GenerationRequest a = make_request(1, prompt, 10, &col);
  a.stop_token_ids = {cont[2]};
  GenerationRequest b = make_request(2, prompt, 10, &col);
  b.stop_token_ids = {cont[2]};
  b.min_tokens = 5;  // the stop token at position 3 comes too early to count
  ASSERT_TRUE(engine.submit(std::move(a)).ok());
  ASSERT_TRUE(engine.submit(std::move(b)).ok());
  engine.start();
  ASSERT_TRUE(col.wait_finished(2));
  EXPECT_EQ(col.get(1).reason, FinishReason::kStop);
  EXPECT_EQ(col.get(1).tokens, std::vector<int32_t>(cont.begin(), cont.begin() + 3));
  bool stop_later = false;
  for (size_t i = 5; i < cont.size(); ++i) stop_later |= cont[i] == cont[2];
  EXPECT_EQ(col.get(2).reason, stop_later ? FinishReason::kStop : FinishReason::kLength);
  EXPECT_GE(col.get(2).tokens.size(), 6u);
}

TEST(Engine, SubmitValidates) {
  FakeRunner runner(4, 64, 100);
  SteadyClock clock;
  EngineConfig c = small_config();
  c.max_queued_requests = 2;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, c, &clock, nullptr);  // not started: the queue fills
  EXPECT_EQ(engine.submit(make_request(1, {}, 4, &col)).code(), StatusCode::kInvalidArgument);
  const Status too_long = engine.submit(make_request(2, std::vector<int32_t>(90, 5), 20, &col));
  EXPECT_EQ(too_long.code(), StatusCode::kOutOfRange);
  EXPECT_NE(too_long.message().find("maximum context length is 100 tokens"), std::string::npos);
  EXPECT_NE(too_long.message().find("you requested 110 tokens (90 in the prompt, 20 for the completion)"),
            std::string::npos);
  EXPECT_TRUE(engine.submit(make_request(3, {5}, 4, &col)).ok());
  EXPECT_EQ(engine.submit(make_request(3, {5}, 4, &col)).code(), StatusCode::kInvalidArgument);  // same id
  EXPECT_TRUE(engine.submit(make_request(4, {5}, 4, &col)).ok());
  EXPECT_EQ(engine.submit(make_request(5, {5}, 4, &col)).code(), StatusCode::kResourceExhausted);
}

// --max-model-len: a limit below the runner's is the one the engine admits against.
TEST(Engine, ConfiguredContextLimitBelowTheModels) {
  FakeRunner runner(4, 64, 100);
  SteadyClock clock;
  EngineConfig c = small_config();
  c.max_model_len = 50;
  Collector col;
  Engine engine(&runner, c, &clock, nullptr);
  EXPECT_EQ(engine.max_model_len(), 50);
  EXPECT_EQ(engine.submit(make_request(1, std::vector<int32_t>(40, 5), 11, &col)).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(engine.submit(make_request(2, std::vector<int32_t>(40, 5), 10, &col)).ok());
  c.max_model_len = 500;  // above the runner's: the runner's stays
  Engine wide(&runner, c, &clock, nullptr);
  EXPECT_EQ(wide.max_model_len(), 100);
}

TEST(Engine, StopDrainsInFlightRequests) {
  FakeRunner runner(4, 64, 256);
  runner.step_delay_us = 200;
  SteadyClock clock;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, nullptr);
  engine.start();
  for (RequestId id = 1; id <= 5; ++id) ASSERT_TRUE(engine.submit(make_request(id, {1, 2, 3}, 20, &col)).ok());
  engine.stop(30);
  ASSERT_EQ(col.order.size(), 5u);
  for (RequestId id = 1; id <= 5; ++id) EXPECT_EQ(col.get(id).reason, FinishReason::kLength);
  EXPECT_EQ(engine.submit(make_request(9, {1}, 2, &col)).code(), StatusCode::kFailedPrecondition);
}

TEST(Engine, StopWithoutDrainCancels) {
  FakeRunner runner(4, 64, 4096);
  runner.step_delay_us = 1000;
  SteadyClock clock;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, nullptr);
  engine.start();
  ASSERT_TRUE(engine.submit(make_request(1, {1, 2, 3}, 4000, &col)).ok());
  ASSERT_TRUE(col.wait_tokens(1, 1));
  engine.stop(0);
  EXPECT_EQ(col.get(1).reason, FinishReason::kCancelled);
}

TEST(Engine, RequestTimeoutFailsTheRequest) {
  FakeRunner runner(4, 64, 4096);
  runner.step_delay_us = 1000;
  SteadyClock clock;
  EngineConfig c = small_config();
  c.request_timeout_s = 0.03;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, c, &clock, nullptr);
  engine.start();
  ASSERT_TRUE(engine.submit(make_request(1, {1, 2, 3}, 4000, &col)).ok());
  ASSERT_TRUE(col.wait_finished(1));
  EXPECT_EQ(col.get(1).reason, FinishReason::kError);
  EXPECT_EQ(col.get(1).error.code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(wait_until([&] { return engine.num_free_blocks() == 64; }));
}

TEST(Engine, DestroyedUnstartedEngineCancelsQueuedRequests) {
  FakeRunner runner(4, 64, 256);
  SteadyClock clock;
  Collector col;
  {
    Engine engine(&runner, small_config(), &clock, nullptr);
    ASSERT_TRUE(engine.submit(make_request(1, {1, 2}, 3, &col)).ok());
  }
  ASSERT_EQ(col.order.size(), 1u);
  EXPECT_EQ(col.get(1).reason, FinishReason::kCancelled);
}

// At start the engine warms up every step size a time-cut chunk can end on (the
// multiples of step_token_align up to max_batched_tokens), at most 256 of them;
// none without a time budget or alignment.
TEST(Engine, WarmsUpTheAlignedStepSizesOnce) {
  SteadyClock clock;
  auto sizes_for = [&](EngineConfig c) {
    FakeRunner runner(4, 64, 256);
    { Engine engine(&runner, c, &clock, nullptr); }
    return runner.warm_ups;
  };
  EngineConfig c = small_config();
  c.max_step_ms = 20;
  c.max_batched_tokens = 100;
  c.step_token_align = 16;
  const auto w = sizes_for(c);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], (std::vector<int32_t>{16, 32, 48, 64, 80, 96}));
  c.max_batched_tokens = 1 << 20;
  const auto big = sizes_for(c);
  ASSERT_EQ(big.size(), 1u);
  ASSERT_EQ(big[0].size(), 256u);
  EXPECT_EQ(big[0].back(), 256 * 16);
  EngineConfig off = c;
  off.step_token_align = 1;
  EXPECT_TRUE(sizes_for(off).empty());
  off = c;
  off.max_step_ms = 0;
  EXPECT_TRUE(sizes_for(off).empty());
}

TEST(Engine, SchedulerOffServesOneAtATimeInArrivalOrder) {
  FakeRunner runner(4, 64, 256);
  SteadyClock clock;
  EngineConfig c = small_config();
  c.scheduler_on = false;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, c, &clock, nullptr);
  for (RequestId id = 1; id <= 4; ++id) {
    GenerationRequest r = make_request(id, {static_cast<int32_t>(id), 3}, 5, &col);
    r.priority = id == 4 ? kPriorityUrgent : kPriorityDefault;
    ASSERT_TRUE(engine.submit(std::move(r)).ok());
  }
  engine.start();
  ASSERT_TRUE(col.wait_finished(4));
  EXPECT_EQ(col.order, (std::vector<RequestId>{1, 2, 3, 4}));
  EXPECT_EQ(runner.max_seqs_in_step.load(), 1);
}

TEST(Engine, RunnerFailureFailsThatStepsRequests) {
  FakeRunner runner(4, 64, 256);
  runner.fail_next_step = true;
  SteadyClock clock;
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, nullptr);
  ASSERT_TRUE(engine.submit(make_request(1, {1, 2}, 3, &col)).ok());
  engine.start();
  ASSERT_TRUE(col.wait_finished(1));
  EXPECT_EQ(col.get(1).reason, FinishReason::kError);
  ASSERT_TRUE(engine.submit(make_request(2, {1, 2}, 3, &col)).ok());  // the engine goes on
  ASSERT_TRUE(col.wait_finished(2));
  EXPECT_EQ(col.get(2).reason, FinishReason::kLength);
  EXPECT_TRUE(wait_until([&] { return engine.num_free_blocks() == 64; }));
}

// Value of the first sample of `name` in Prometheus text (labels ignored), -1 when absent.
double series(const std::string& text, const std::string& name) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, end - pos);
    if (line.rfind(name, 0) == 0 && line.size() > name.size() && (line[name.size()] == '{' || line[name.size()] == ' ')) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
    pos = end + 1;
  }
  return -1;
}

TEST(Engine, RecordsMetrics) {
  FakeRunner runner(4, 24, 64);  // small: preemptions
  SteadyClock clock;
  Metrics metrics(&clock, MetricsOptions{});
  Collector col;  // declared first: the engine, destroyed first, may still send it events
  Engine engine(&runner, small_config(), &clock, &metrics);
  engine.start();
  ASSERT_TRUE(engine.submit(make_request(1, {4, 5}, 3, &col)).ok());  // alone: the fast path
  ASSERT_TRUE(col.wait_finished(1));
  int64_t tokens = 3;
  for (RequestId id = 2; id <= 31; ++id) {
    ASSERT_TRUE(engine.submit(make_request(id, std::vector<int32_t>(10, static_cast<int32_t>(id)), 20, &col)).ok());
    tokens += 20;
  }
  ASSERT_TRUE(col.wait_finished(31));
  EXPECT_EQ(engine.submit(make_request(99, {}, 3, &col)).code(), StatusCode::kInvalidArgument);
  engine.stop(1);
  const StatsSnapshot st = metrics.stats();
  EXPECT_EQ(st.requests_finished, 31u);
  EXPECT_EQ(st.generation_tokens, static_cast<uint64_t>(tokens));
  EXPECT_EQ(st.scheduler.admissions_per_step, small_config().admissions_per_step);
  const std::string text = metrics.render_prometheus();
  EXPECT_GE(series(text, "krserve_fast_path_total"), 1);
  EXPECT_GT(series(text, "krserve_num_preemptions_total"), 0);
  EXPECT_EQ(series(text, "krserve_requests_rejected_total"), 1);
}

// ---- the overlapped decode (EngineConfig::overlap_decode) ----
// The FakeRunner's tokens depend on every token in the KV cache: a fed step that
// took the wrong token or position, a request that got a token after it finished,
// or a sequence freed while a launched step still fed it (ASan: a use after free)
// changes the output or fails.

// Requests that end by length, by a stop token at different outputs (each while a
// fed step is in flight behind the stopping one), after min_tokens, all submitted before the engine starts so that their
// decodes chain: every one gets exactly its own continuation, every block comes back.
// (Request 8 ends at the context limit and max_tokens together.)
TEST(EngineOverlap, ChainedDecodesGiveEachRequestItsTokens) {
  for (const bool overlap : {false, true}) {
    SCOPED_TRACE(overlap ? "overlap on" : "overlap off");
    constexpr int32_t kBlocks = 64, kMaxLen = 48;
    FakeRunner runner(4, kBlocks, kMaxLen);
    runner.feeds = true;
    SteadyClock clock;
    Collector col;
    EngineConfig c = small_config();
    c.overlap_decode = overlap;
    Engine engine(&runner, c, &clock, nullptr);
    std::map<RequestId, std::vector<int32_t>> want;
    std::map<RequestId, FinishReason> want_reason;
    for (RequestId id = 1; id <= 8; ++id) {
      const std::vector<int32_t> prompt = {static_cast<int32_t>(10 + id), 4, static_cast<int32_t>(id)};
      const int32_t max_tokens = id == 8 ? kMaxLen - 3 : 6 + 3 * static_cast<int32_t>(id);
      GenerationRequest r = make_request(id, prompt, max_tokens, &col);
      std::vector<int32_t> cont = fake_continuation(prompt, max_tokens);
      want_reason[id] = FinishReason::kLength;
      if (id % 3 == 1) {  // stop at output 2 + id / 3 (a token the fake gives there)
        const size_t at = 2 + static_cast<size_t>(id / 3);
        r.stop_token_ids = {cont[at]};
        cont.resize(std::find(cont.begin(), cont.end(), cont[at]) - cont.begin() + 1);
        want_reason[id] = FinishReason::kStop;
      }
      if (id == 5) {  // min_tokens 4: a stop token at output 1 does not count
        r.min_tokens = 4;
        r.stop_token_ids = {cont[1]};
        const auto later = std::find(cont.begin() + 4, cont.end(), cont[1]);
        if (later != cont.end()) {
          cont.resize(later - cont.begin() + 1);
          want_reason[id] = FinishReason::kStop;
        }
      }
      want[id] = cont;
      ASSERT_TRUE(engine.submit(std::move(r)).ok());
    }
    engine.start();
    ASSERT_TRUE(col.wait_finished(8));
    for (const auto& [id, tokens] : want) {
      const Collector::Result r = col.get(id);
      EXPECT_EQ(r.tokens, tokens) << id;
      EXPECT_EQ(r.reason, want_reason[id]) << id;
    }
    EXPECT_TRUE(wait_until([&] { return engine.num_free_blocks() == kBlocks && engine.num_running() == 0; }));
    if (overlap) {
      EXPECT_GT(runner.fed_steps.load(), 20);
    } else {
      EXPECT_EQ(runner.fed_steps.load(), 0);
    }
  }
}

// A request whose logits turn non-finite after a few tokens fails alone, while a fed
// step of it is in flight (that step computes a token the host never committed);
// the others keep their tokens.
TEST(EngineOverlap, NonFiniteRowFailsAloneMidChain) {
  FakeRunner runner(4, 64, 256);
  runner.feeds = true;
  runner.make_non_finite(2, 2 + 4);  // from the prompt and 4 outputs on: the 5th output fails
  SteadyClock clock;
  Collector col;
  Engine engine(&runner, small_config(), &clock, nullptr);
  for (RequestId id = 1; id <= 3; ++id)
    ASSERT_TRUE(engine.submit(make_request(id, {static_cast<int32_t>(id) + 10, 4}, 12, &col)).ok());
  engine.start();
  ASSERT_TRUE(col.wait_finished(3));
  EXPECT_EQ(col.get(2).reason, FinishReason::kError);
  EXPECT_EQ(col.get(2).tokens, fake_continuation({12, 4}, 4));
  EXPECT_GT(runner.fed_steps.load(), 4);
  for (RequestId id : {1, 3}) {
    EXPECT_EQ(col.get(id).reason, FinishReason::kLength);
    EXPECT_EQ(col.get(id).tokens, fake_continuation({static_cast<int32_t>(id) + 10, 4}, 12));
  }
  EXPECT_TRUE(wait_until([&] { return engine.num_free_blocks() == 64; }));
}

// An arrival and a cancel each end the chain: the newcomer is admitted and gets its
// own tokens, and the cancelled request stops with its blocks freed.
TEST(EngineOverlap, CancelAndArrivalsEndTheChain) {
  FakeRunner runner(4, 64, 1024);
  runner.feeds = true;
  runner.step_delay_us = 300;
  SteadyClock clock;
  Collector col;
  Engine engine(&runner, small_config(), &clock, nullptr);
  engine.start();
  ASSERT_TRUE(engine.submit(make_request(1, {5, 6, 7}, 400, &col)).ok());
  ASSERT_TRUE(col.wait_tokens(1, 5));
  EXPECT_TRUE(wait_until([&] { return runner.fed_steps.load() > 0; }));
  const std::vector<int32_t> prompt2 = {8, 9};
  ASSERT_TRUE(engine.submit(make_request(2, prompt2, 6, &col)).ok());
  ASSERT_TRUE(col.wait_finished(1));
  EXPECT_EQ(col.get(2).tokens, fake_continuation(prompt2, 6));
  engine.cancel(1);
  ASSERT_TRUE(col.wait_finished(2));
  const Collector::Result r1 = col.get(1);
  EXPECT_EQ(r1.reason, FinishReason::kCancelled);
  ASSERT_LT(r1.tokens.size(), 400u);
  EXPECT_EQ(r1.tokens, fake_continuation({5, 6, 7}, static_cast<int32_t>(r1.tokens.size())));
  EXPECT_TRUE(wait_until([&] { return engine.num_free_blocks() == 64; }));
}

// The gauges (/stats, /metrics) follow a chain of fed steps: a lone request's KV
// blocks grow while it streams, and the free-block count shows it before it ends.
TEST(EngineOverlap, GaugesFollowAChain) {
  FakeRunner runner(4, 256, 1024);
  runner.feeds = true;
  runner.step_delay_us = 300;
  SteadyClock clock;
  Collector col;
  Engine engine(&runner, small_config(), &clock, nullptr);
  engine.start();
  ASSERT_TRUE(engine.submit(make_request(1, {5, 6, 7}, 400, &col)).ok());
  ASSERT_TRUE(col.wait_tokens(1, 8));
  const int32_t early = engine.num_free_blocks();
  ASSERT_TRUE(col.wait_tokens(1, 80));
  EXPECT_GT(runner.fed_steps.load(), 70);
  EXPECT_LT(engine.num_free_blocks(), early - 10);  // ~18 more blocks of 4 tokens
  engine.cancel(1);
  ASSERT_TRUE(col.wait_finished(1));
}

// With the runner refusing to feed (a device without launch_argmax, or rows that
// need the host), the engine never launches a fed step.
TEST(EngineOverlap, NoFedStepWhereTheRunnerCannotFeed) {
  FakeRunner runner(4, 64, 256);
  runner.feeds = false;
  SteadyClock clock;
  Collector col;
  Engine engine(&runner, small_config(), &clock, nullptr);
  for (RequestId id = 1; id <= 3; ++id)
    ASSERT_TRUE(engine.submit(make_request(id, {static_cast<int32_t>(id) + 20}, 10, &col)).ok());
  engine.start();
  ASSERT_TRUE(col.wait_finished(3));
  EXPECT_EQ(runner.fed_steps.load(), 0);
  for (RequestId id = 1; id <= 3; ++id)
    EXPECT_EQ(col.get(id).tokens, fake_continuation({static_cast<int32_t>(id) + 20}, 10));
}

}  // namespace
}  // namespace kr
