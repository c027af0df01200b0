#include "sampling/sampler.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
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

// Pearson's χ² of `h` (n draws) against the probabilities `want` (id -> p, p > 0).
// A draw outside `want` fails at once. The bound is the 1 - 1e-4 quantile of χ²
// with (|want| - 1) degrees of freedom: a correct sampler fails it with
// probability 1e-4 (the seeds are fixed, so the outcome is fixed too), while a
// sampler off by 0.02 in one probability over 40,000 draws scores ~100.
void expect_distribution(const std::map<int32_t, int>& h, int n, const std::map<int32_t, double>& want) {
  for (const auto& [id, count] : h) EXPECT_TRUE(want.count(id)) << "drew id " << id << " " << count << " times";
  double chi2 = 0;
  for (const auto& [id, p] : want) {
    const double expected = p * n;
    const auto it = h.find(id);
    const double got = it == h.end() ? 0.0 : it->second;
    chi2 += (got - expected) * (got - expected) / expected;
  }
  // χ² quantiles at 1 - 1e-4 for 1..6 degrees of freedom.
  const double bound[] = {0, 15.137, 18.421, 21.108, 23.513, 25.745, 27.856};
  const size_t df = want.size() - 1;
  ASSERT_TRUE(df >= 1 && df <= 6);
  std::string got;
  for (const auto& [id, count] : h) {
    got.append(1, ' ').append(std::to_string(id)).append(1, ':').append(std::to_string(count));
  }
  EXPECT_LT(chi2, bound[df]) << "χ² = " << chi2 << " over " << n << " draws; counts" << got;
}

// Filters combined, each against probabilities computed by hand (the order is
// temperature, min-p, top-k, top-p; each filter renormalises over what the
// earlier ones left).
TEST(Sampler, TopKThenTopPOverWhatTopKLeft) {
  const std::vector<float> logits = log_probs({0.4, 0.3, 0.2, 0.1});
  constexpr int kDraws = 40000;
  SamplingParams p;
  // top-k 2 leaves 0.4, 0.3 → 4/7, 3/7; top-p 0.7 drops a least-likely prefix of
  // mass <= 0.3 of THAT: 3/7 > 0.3, so both stay. (Top-p over the whole
  // vocabulary's mass would drop 0.3 <= 0.3 and always draw id 0.)
  p.top_k = 2;
  p.top_p = 0.7f;
  expect_distribution(histogram(logits, p, kDraws, 11), kDraws, {{0, 4.0 / 7}, {1, 3.0 / 7}});
  // top-p 0.6: 3/7 > 0.4 still stays; over the whole vocabulary's mass (budget
  // 0.4 of 1.0) it would go, far from the boundary.
  p.top_p = 0.6f;
  expect_distribution(histogram(logits, p, kDraws, 15), kDraws, {{0, 4.0 / 7}, {1, 3.0 / 7}});
  // top-k 3 leaves 4/9, 3/9, 2/9; top-p 0.75 drops 2/9 <= 0.25 → 4/7, 3/7.
  p.top_k = 3;
  p.top_p = 0.75f;
  expect_distribution(histogram(logits, p, kDraws, 12), kDraws, {{0, 4.0 / 7}, {1, 3.0 / 7}});
  // top-k 3, top-p 0.8: 2/9 > 0.2 stays → 4/9, 3/9, 2/9.
  p.top_p = 0.8f;
  expect_distribution(histogram(logits, p, kDraws, 13), kDraws, {{0, 4.0 / 9}, {1, 3.0 / 9}, {2, 2.0 / 9}});
  // top-k larger than the vocabulary is off; top-p 0.85 alone drops 0.1 → 4/9, 3/9, 2/9.
  p.top_k = 50;
  p.top_p = 0.85f;
  expect_distribution(histogram(logits, p, kDraws, 14), kDraws, {{0, 4.0 / 9}, {1, 3.0 / 9}, {2, 2.0 / 9}});
}

TEST(Sampler, MinPThenTopKAndTopP) {
  const std::vector<float> logits = log_probs({0.4, 0.3, 0.2, 0.1});
  constexpr int kDraws = 40000;
  SamplingParams p;
  // min-p 0.3: threshold 0.3 × 0.4 = 0.12 drops 0.1 → 4/9, 3/9, 2/9; top-p 0.75
  // over those drops 2/9 <= 0.25 → 4/7, 3/7. (Top-p before min-p, over the
  // whole mass, would drop only 0.1 and keep 0.2.)
  p.min_p = 0.3f;
  p.top_p = 0.75f;
  expect_distribution(histogram(logits, p, kDraws, 21), kDraws, {{0, 4.0 / 7}, {1, 3.0 / 7}});
  // min-p 0.3 and top-k 2: {0.4, 0.3} → 4/7, 3/7; top-k 3 is then a no-op → 4/9, 3/9, 2/9.
  p.top_p = 1.0f;
  p.top_k = 2;
  expect_distribution(histogram(logits, p, kDraws, 22), kDraws, {{0, 4.0 / 7}, {1, 3.0 / 7}});
  p.top_k = 3;
  expect_distribution(histogram(logits, p, kDraws, 23), kDraws, {{0, 4.0 / 9}, {1, 3.0 / 9}, {2, 2.0 / 9}});
  // min-p 0.2: threshold 0.08 keeps all four; top-k 3 → 4/9, 3/9, 2/9.
  p.min_p = 0.2f;
  expect_distribution(histogram(logits, p, kDraws, 24), kDraws, {{0, 4.0 / 9}, {1, 3.0 / 9}, {2, 2.0 / 9}});
}

TEST(Sampler, TemperatureBeforeTheFilters) {
  // T = 0.5 squares the probabilities: 0.16, 0.09, 0.04, 0.01 (sum 0.30).
  const std::vector<float> logits = log_probs({0.4, 0.3, 0.2, 0.1});
  constexpr int kDraws = 40000;
  SamplingParams p;
  p.temperature = 0.5f;
  expect_distribution(histogram(logits, p, kDraws, 31), kDraws,
                      {{0, 0.16 / 0.30}, {1, 0.09 / 0.30}, {2, 0.04 / 0.30}, {3, 0.01 / 0.30}});
  // top-k 3: 0.16, 0.09, 0.04 (sum 0.29); top-p 0.8 drops 0.04 / 0.29 = 0.138 <= 0.2 → 0.64, 0.36.
  p.top_k = 3;
  p.top_p = 0.8f;
  expect_distribution(histogram(logits, p, kDraws, 32), kDraws, {{0, 0.64}, {1, 0.36}});
  // min-p 0.2 on the tempered scale: threshold 0.2 × 0.16 = 0.032 drops 0.01 only
  // → 0.16, 0.09, 0.04 over 0.29. (On the untempered scale it would keep all four.)
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.2f;
  expect_distribution(histogram(logits, p, kDraws, 33), kDraws, {{0, 0.16 / 0.29}, {1, 0.09 / 0.29}, {2, 0.04 / 0.29}});
}

}  // namespace
}  // namespace kr
