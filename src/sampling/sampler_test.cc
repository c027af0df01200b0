#include "sampling/sampler.h"

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace kr {
namespace {

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> v;
  for (double p : probs) v.push_back(static_cast<float>(std::log(p)));
  return v;
}

// Draw counts over n samples.
std::map<int32_t, int> histogram(const std::vector<float>& logits, const SamplingParams& p, int n, uint64_t seed) {
  Sampler s;
  std::mt19937_64 rng(seed);
  SampleInput in;
  in.params = &p;
  in.rng = &rng;
  std::map<int32_t, int> h;
  for (int i = 0; i < n; ++i) ++h[s.sample(logits, in).id];
  return h;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s;
  SamplingParams p;
  p.temperature = 0;
  SampleInput in;
  in.params = &p;
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 2.9f}, in).id, 1);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 3.0f}, in).id, 1);
  EXPECT_EQ(argmax_lowest_id(std::vector<float>{5, 5, 5}), 0);
}

TEST(Sampler, NonFiniteLogitsAreFlagged) {
  Sampler s;
  SamplingParams p;
  p.temperature = 0;
  SampleInput in;
  in.params = &p;
  auto r = s.sample(std::vector<float>{0.1f, NAN, 1.0f}, in);
  EXPECT_TRUE(r.non_finite);
  EXPECT_EQ(r.id, -1);
  EXPECT_TRUE(s.sample(std::vector<float>{0.1f, INFINITY}, in).non_finite);
  EXPECT_FALSE(s.sample(std::vector<float>{0.1f, 1.0f}, in).non_finite);
}

TEST(Sampler, LogprobsComeFromRawLogits) {
  Sampler s;
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 3.0f;  // changes the choice, not the reported logprobs
  p.logprobs = 2;
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f};
  const std::vector<int32_t> prompt = {1};
  SampleInput in;
  in.params = &p;
  in.prompt_ids = prompt;
  auto r = s.sample(logits, in);
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5));
  EXPECT_EQ(r.id, 0);  // 2.0 / 3 < 1.0
  EXPECT_NEAR(r.logprob, 1.0 - lse, 1e-6);
  ASSERT_EQ(r.top.size(), 2u);
  EXPECT_EQ(r.top[0].first, 1);
  EXPECT_NEAR(r.top[0].second, 2.0 - lse, 1e-6);
  EXPECT_EQ(r.top[1].first, 0);
  EXPECT_NEAR(r.top[1].second, 1.0 - lse, 1e-6);
  p.logprobs = 0;
  EXPECT_TRUE(s.sample(logits, in).top.empty());
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  Sampler s;
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  SampleInput in;
  in.params = &p;
  // Token 0 (seen, positive 3 → 1.5) loses to token 2 (unseen, 2).
  const std::vector<int32_t> out = {0, 0};
  in.output_ids = out;
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, -1.0f, 2.0f}, in).id, 2);
  // Token 1 (seen, negative -0.1 → -0.2) loses to token 2 (unseen, -0.15).
  const std::vector<int32_t> prompt = {1};
  in.output_ids = {};
  in.prompt_ids = prompt;
  EXPECT_EQ(s.sample(std::vector<float>{-1.0f, -0.1f, -0.15f}, in).id, 2);
  // Penalty applied once per distinct token: 3 / 2 = 1.5 beats 1.4 even if seen twice.
  in.prompt_ids = {};
  in.output_ids = out;
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, -1.0f, 1.4f}, in).id, 0);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesOverOutput) {
  Sampler s;
  SamplingParams p;
  p.temperature = 0;
  SampleInput in;
  in.params = &p;
  const std::vector<int32_t> out = {0, 0, 1};
  const std::vector<int32_t> prompt = {2};
  in.output_ids = out;
  in.prompt_ids = prompt;
  // frequency 0.6: token 0: 3 - 1.2 = 1.8; token 1: 2.5 - 0.6 = 1.9; token 2 (prompt only) 1.85.
  p.frequency_penalty = 0.6f;
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, 2.5f, 1.85f}, in).id, 1);
  // presence 1.0: token 0: 2.0, token 1: 1.5 → token 2 (1.85) < 2.0 → 0 wins.
  p.frequency_penalty = 0;
  p.presence_penalty = 1.0f;
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, 2.5f, 1.85f}, in).id, 0);
  p.presence_penalty = 1.2f;  // token 0: 1.8 < 1.85
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, 2.5f, 1.85f}, in).id, 2);
  // Negative presence penalty rewards repetition.
  p.presence_penalty = -1.0f;
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 0.5f, 1.9f}, in).id, 0);
}

