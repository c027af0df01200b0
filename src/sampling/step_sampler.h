// StepSampler: one token per logits row of a step. It picks one of three paths
// for the whole step, explicitly (choose_path), and runs it:
//  - kDeviceArgmax: every row is plain greedy (no penalties, no EOS
//    suppression, no top logprobs): Backend::argmax_logprob, ids and logprobs
//    come back;
//  - kDeviceSample: device sampling is on (the backend implements
//    Backend::sample and it was not switched off) and every row fits it (at
//    most kDeviceSamplingMaxTop logprobs): Backend::sample on rows packed by
//    pack_device_sampling, ids and logprobs come back;
//  - kHost: the logits rows are copied to the host and sampled by the CPU
//    Sampler (the reference), rows in parallel on a small pool.
// A backend may refuse a device path (its call returns false); the step then
// takes the next path: argmax -> device sampling (when allowed) -> host. Every path gives what the host Sampler gives (checked
// by the tests here and by kr-sampling-check on the GPU).
//
// Constrained decoding plugs in here: a per-row token mask travels in
// SampleInput and is applied to the logits rows before the path is chosen
// (masked rows then cannot take kDeviceArgmax unless the backend applies it).
//
// Threading: the thread that owns the backend (the engine thread).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "base/thread_pool.h"
#include "sampling/device_sampling_batch.h"
#include "sampling/sampled_token.h"
#include "sampling/sampler.h"

namespace kr {

enum class SamplingPath { kDeviceArgmax, kDeviceSample, kHost };
const char* sampling_path_name(SamplingPath p);  // "device_argmax", "device_sample", "host"

// Greedy with nothing that needs the full row on the host.
bool is_plain_greedy(const SampleInput& row);

class StepSampler {
 public:
  // `backend` and `eos_ids` (the model's) must outlive the sampler. vocab = V.
  StepSampler(Backend* backend, int32_t vocab, std::span<const int32_t> eos_ids);

  // Device sampling for rows that are not plain greedy: on by default where
  // the backend implements Backend::sample; off samples them on the host.
  void set_use_device_sampling(bool on) { use_device_sampling_ = on && backend_->implements_sample(); }

  SamplingPath choose_path(std::span<const SampleInput> rows) const;

  // logits: [R, V] f32 on the backend, row r for rows[r]. `out` gets R tokens
  // in order. Rows without an rng draw from a generator seeded 0.
  void sample(const Tensor& logits, std::span<const SampleInput> rows, std::vector<SampledToken>* out);

  SamplingPath last_path() const { return last_path_; }  // the path the last sample() took

 private:
  bool sample_argmax(const Tensor& logits, size_t num_rows, std::vector<SampledToken>* out);
  bool sample_on_device(const Tensor& logits, std::span<const SampleInput> rows, std::vector<SampledToken>* out);
  void sample_on_host(const Tensor& logits, std::span<const SampleInput> rows, std::vector<SampledToken>* out);

  Backend* backend_;
  int32_t vocab_;
  std::span<const int32_t> eos_ids_;
  bool use_device_sampling_ = false;
  SamplingPath last_path_ = SamplingPath::kHost;
  std::mt19937_64 default_rng_{0};
  // Device paths' scratch.
  std::vector<int32_t> argmax_ids_;      // [R]
  std::vector<float> argmax_logprobs_;   // [R]
  DeviceSamplingBatch device_batch_;
  std::vector<DeviceSampleResult> device_results_;  // [R]
  // Host path: one Sampler per part, parts run on the pool.
  ThreadPool pool_;
  std::vector<Sampler> samplers_;
  std::vector<float> logits_host_;  // [R, V]
};

}  // namespace kr
