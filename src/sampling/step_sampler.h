// StepSampler: one token per logits row of a step. It picks one of three paths
// for the whole step, explicitly (choose_path), and runs it:
//  - kDeviceArgmax: every row is plain greedy (no penalties, no EOS
//    suppression, no top logprobs): Backend::launch_argmax, ids and logprobs
//    come back at finish() (Backend::argmax_logprob where launch_argmax is
//    not implemented);
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
// Constrained decoding: the step's token masks (StepTokenMasks, from
// StepMasks) are applied to the logits rows on the backend
// (Backend::apply_token_mask: -inf where a token is not allowed) before the
// path is chosen, so every path, device argmax included, samples from the
// masked rows (their SampleInputs have `masked` set).
//
// Threading: the thread that owns the backend (the engine thread).
#pragma once

#include <cstdint>
#include <deque>
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

// The token masks of a step's rows: row rows[m] has its allowed-token bits at
// words + m * words_per_row (Backend::apply_token_mask's layout).
struct StepTokenMasks {
  std::span<const int32_t> rows;  // [M] ascending
  const uint32_t* words = nullptr;
  size_t words_per_row = 0;
};

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
  void sample(const Tensor& logits, std::span<const SampleInput> rows, std::vector<SampledToken>* out) {
    sample(logits, rows, StepTokenMasks{}, out);
  }
  // The same after masking `masks.rows` of the logits in place; those rows'
  // SampleInputs must have `masked` set. sample() is begin() then finish().
  void sample(const Tensor& logits, std::span<const SampleInput> rows, const StepTokenMasks& masks,
              std::vector<SampledToken>* out);

  // A step's sampling in two halves, for the overlapped decode (ForwardRunner::launch /
  // collect). begin: on the device argmax path it only enqueues the backend's argmax
  // (Backend::launch_argmax) and returns true: the ids stay on the device for the next
  // step (Backend::feed_sampled_ids) and reach the host at finish(). On the other paths
  // it samples now (waiting for the device) and returns false. finish: the tokens of the
  // oldest begun step, R in order (it waits for that step's argmax only). At most
  // Backend::kArgmaxSlots begun and not finished.
  bool begin(const Tensor& logits, std::span<const SampleInput> rows, const StepTokenMasks& masks);
  void finish(std::vector<SampledToken>* out);
  size_t num_begun() const { return begun_.size(); }  // begun, not finished

  SamplingPath last_path() const { return last_path_; }  // the path the last begin() took

 private:
  bool sample_argmax(const Tensor& logits, size_t num_rows, std::vector<SampledToken>* out);
  void argmax_tokens(size_t num_rows, std::vector<SampledToken>* out) const;
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
  // Begun steps, oldest first: an argmax launch's ticket and rows, or (ticket 0) tokens
  // sampled already.
  struct Begun {
    int64_t ticket = 0;
    size_t num_rows = 0;
    std::vector<SampledToken> tokens;
  };
  std::deque<Begun> begun_;
  DeviceSamplingBatch device_batch_;
  std::vector<DeviceSampleResult> device_results_;  // [R]
  // Host path: one Sampler per part, parts run on the pool.
  ThreadPool pool_;
  std::vector<Sampler> samplers_;
  std::vector<float> logits_host_;  // [R, V]
};

}  // namespace kr
