// ForwardRunner: the ModelRunner of a Model (any supported family). Each step it turns the
// SeqSteps into StepMetadata (positions, slot_mapping from the block tables,
// context lengths), runs Model::forward, copies the logits of the rows
// that sample to the host and samples them with the CPU Sampler. When every
// sampled row is plain greedy (no penalties, no top logprobs), the backend's
// argmax_logprob picks on the device and only ids come back; otherwise, where
// the backend implements Backend::sample (CUDA), every row is sampled on the
// device (penalties, temperature, top-k/p, min-p, top logprobs) and again only
// ids and logprobs come back. Pure decode steps run inside
// Backend::begin_graph/end_graph (step graphs on CUDA).
//
// Threading: engine thread only (it owns the backend, the model and the KV cache).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "base/thread_pool.h"
#include "engine/model_runner.h"
#include "engine/sampler.h"
#include "model/model.h"

namespace kr {

// Backend::sample's inputs for the sampling rows of one step.
struct DeviceSamplingBatch {
  std::vector<DeviceSamplingRow> rows;  // [R] one per SeqStep with sample == true, in order
  std::vector<int32_t> penalty_ids;     // [P] per-row ranges, ids ascending
  std::vector<int32_t> penalty_counts;  // [P] occurrences in the row's output ids
  std::vector<int32_t> scratch;
};

// Appends one row for params `p` to batch->rows (random_bits 0) and the penalty
// entries of prompt_ids/output_ids to the batch's penalty arrays.
void append_device_row(const SamplingParams& p, bool suppress_eos, std::span<const int32_t> prompt_ids,
                       std::span<const int32_t> output_ids, int32_t vocab, DeviceSamplingBatch* batch);

// Packs the sampling SeqSteps of `seqs` into `batch` (cleared first). Rows that
// draw (temperature >= 1e-5) take one 64-bit value from their sequence's rng
// (`default_rng` when it has none), as the host Sampler takes one per draw, so
// a seeded request is reproducible. Penalty entries are packed only for rows
// whose penalties are on. Returns false, drawing nothing, when a row asks for
// more than kDeviceSamplingMaxTop logprobs (the host serves the step).
bool pack_device_sampling(std::span<const SeqStep> seqs, int32_t vocab, std::mt19937_64* default_rng,
                          DeviceSamplingBatch* batch);

class ForwardRunner final : public ModelRunner {
 public:
  // Takes ownership of both; the model must have been loaded on `backend`.
  ForwardRunner(std::unique_ptr<Backend> backend, std::unique_ptr<Model> model);
  ~ForwardRunner() override;

  int32_t block_size() const override { return model_->block_size(); }
  int32_t num_kv_blocks() const override { return model_->num_kv_blocks(); }
  // min(max_position_embeddings, tokens the whole KV cache holds).
  int32_t max_model_len() const override;
  std::span<const int32_t> eos_ids() const override { return model_->eos_ids(); }
  // InvalidArgument (nothing run) for an empty step, a step over
  // max_tokens_per_step tokens or max_logit_rows samplers, a block table that
  // does not cover start_pos + tokens, or a sampling SeqStep without params.
  Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) override;

  // Step graphs for pure decode steps (on by default; a no-op on backends without them).
  void set_use_graphs(bool on) { use_graphs_ = on; }
  // Backend::sample for rows that are not plain greedy (on by default where the
  // backend implements it; off samples them on the host).
  void set_use_device_sampling(bool on) { use_device_sampling_ = on && backend_samples_; }

  Model& model() { return *model_; }
  Backend& backend() { return *backend_; }
  int32_t max_tokens_per_step() const { return model_->max_tokens_per_step(); }
  int32_t max_seqs_per_step() const { return model_->max_logit_rows(); }

 private:
  Status build_metadata(std::span<const SeqStep> seqs);

  std::unique_ptr<Backend> backend_;  // declared first: destroyed after the model
  std::unique_ptr<Model> model_;
  // Host sampling of non-greedy rows: one Sampler per part, parts run on the pool.
  ThreadPool sample_pool_{std::min(16, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())))};
  std::vector<Sampler> samplers_;
  std::vector<std::pair<int64_t, SampleInput>> sample_inputs_;
  std::vector<SampledToken> sampled_;
  std::mt19937_64 default_rng_{0};  // for a sampling step that brings no rng
  // Per-step scratch, reused.
  StepMetadata meta_;
  std::vector<int32_t> token_ids_;
  std::vector<int32_t> logit_rows_;
  std::vector<float> logits_host_;  // [R, V]
  std::vector<int32_t> device_ids_;   // [R] from Backend::argmax_logprob
  std::vector<float> device_logprobs_;
  DeviceSamplingBatch device_batch_;              // Backend::sample inputs
  std::vector<DeviceSampleResult> device_results_;
  bool use_graphs_ = true;
  bool backend_samples_ = false;  // Backend::implements_sample()
  bool use_device_sampling_ = false;
};

// Loads `model_dir` (or options.arch with options.dummy_weights) onto `backend`
// and wraps it in a runner. options.block_size is the KV block size (16 by default).
StatusOr<std::unique_ptr<ForwardRunner>> make_forward_runner(const std::string& model_dir,
                                                         std::unique_ptr<Backend> backend,
                                                         const ModelOptions& options);

}  // namespace kr
