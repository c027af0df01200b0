#include "sampling/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "base/check.h"

namespace kr {
namespace {

// exp(x) for x <= 0 in float, relative error ~2e-7 (Cephes expf's range
// reduction and polynomial), 0 below -87 (and for -inf). Branch-free so that the
// loops below vectorise: a 128k-entry vocabulary is exponentiated twice per sampled
// token, and libm's scalar exp made that the largest cost of a random-sampling step.
[[gnu::always_inline]] inline float exp_nonpositive(float x) {
  const float xc = x > -87.0f ? x : -87.0f;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (xc * 1.44269504088896341f + magic) - magic;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  const float keep = static_cast<float>(x >= -87.0f);  // 0 for -inf and the far tail
  return p * scale * keep;
}

// Largest entry (the input holds no NaN: the sampler checks first).
float max_of(const float* d, size_t n) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (size_t i = 0; i < n; ++i) mx = d[i] > mx ? d[i] : mx;
  return mx;
}

// exp((v[i] - shift) * scale) for every entry, in place; returns their sum.
double exp_shifted_in_place(std::vector<float>& v, float shift, float scale) {
  float* __restrict d = v.data();
  const int64_t n = static_cast<int64_t>(v.size());
  double total = 0.0;  // blocks of 1024 summed in float, blocks added in double
  for (int64_t b = 0; b < n; b += 1024) {
    const int64_t len = std::min<int64_t>(1024, n - b);
    float* __restrict blk = d + b;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < len; ++i) {
      const float w = exp_nonpositive((blk[i] - shift) * scale);
      blk[i] = w;
      sum += w;
    }
    total += sum;
  }
  return total;
}

double log_sum_exp(std::span<const float> v) {
  const float mx = max_of(v.data(), v.size());
  double total = 0.0;
  for (size_t b = 0; b < v.size(); b += 1024) {
    const size_t e = std::min(v.size(), b + 1024);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (size_t i = b; i < e; ++i) sum += exp_nonpositive(v[i] - mx);
    total += sum;
  }
  return mx + std::log(total);
}

}  // namespace

int32_t argmax_lowest_id(std::span<const float> v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = static_cast<int32_t>(i);
  return best;
}

// vLLM's top-p: in ascending order of probability, drop the longest prefix whose
// cumulative probability is <= 1 - top_p (the most likely token always stays).
// A weighted quickselect finds that prefix in expected O(n) instead of sorting
// the whole vocabulary; the kept candidates are left unsorted.
void Sampler::drop_top_p_tail(float top_p) {
  auto worse = [&](int32_t a, int32_t b) { return work_[a] < work_[b] || (work_[a] == work_[b] && a > b); };
  double total = 0;
  for (int32_t i : cand_) total += work_[i];
  const double budget = (1.0 - static_cast<double>(top_p)) * total;
  double dropped = 0;
  size_t lo = 0, hi = cand_.size();  // cand_[0, lo) dropped; the cut lies in [lo, hi]
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(cand_.begin() + lo, cand_.begin() + mid, cand_.begin() + hi, worse);
    double mass = 0;  // cand_[lo, mid] are the (mid - lo + 1) least likely of [lo, hi)
    for (size_t i = lo; i <= mid; ++i) mass += work_[cand_[i]];
    if (dropped + mass <= budget) {
      dropped += mass;
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo >= cand_.size()) lo = cand_.size() - 1;  // keep at least one
  cand_.erase(cand_.begin(), cand_.begin() + lo);
}

