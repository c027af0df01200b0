// ForwardRunner: the ModelRunner of a Model (any supported family). A step is a
// short pipeline:
//   1. build_metadata: the SeqSteps become StepMetadata (positions,
//      slot_mapping from the block tables, context lengths), the token ids and
//      the logits rows to compute (the last new token of every sampling
//      sequence), with the rows' SampleInputs;
//   2. forward: Model::forward over all tokens; pure decode steps run inside
//      Backend::begin_graph/end_graph (step graphs on CUDA);
//   3. sample: StepSampler picks device argmax, device sampling or the host
//      Sampler for the step's rows (sampling/step_sampler.h).
// Constrained rows (SeqStep::constraint): their token masks are computed by
// StepMasks workers while step 2 runs on the device (sampling/step_masks.h
// says how the overlap works), then applied to the logits before step 3.
//
// Threading: engine thread only (it owns the backend, the model and the KV cache).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/model_runner.h"
#include "model/model.h"
#include "sampling/step_masks.h"
#include "sampling/step_sampler.h"

namespace kr {

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
  // From the model's shape (matmul FLOPs per token, attention FLOPs per pair and
  // K/V bytes per key, per layer kind) and the backend's rates.
  StepCostModel step_cost_model() const override;
  bool warm_up(std::span<const int32_t> step_tokens) override;
  // InvalidArgument (nothing run) for an empty step, a step over
  // max_tokens_per_step tokens or max_logit_rows samplers, a block table that
  // does not cover start_pos + tokens, or a sampling SeqStep without params.
  Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) override;
  // Overlapped decode: step() is launch() then collect(). A step whose rows are all
  // plain greedy and unconstrained leaves its argmax on the device at launch (its ids
  // feed the next launch's fed step: Backend::feed_sampled_ids); any other step is
  // sampled at launch (the host waits there) and handed over at collect.
  bool can_feed(const SeqStep& s) const override;
  Status launch(std::span<const SeqStep> seqs) override;
  Status collect(std::vector<SampledToken>* out) override;
  int num_launched() const override { return static_cast<int>(launched_.size()); }

  // The host tier: host slots of kv_block_bytes() from Backend::alloc_host_memory,
  // copies through Backend::copy_kv_blocks.
  int64_t kv_block_bytes() const override;
  Status init_host_tier(int32_t num_slots) override;
  int32_t num_host_slots() const override { return host_slots_; }
  uint64_t copy_kv_blocks(std::span<const KvBlockCopy> copies, bool to_host) override;
  bool kv_copies_done(uint64_t ticket) override { return backend_->kv_copies_done(ticket); }
  void wait_kv_copies(uint64_t ticket) override { backend_->wait_kv_copies(ticket); }

  Model& model() { return *model_; }
  StepSampler& sampler() { return sampler_; }
  const StepMasks::Stats& mask_stats() const { return masks_.stats(); }
  int32_t max_tokens_per_step() const { return model_->max_tokens_per_step(); }

 private:
  Status build_metadata(std::span<const SeqStep> seqs);
  StatusOr<Tensor> forward(bool fed_ids);

  std::unique_ptr<Backend> backend_;  // declared first: destroyed after the model
  std::unique_ptr<Model> model_;
  StepSampler sampler_;
  // Per-step scratch, reused.
  StepMetadata meta_;
  std::vector<int32_t> token_ids_;         // [T]
  std::vector<int32_t> logit_rows_;        // [R] token index of each sampled row
  std::vector<SampleInput> sample_rows_;   // [R]
  void* host_tier_ = nullptr;              // [host_slots_, kv_block_bytes()]
  int32_t host_slots_ = 0;
  std::vector<TokenConstraint*> row_constraints_;  // [R] null: free
  StepMasks masks_;
  // Launched steps, oldest first: their sampling sequences (a fed step must follow
  // the same), whether the argmax stayed on the device, and the rows whose grammar
  // allowed no token.
  struct Launched {
    std::vector<int64_t> seq_ids;
    bool on_device = false;
    std::vector<int32_t> dead_ends;
  };
  std::deque<Launched> launched_;
};

// Loads `model_dir` (or options.arch with options.dummy_weights) onto `backend`
// and wraps it in a runner. options.block_size is the KV block size (16 by default).
StatusOr<std::unique_ptr<ForwardRunner>> make_forward_runner(const std::string& model_dir,
                                                             std::unique_ptr<Backend> backend,
                                                             const ModelOptions& options);

}  // namespace kr
