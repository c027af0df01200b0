// StepSampler: which path a step's rows take, and that every path gives what
// the host Sampler gives for the same rows.
#include "sampling/step_sampler.h"

#include <random>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "sampling/host_sampling_backend_for_test.h"

namespace kr {
namespace {

constexpr int32_t kVocab = 257;
const std::vector<int32_t> kEos = {2, 7};

// Logits [R, V] on `b`, random with a few clear leaders.
Tensor upload_logits(Backend& b, const std::vector<float>& host, int64_t rows) {
  Tensor t = b.alloc(DType::kF32, {rows, kVocab});
  b.copy_from_host(t, host.data(), host.size() * sizeof(float));
  return t;
}

std::vector<float> random_logits(int64_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 2.0f);
  std::vector<float> v(static_cast<size_t>(rows) * kVocab);
  for (float& x : v) x = n(rng);
  return v;
}

SampleInput row_of(const SamplingParams* p, std::mt19937_64* rng = nullptr) {
  SampleInput in;
  in.params = p;
  in.rng = rng;
  return in;
}

TEST(StepSampler, ChoosesThePathFromTheRows) {
  auto cpu = make_cpu_backend(1, 0);
  StepSampler s(cpu.get(), kVocab, kEos);
  SamplingParams greedy, greedy_top, greedy_pen, draw, many_top;
  greedy.temperature = 0;
  greedy_top = greedy;
  greedy_top.logprobs = 2;
  greedy_pen = greedy;
  greedy_pen.presence_penalty = 0.5f;
  draw.temperature = 0.7f;
  many_top.logprobs = kDeviceSamplingMaxTop + 1;
  std::vector<SampleInput> rows = {row_of(&greedy), row_of(&greedy)};
  EXPECT_EQ(s.choose_path(rows), SamplingPath::kDeviceArgmax);
  rows[1].suppress_eos = true;  // min_tokens not reached: the row needs EOS suppression
  EXPECT_EQ(s.choose_path(rows), SamplingPath::kHost);  // the CPU backend has no Backend::sample
  for (const SamplingParams* p : {&greedy_top, &greedy_pen, &draw}) {
    rows = {row_of(&greedy), row_of(p)};
    EXPECT_EQ(s.choose_path(rows), SamplingPath::kHost);
  }

  HostSamplingBackend device(make_cpu_backend(1, 0));
  StepSampler d(&device, kVocab, kEos);
  rows = {row_of(&greedy), row_of(&greedy)};
  EXPECT_EQ(d.choose_path(rows), SamplingPath::kDeviceArgmax);
  for (const SamplingParams* p : {&greedy_top, &greedy_pen, &draw}) {
    rows = {row_of(&greedy), row_of(p)};
    EXPECT_EQ(d.choose_path(rows), SamplingPath::kDeviceSample) << sampling_path_name(d.choose_path(rows));
  }
  rows = {row_of(&draw), row_of(&many_top)};
  EXPECT_EQ(d.choose_path(rows), SamplingPath::kHost);  // more logprobs than a device row returns
  d.set_use_device_sampling(false);
  rows = {row_of(&draw)};
  EXPECT_EQ(d.choose_path(rows), SamplingPath::kHost);
}

// The same rows through device argmax, device sampling (the host-sampling
// fake), a refused device call and the host: the same tokens.
TEST(StepSampler, EveryPathMatchesTheHostSampler) {
  auto cpu = make_cpu_backend(1, 0);
  HostSamplingBackend device(make_cpu_backend(1, 0));
  const int64_t R = 5;
  const std::vector<float> host_logits = random_logits(R, 11);
  const Tensor on_cpu = upload_logits(*cpu, host_logits, R);
  const Tensor on_device = upload_logits(device, host_logits, R);
  StepSampler host_sampler(cpu.get(), kVocab, kEos), device_sampler(&device, kVocab, kEos);

  // Plain greedy rows: argmax on the backend against the host Sampler.
  SamplingParams greedy, greedy_top;
  greedy.temperature = 0;
  greedy_top = greedy;
  greedy_top.logprobs = 1;  // forces the host path with the same choice
  std::vector<SampleInput> plain(R, row_of(&greedy)), topped(R, row_of(&greedy_top));
  std::vector<SampledToken> a, b;
  host_sampler.sample(on_cpu, plain, &a);
  EXPECT_EQ(host_sampler.last_path(), SamplingPath::kDeviceArgmax);
  host_sampler.sample(on_cpu, topped, &b);
  EXPECT_EQ(host_sampler.last_path(), SamplingPath::kHost);
  ASSERT_EQ(a.size(), static_cast<size_t>(R));
  ASSERT_EQ(b.size(), static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    EXPECT_EQ(a[r].id, b[r].id);
    EXPECT_NEAR(a[r].logprob, b[r].logprob, 1e-5);
    EXPECT_TRUE(a[r].top.empty());
  }

  // Mixed rows with penalties, EOS suppression, draws and top logprobs: device
  // sampling against the host. Greedy rows must agree exactly; drawing rows
  // must take one value from their own generator.
  SamplingParams rep, draw, pf;
  rep.temperature = 0;
  rep.repetition_penalty = 2.0f;
  rep.logprobs = 3;
  draw.temperature = 0.9f;
  draw.top_k = 8;
  pf.temperature = 0.5f;
  pf.presence_penalty = 1.0f;
  pf.frequency_penalty = 0.5f;
  const std::vector<int32_t> prompt = {a[0].id, 3, 4}, output = {a[1].id, a[1].id, 9};
  std::vector<std::mt19937_64> rngs_dev(R), rngs_host(R);
  for (int64_t r = 0; r < R; ++r) rngs_dev[r].seed(100 + r), rngs_host[r].seed(100 + r);
  auto mixed = [&](std::vector<std::mt19937_64>& rngs) {
    std::vector<SampleInput> rows;
    const SamplingParams* ps[R] = {&rep, &draw, &pf, &greedy, &draw};
    for (int64_t r = 0; r < R; ++r) {
      SampleInput in = row_of(ps[r], &rngs[r]);
      in.prompt_ids = prompt;
      in.output_ids = output;
      in.suppress_eos = r == 3;
      rows.push_back(in);
    }
    return rows;
  };
  std::vector<SampledToken> dev, ref;
  device_sampler.sample(on_device, mixed(rngs_dev), &dev);
  EXPECT_EQ(device_sampler.last_path(), SamplingPath::kDeviceSample);
  EXPECT_EQ(device.calls, 1);
  device.refuse_sample = true;  // a backend that cannot serve the rows: the host does
  std::vector<SampledToken> refused;
  std::vector<std::mt19937_64> rngs_refused(R);
  for (int64_t r = 0; r < R; ++r) rngs_refused[r].seed(100 + r);
  device_sampler.sample(on_device, mixed(rngs_refused), &refused);
  EXPECT_EQ(device_sampler.last_path(), SamplingPath::kHost);
  host_sampler.sample(on_cpu, mixed(rngs_host), &ref);
  EXPECT_EQ(host_sampler.last_path(), SamplingPath::kHost);
  // The refused rows had taken their device value already: the host drew the next one.
  std::vector<std::mt19937_64> rngs_after(R);
  for (int64_t r = 0; r < R; ++r) {
    rngs_after[r].seed(100 + r);
    if (r != 0 && r != 3) rngs_after[r]();
  }
  std::vector<SampledToken> ref_after;
  host_sampler.sample(on_cpu, mixed(rngs_after), &ref_after);
  ASSERT_EQ(dev.size(), static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    SCOPED_TRACE(r);
    EXPECT_EQ(refused[r].id, ref_after[r].id);
    EXPECT_EQ(refused[r].top, ref_after[r].top);
    const bool greedy_row = r == 0 || r == 3;
    if (greedy_row) {
      EXPECT_EQ(dev[r].id, ref[r].id);
      EXPECT_FLOAT_EQ(dev[r].logprob, ref[r].logprob);
      EXPECT_EQ(dev[r].top, ref[r].top);
      EXPECT_EQ(device.last_rows[r].random_bits, 0u);
    } else {  // one value from the row's own generator
      EXPECT_EQ(device.last_rows[r].random_bits, std::mt19937_64(100 + r)());
      EXPECT_GE(dev[r].id, 0);
    }
  }
}

}  // namespace
}  // namespace kr
