#include "sampling/step_sampler.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "base/check.h"

namespace kr {
namespace {

int host_sampling_threads() {
  return std::min(16, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace

const char* sampling_path_name(SamplingPath p) {
  switch (p) {
    case SamplingPath::kDeviceArgmax: return "device_argmax";
    case SamplingPath::kDeviceSample: return "device_sample";
    case SamplingPath::kHost: return "host";
  }
  return "unknown";
}

bool is_plain_greedy(const SampleInput& row) {
  const SamplingParams& p = *row.params;
  return is_greedy(p) && !has_penalties(p) && !row.suppress_eos && p.logprobs <= 0;
}

StepSampler::StepSampler(Backend* backend, int32_t vocab, std::span<const int32_t> eos_ids)
    : backend_(backend), vocab_(vocab), eos_ids_(eos_ids), pool_(host_sampling_threads()) {
  KR_CHECK(backend_ != nullptr && vocab_ > 0);
  // No random bits are drawn for a backend without device sampling (the CPU).
  use_device_sampling_ = backend_->implements_sample();
}

SamplingPath StepSampler::choose_path(std::span<const SampleInput> rows) const {
  if (std::all_of(rows.begin(), rows.end(), is_plain_greedy)) return SamplingPath::kDeviceArgmax;
  if (use_device_sampling_ && fits_device_sampling(rows)) return SamplingPath::kDeviceSample;
  return SamplingPath::kHost;
}

void StepSampler::sample(const Tensor& logits, std::span<const SampleInput> rows, const StepTokenMasks& masks,
                         std::vector<SampledToken>* out) {
  KR_CHECK_MSG(begun_.empty(), "StepSampler::sample while begun steps are unfinished");
  begin(logits, rows, masks);
  finish(out);
}

bool StepSampler::begin(const Tensor& logits, std::span<const SampleInput> rows, const StepTokenMasks& masks) {
  KR_CHECK_MSG(begun_.size() < static_cast<size_t>(Backend::kArgmaxSlots), "StepSampler: too many begun steps");
  Begun& b = begun_.emplace_back();
  b.num_rows = rows.size();
  if (rows.empty()) return false;
  if (!masks.rows.empty()) {
    for (int32_t r : masks.rows)
      KR_CHECK_MSG(r >= 0 && static_cast<size_t>(r) < rows.size() && rows[static_cast<size_t>(r)].masked,
                   "StepSampler: a masked row without SampleInput::masked");
    Tensor masked = logits;
    backend_->apply_token_mask(masked, masks.rows, masks.words, masks.words_per_row);
  }
  last_path_ = choose_path(rows);
  // A device path the backend refuses falls to the next: argmax -> device sampling -> host.
  if (last_path_ == SamplingPath::kDeviceArgmax) {
    b.ticket = backend_->launch_argmax(logits);
    if (b.ticket > 0) return true;
    b.ticket = 0;
    if (sample_argmax(logits, rows.size(), &b.tokens)) return false;
    last_path_ = use_device_sampling_ && fits_device_sampling(rows) ? SamplingPath::kDeviceSample : SamplingPath::kHost;
  }
  if (last_path_ == SamplingPath::kDeviceSample) {
    if (sample_on_device(logits, rows, &b.tokens)) return false;
    last_path_ = SamplingPath::kHost;
  }
  sample_on_host(logits, rows, &b.tokens);
  return false;
}

void StepSampler::finish(std::vector<SampledToken>* out) {
  KR_CHECK_MSG(!begun_.empty(), "StepSampler::finish without a begun step");
  Begun& b = begun_.front();
  out->clear();
  if (b.ticket > 0) {
    argmax_ids_.resize(b.num_rows);
    argmax_logprobs_.resize(b.num_rows);
    backend_->read_argmax(b.ticket, argmax_ids_.data(), argmax_logprobs_.data());
    argmax_tokens(b.num_rows, out);
  } else {
    out->swap(b.tokens);
  }
  begun_.pop_front();
}

bool StepSampler::sample_argmax(const Tensor& logits, size_t num_rows, std::vector<SampledToken>* out) {
  argmax_ids_.resize(num_rows);
  argmax_logprobs_.resize(num_rows);
  if (!backend_->argmax_logprob(logits, argmax_ids_.data(), argmax_logprobs_.data())) return false;
  argmax_tokens(num_rows, out);
  return true;
}

void StepSampler::argmax_tokens(size_t num_rows, std::vector<SampledToken>* out) const {
  out->resize(num_rows);
  for (size_t r = 0; r < num_rows; ++r) {
    SampledToken& t = (*out)[r];
    t.logprob = argmax_logprobs_[r];
    t.non_finite = !std::isfinite(t.logprob);
    t.id = t.non_finite ? -1 : argmax_ids_[r];
  }
}

bool StepSampler::sample_on_device(const Tensor& logits, std::span<const SampleInput> rows,
                                   std::vector<SampledToken>* out) {
  pack_device_sampling(rows, vocab_, &default_rng_, &device_batch_);
  device_results_.resize(rows.size());
  if (!backend_->sample(logits, device_batch_.rows, device_batch_.penalty_ids, device_batch_.penalty_counts,
                        eos_ids_, device_results_.data()))
    return false;
  out->resize(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const DeviceSampleResult& d = device_results_[r];
    SampledToken& t = (*out)[r];
    t.non_finite = d.non_finite != 0;
    t.id = t.non_finite ? -1 : d.id;
    t.logprob = d.logprob;
    t.top.reserve(static_cast<size_t>(d.num_top));
    for (int32_t k = 0; k < d.num_top; ++k) t.top.emplace_back(d.top_ids[k], d.top_logprobs[k]);
  }
  return true;
}

void StepSampler::sample_on_host(const Tensor& logits, std::span<const SampleInput> rows,
                                 std::vector<SampledToken>* out) {
  const size_t V = static_cast<size_t>(vocab_);
  logits_host_.resize(rows.size() * V);
  backend_->copy_to_host(logits_host_.data(), logits, logits_host_.size() * sizeof(float));
  // Rows are independent (each has its own rng), so they are sampled in parallel:
  // at batch 64 the host sampler would otherwise dominate the step.
  // Rows without their own rng share default_rng_: those run on one thread.
  const int64_t num_rows = static_cast<int64_t>(rows.size());
  const bool shared_rng = std::any_of(rows.begin(), rows.end(), [](const SampleInput& in) { return in.rng == nullptr; });
  const int64_t parts = shared_rng ? 1 : std::min<int64_t>(num_rows, pool_.num_threads());
  if (static_cast<int64_t>(samplers_.size()) < parts) samplers_.resize(static_cast<size_t>(parts));
  out->assign(rows.size(), SampledToken{});
  auto sample_part = [&](int64_t part_begin, int64_t part_end) {
    for (int64_t part = part_begin; part < part_end; ++part) {
      for (int64_t r = part * num_rows / parts; r < (part + 1) * num_rows / parts; ++r) {
        SampleInput in = rows[static_cast<size_t>(r)];
        if (in.rng == nullptr) in.rng = &default_rng_;
        (*out)[static_cast<size_t>(r)] = samplers_[static_cast<size_t>(part)].sample(
            std::span<const float>(logits_host_.data() + static_cast<size_t>(r) * V, V), in, eos_ids_);
      }
    }
  };
  if (parts <= 1) {
    sample_part(0, parts);
  } else {
    pool_.parallel_for(parts, 1, sample_part);
  }
}

}  // namespace kr
