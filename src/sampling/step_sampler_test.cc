// StepSampler: which path a step's rows take, and that every path gives what
// the host Sampler gives for the same rows.
#include "sampling/step_sampler.h"

#include <cmath>
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

// begin / finish (the overlapped decode): two steps begun before either is finished
// come back in order, each as sample() gives it; the argmax path leaves its ids on
// the backend (begin true), the host path samples at begin (false).
TEST(StepSampler, BegunStepsFinishInOrder) {
  auto cpu = make_cpu_backend(1, 0);
  StepSampler s(cpu.get(), kVocab, kEos);
  const int64_t R = 3;
  const Tensor l1 = upload_logits(*cpu, random_logits(R, 21), R), l2 = upload_logits(*cpu, random_logits(R, 22), R);
  SamplingParams greedy, greedy_top;
  greedy.temperature = 0;
  greedy_top = greedy;
  greedy_top.logprobs = 1;
  const std::vector<SampleInput> plain(R, row_of(&greedy)), topped(R, row_of(&greedy_top));
  std::vector<SampledToken> want1, want2, got;
  s.sample(l1, plain, &want1);
  s.sample(l2, plain, &want2);
  EXPECT_TRUE(s.begin(l1, plain, {}));
  EXPECT_TRUE(s.begin(l2, plain, {}));
  EXPECT_EQ(s.num_begun(), 2u);
  s.finish(&got);
  ASSERT_EQ(got.size(), static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) EXPECT_EQ(got[r].id, want1[r].id);
  EXPECT_FALSE(s.begin(l1, topped, {}));  // host path: sampled now
  EXPECT_EQ(s.last_path(), SamplingPath::kHost);
  s.finish(&got);
  for (int64_t r = 0; r < R; ++r) EXPECT_EQ(got[r].id, want2[r].id);
  s.finish(&got);
  for (int64_t r = 0; r < R; ++r) {
    EXPECT_EQ(got[r].id, want1[r].id);
    EXPECT_EQ(got[r].top.size(), 1u);
  }
  EXPECT_EQ(s.num_begun(), 0u);
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

// Masks: random allowed sets per row, some rows free. Every path must pick an
// allowed token, and agree with the host Sampler on the masked logits.
std::vector<uint32_t> random_mask(std::mt19937_64& rng, int allowed_one_in) {
  std::vector<uint32_t> w((kVocab + 31) / 32, 0u);
  for (int32_t i = 0; i < kVocab; ++i)
    if (rng() % static_cast<uint64_t>(allowed_one_in) == 0) w[i >> 5] |= 1u << (i & 31);
  w[0] |= 1u << 5;  // at least one
  return w;
}

bool allowed(const std::vector<uint32_t>& w, int32_t id) { return id >= 0 && ((w[id >> 5] >> (id & 31)) & 1u); }

TEST(StepSampler, MaskedRowsPickOnlyAllowedTokensOnEveryPath) {
  const int64_t R = 6;
  std::mt19937_64 mrng(5);
  std::vector<std::vector<uint32_t>> masks;
  for (int i = 0; i < 3; ++i) masks.push_back(random_mask(mrng, 4 + 20 * i));  // rows 0, 2, 4
  const std::vector<int32_t> masked_rows = {0, 2, 4};
  std::vector<uint32_t> packed;
  for (const auto& m : masks) packed.insert(packed.end(), m.begin(), m.end());
  StepTokenMasks tm;
  tm.rows = masked_rows;
  tm.words = packed.data();
  tm.words_per_row = masks[0].size();
  const std::vector<float> host_logits = random_logits(R, 21);

  SamplingParams greedy, draw, top;
  greedy.temperature = 0;
  draw.temperature = 1.0f;
  top.temperature = 0;
  top.logprobs = 4;
  for (int trial = 0; trial < 3; ++trial) {
    SCOPED_TRACE(trial);
    const SamplingParams* p = trial == 0 ? &greedy : trial == 1 ? &draw : &top;
    auto cpu = make_cpu_backend(1, 0);
    HostSamplingBackend device(make_cpu_backend(1, 0));
    StepSampler host_sampler(cpu.get(), kVocab, kEos), device_sampler(&device, kVocab, kEos);
    std::vector<std::mt19937_64> rh(R), rd(R);
    std::vector<SampleInput> rows_h, rows_d;
    for (int64_t r = 0; r < R; ++r) {
      rh[r].seed(7 + r), rd[r].seed(7 + r);
      rows_h.push_back(row_of(p, &rh[r]));
      rows_d.push_back(row_of(p, &rd[r]));
      rows_h.back().masked = rows_d.back().masked = r % 2 == 0;
    }
    Tensor lh = upload_logits(*cpu, host_logits, R), ld = upload_logits(device, host_logits, R);
    std::vector<SampledToken> a, b;
    host_sampler.sample(lh, rows_h, tm, &a);
    device_sampler.sample(ld, rows_d, tm, &b);
    EXPECT_EQ(host_sampler.last_path(), trial == 0 ? SamplingPath::kDeviceArgmax : SamplingPath::kHost);
    EXPECT_EQ(device_sampler.last_path(), SamplingPath::kDeviceSample);  // the fake has no argmax
    for (int64_t r = 0; r < R; ++r) {
      SCOPED_TRACE(r);
      EXPECT_FALSE(a[r].non_finite);
      EXPECT_FALSE(b[r].non_finite);
      if (p != &draw) {  // drawing rows take different random values on the two paths
        EXPECT_EQ(a[r].id, b[r].id);
        EXPECT_NEAR(a[r].logprob, b[r].logprob, 1e-5);
      }
      if (r % 2 == 0) {
        EXPECT_TRUE(allowed(masks[static_cast<size_t>(r / 2)], b[r].id)) << b[r].id;
      }
      if (r % 2 == 0) {
        const auto& m = masks[static_cast<size_t>(r / 2)];
        EXPECT_TRUE(allowed(m, a[r].id)) << a[r].id;
        // Greedy: the best allowed token; its logprob over the allowed tokens only.
        if (p != &draw) {
          int32_t best = -1;
          double z = 0;
          for (int32_t i = 0; i < kVocab; ++i)
            if (allowed(m, i)) {
              const float x = host_logits[static_cast<size_t>(r * kVocab + i)];
              if (best < 0 || x > host_logits[static_cast<size_t>(r * kVocab + best)]) best = i;
            }
          const float mx = host_logits[static_cast<size_t>(r * kVocab + best)];
          for (int32_t i = 0; i < kVocab; ++i)
            if (allowed(m, i)) z += std::exp(host_logits[static_cast<size_t>(r * kVocab + i)] - mx);
          EXPECT_EQ(a[r].id, best);
          EXPECT_NEAR(a[r].logprob, -std::log(z), 1e-4);
        }
        for (const auto& [id, lp] : a[r].top)  // more than the allowed: masked ones come as -inf
          EXPECT_TRUE(allowed(m, id) || lp == -INFINITY) << id;
      }
    }
  }
}

TEST(StepSampler, AMaskedRowWithNonFiniteLogitsFailsOnEveryPath) {
  const int64_t R = 2;
  std::vector<float> logits = random_logits(R, 3);
  // Row 0: -inf at a token the mask forbids anyway; row 1: NaN at an allowed one.
  std::vector<uint32_t> mask((kVocab + 31) / 32, 0u);
  mask[0] = 0x0Fu;  // tokens 0..3
  logits[100] = -INFINITY;
  logits[static_cast<size_t>(kVocab) + 2] = NAN;
  std::vector<uint32_t> packed = mask;
  packed.insert(packed.end(), mask.begin(), mask.end());
  const std::vector<int32_t> masked_rows = {0, 1};
  StepTokenMasks tm{masked_rows, packed.data(), mask.size()};
  SamplingParams greedy, draw;
  greedy.temperature = 0;
  draw.temperature = 0.8f;
  for (const SamplingParams* p : {&greedy, &draw}) {
    auto cpu = make_cpu_backend(1, 0);
    HostSamplingBackend device(make_cpu_backend(1, 0));
    for (Backend* be : {static_cast<Backend*>(cpu.get()), static_cast<Backend*>(&device)}) {
      StepSampler s(be, kVocab, kEos);
      std::mt19937_64 rng(1);
      std::vector<SampleInput> rows(R, row_of(p, &rng));
      for (auto& in : rows) in.masked = true;
      Tensor t = upload_logits(*be, logits, R);
      std::vector<SampledToken> out;
      s.sample(t, rows, tm, &out);
      EXPECT_TRUE(out[0].non_finite) << sampling_path_name(s.last_path());
      EXPECT_TRUE(out[1].non_finite) << sampling_path_name(s.last_path());
    }
  }
}

TEST(StepSampler, ApplyTokenMaskDefaultSetsMinusInfinityOnlyOnMaskedRows) {
  auto cpu = make_cpu_backend(1, 0);
  const int64_t R = 3;
  const std::vector<float> logits = random_logits(R, 9);
  Tensor t = upload_logits(*cpu, logits, R);
  std::vector<uint32_t> mask((kVocab + 31) / 32, 0xAAAAAAAAu);  // odd ids
  const std::vector<int32_t> rows = {1};
  cpu->apply_token_mask(t, rows, mask.data(), mask.size());
  std::vector<float> back(logits.size());
  cpu->copy_to_host(back.data(), t, back.size() * sizeof(float));
  for (int64_t r = 0; r < R; ++r)
    for (int32_t i = 0; i < kVocab; ++i) {
      const size_t k = static_cast<size_t>(r * kVocab + i);
      const float want = r == 1 && i % 2 == 0 ? -INFINITY : logits[k];
      EXPECT_EQ(back[k], want);
    }
}

}  // namespace
}  // namespace kr
