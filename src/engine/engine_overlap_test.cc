// The overlapped decode (EngineConfig::overlap_decode) against the FakeRunner,
// whose tokens depend on every token in the KV cache: a fed step that took the
// wrong token or position, a request that got a token after it finished, or a
// sequence freed while a launched step still fed it changes the output or fails.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "engine/fake_runner_for_test.h"

namespace kr {
namespace {

struct Collector {
  struct Result {
    std::vector<int32_t> tokens;
    bool finished = false;
    FinishReason reason = FinishReason::kNone;
    int32_t completion_tokens = 0;
  };
  std::function<void(TokenEvent&&)> sink() {
    return [this](TokenEvent&& ev) {
      std::lock_guard<std::mutex> lock(mu);
      Result& r = results[ev.request_id];
      EXPECT_FALSE(r.finished) << "an event after the final one for " << ev.request_id;
      for (const SampledToken& t : ev.tokens) r.tokens.push_back(t.id);
      if (ev.finished) {
        r.finished = true;
        r.reason = ev.finish_reason;
        r.completion_tokens = ev.completion_tokens;
        ++num_finished;
      }
      cv.notify_all();
    };
  }
  bool wait_finished(int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return num_finished >= n; });
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
  int num_finished = 0;
};

GenerationRequest greedy_request(RequestId id, std::vector<int32_t> prompt, int32_t max_tokens, Collector* c) {
  GenerationRequest r;
  r.id = id;
  r.prompt_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.on_event = c->sink();
  return r;
}

bool wait_until(const std::function<bool()>& f) {
  for (int i = 0; i < 4000 && !f(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return f();
}

EngineConfig overlap_config() {
  EngineConfig c;
  c.window_ms = 0.5;
  c.max_batched_tokens = 64;
  c.max_num_seqs = 16;
  return c;
}

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
    EngineConfig c = overlap_config();
    c.overlap_decode = overlap;
    Engine engine(&runner, c, &clock, nullptr);
    std::map<RequestId, std::vector<int32_t>> want;
    std::map<RequestId, FinishReason> want_reason;
    for (RequestId id = 1; id <= 8; ++id) {
      const std::vector<int32_t> prompt = {static_cast<int32_t>(10 + id), 4, static_cast<int32_t>(id)};
      const int32_t max_tokens = id == 8 ? kMaxLen - 3 : 6 + 3 * static_cast<int32_t>(id);
      GenerationRequest r = greedy_request(id, prompt, max_tokens, &col);
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
      EXPECT_EQ(r.completion_tokens, static_cast<int32_t>(tokens.size())) << id;
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
  Engine engine(&runner, overlap_config(), &clock, nullptr);
  for (RequestId id = 1; id <= 3; ++id)
    ASSERT_TRUE(engine.submit(greedy_request(id, {static_cast<int32_t>(id) + 10, 4}, 12, &col)).ok());
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
  Engine engine(&runner, overlap_config(), &clock, nullptr);
  engine.start();
  ASSERT_TRUE(engine.submit(greedy_request(1, {5, 6, 7}, 400, &col)).ok());
  ASSERT_TRUE(col.wait_tokens(1, 5));
  EXPECT_TRUE(wait_until([&] { return runner.fed_steps.load() > 0; }));
  const std::vector<int32_t> prompt2 = {8, 9};
  ASSERT_TRUE(engine.submit(greedy_request(2, prompt2, 6, &col)).ok());
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

// With the runner refusing to feed (a device without launch_argmax, or rows that
// need the host), the engine never launches a fed step.
TEST(EngineOverlap, NoFedStepWhereTheRunnerCannotFeed) {
  FakeRunner runner(4, 64, 256);
  runner.feeds = false;
  SteadyClock clock;
  Collector col;
  Engine engine(&runner, overlap_config(), &clock, nullptr);
  for (RequestId id = 1; id <= 3; ++id)
    ASSERT_TRUE(engine.submit(greedy_request(id, {static_cast<int32_t>(id) + 20}, 10, &col)).ok());
  engine.start();
  ASSERT_TRUE(col.wait_finished(3));
  EXPECT_EQ(runner.fed_steps.load(), 0);
  for (RequestId id = 1; id <= 3; ++id)
    EXPECT_EQ(col.get(id).tokens, fake_continuation({static_cast<int32_t>(id) + 20}, 10));
}

}  // namespace
}  // namespace kr