TEST(Sampler, SuppressEos) {
  Sampler s;
  SamplingParams p;
  p.temperature = 0;
  SampleInput in;
  in.params = &p;
  const std::vector<int32_t> eos = {1, 3};
  const std::vector<float> logits = {0.0f, 5.0f, 1.0f, 4.0f};
  EXPECT_EQ(s.sample(logits, in, eos).id, 1);
  in.suppress_eos = true;
  EXPECT_EQ(s.sample(logits, in, eos).id, 2);
  p.temperature = 1.0f;
  std::mt19937_64 rng(7);
  in.rng = &rng;
  for (int i = 0; i < 200; ++i) {
    const int32_t id = s.sample(logits, in, eos).id;
    EXPECT_TRUE(id == 0 || id == 2) << id;
  }
}

TEST(Sampler, SameSeedSameOutput) {
  SamplingParams p;
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(i * 0.37));
  auto draws = [&](uint64_t seed) {
    Sampler s;
    std::mt19937_64 rng(seed);
    SampleInput in;
    in.params = &p;
    in.rng = &rng;
    std::vector<int32_t> ids;
    for (int i = 0; i < 50; ++i) ids.push_back(s.sample(logits, in).id);
    return ids;
  };
  EXPECT_EQ(draws(42), draws(42));
  EXPECT_NE(draws(42), draws(43));
}

TEST(Sampler, TemperatureOneMatchesSoftmax) {
  SamplingParams p;
  auto h = histogram(log_probs({0.7, 0.2, 0.1}), p, 20000, 1);
  EXPECT_NEAR(h[0] / 20000.0, 0.7, 0.02);
  EXPECT_NEAR(h[1] / 20000.0, 0.2, 0.02);
  EXPECT_NEAR(h[2] / 20000.0, 0.1, 0.02);
  // Low temperature sharpens: p ∝ p^(1/0.5) → 0.49 : 0.04 : 0.01 → 0.907.
  p.temperature = 0.5f;
  h = histogram(log_probs({0.7, 0.2, 0.1}), p, 20000, 2);
  EXPECT_NEAR(h[0] / 20000.0, 0.49 / 0.54, 0.02);
}

TEST(Sampler, TopKKeepsKMostLikely) {
  SamplingParams p;
  p.top_k = 2;
  auto h = histogram(log_probs({0.1, 0.5, 0.15, 0.25}), p, 20000, 3);
  EXPECT_EQ(h.count(0) + h.count(2), 0u);
  EXPECT_NEAR(h[1] / 20000.0, 0.5 / 0.75, 0.02);
  p.top_k = 1;
  h = histogram(log_probs({0.1, 0.5, 0.15, 0.25}), p, 500, 4);
  EXPECT_EQ(h[1], 500);
}

TEST(Sampler, TopPDropsTheTail) {
  SamplingParams p;
  p.top_p = 0.6f;  // tail 0.2 <= 0.4 dropped; 0.2 + 0.3 > 0.4 keeps token 1
  auto h = histogram(log_probs({0.5, 0.3, 0.2}), p, 20000, 5);
  EXPECT_EQ(h.count(2), 0u);
  EXPECT_NEAR(h[0] / 20000.0, 0.5 / 0.8, 0.02);
  p.top_p = 0.45f;  // only the top token survives
  h = histogram(log_probs({0.5, 0.3, 0.2}), p, 500, 6);
  EXPECT_EQ(h[0], 500);
}

TEST(Sampler, MinPRelativeToTopProbability) {
  SamplingParams p;
  p.min_p = 0.5f;  // threshold 0.25: tokens 0 (0.5) and 1 (0.3) stay
  auto h = histogram(log_probs({0.5, 0.3, 0.2}), p, 20000, 7);
  EXPECT_EQ(h.count(2), 0u);
  EXPECT_NEAR(h[0] / 20000.0, 0.5 / 0.8, 0.02);
  p.min_p = 0.7f;  // threshold 0.35
  h = histogram(log_probs({0.5, 0.3, 0.2}), p, 500, 8);
  EXPECT_EQ(h[0], 500);
}

}  // namespace
}  // namespace kr