SampledToken Sampler::sample(std::span<const float> logits, const SampleInput& in, std::span<const int32_t> eos_ids) {
  SampledToken out;
  const SamplingParams& p = *in.params;
  const int32_t V = static_cast<int32_t>(logits.size());
  for (float x : logits) {
    if (!std::isfinite(x)) {
      out.non_finite = true;
      return out;
    }
  }

  // ---- penalties and suppression on a copy ----
  work_.assign(logits.begin(), logits.end());
  if (p.repetition_penalty != 1.0f) {
    // HF: each distinct seen token once: positive logits divided, negative multiplied.
    cand_.clear();
    for (auto ids : {in.prompt_ids, in.output_ids})
      for (int32_t id : ids)
        if (id >= 0 && id < V) cand_.push_back(id);
    std::sort(cand_.begin(), cand_.end());
    cand_.erase(std::unique(cand_.begin(), cand_.end()), cand_.end());
    for (int32_t id : cand_) {
      float& l = work_[id];
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    // OpenAI: l -= frequency * count + presence * (count > 0), over output tokens.
    counts_.resize(V, 0);
    for (int32_t id : in.output_ids)
      if (id >= 0 && id < V) ++counts_[id];
    for (int32_t id : in.output_ids) {
      if (id < 0 || id >= V || counts_[id] == 0) continue;
      work_[id] -= p.frequency_penalty * static_cast<float>(counts_[id]) + p.presence_penalty;
      counts_[id] = 0;  // applied once per distinct id; leaves counts_ all zero again
    }
  }
  if (in.suppress_eos)
    for (int32_t id : eos_ids)
      if (id >= 0 && id < V) work_[id] = -INFINITY;

  // ---- choose ----
  if (is_greedy(p)) {
    out.id = argmax_lowest_id(work_);
  } else {
    const float inv_t = 1.0f / p.temperature;
    const float mx = max_of(work_.data(), work_.size());
    // Unnormalised probabilities exp((l - max) / T); masked tokens get 0.
    exp_shifted_in_place(work_, mx, inv_t);
    if (p.min_p > 0.0f) {
      // vLLM: drop tokens whose probability is below min_p × the top probability
      // (the top token has weight exp(0) = 1, so its probability is 1 / total).
      const float threshold = p.min_p;  // compared on the unnormalised scale (max = 1)
      for (float& w : work_)
        if (w < threshold) w = 0.0f;
    }
    cand_.clear();
    for (int32_t i = 0; i < V; ++i)
      if (work_[i] > 0.0f) cand_.push_back(i);
    const bool use_top_k = p.top_k > 0 && p.top_k < static_cast<int32_t>(cand_.size());
    if (use_top_k) {
      // Highest weight first, lowest id first among equals; vLLM keeps every
      // token tied with the k-th value.
      auto better = [&](int32_t a, int32_t b) { return work_[a] > work_[b] || (work_[a] == work_[b] && a < b); };
      std::nth_element(cand_.begin(), cand_.begin() + (p.top_k - 1), cand_.end(), better);
      const float kth = work_[cand_[p.top_k - 1]];
      auto keep_end = std::partition(cand_.begin(), cand_.end(), [&](int32_t i) { return work_[i] >= kth; });
      cand_.erase(keep_end, cand_.end());
    }
    if (p.top_p < 1.0f) drop_top_p_tail(p.top_p);
    if (cand_.empty()) cand_.push_back(argmax_lowest_id(logits));  // everything masked: fall back
    double sum = 0;
    for (int32_t i : cand_) sum += work_[i];
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    KR_CHECK_MSG(in.rng != nullptr, "Sampler: random sampling needs an rng");
    const double u = uni(*in.rng) * sum;
    double acc = 0;
    out.id = cand_.back();
    for (int32_t i : cand_) {
      acc += work_[i];
      if (u < acc) {
        out.id = i;
        break;
      }
    }
  }

  // ---- logprobs of the raw logits ----
  const double lse = log_sum_exp(logits);
  out.logprob = static_cast<float>(logits[out.id] - lse);
  if (p.logprobs > 0) {
    const int32_t k = std::min(p.logprobs, V);
    cand_.resize(V);
    for (int32_t i = 0; i < V; ++i) cand_[i] = i;
    auto higher = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), higher);
    out.top.reserve(k);
    for (int32_t r = 0; r < k; ++r)
      out.top.emplace_back(cand_[r], static_cast<float>(logits[cand_[r]] - lse));
  }
  return out;
}

}  // namespace kr
