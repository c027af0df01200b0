// LlamaRunner: the ModelRunner of a Llama model. Each step it turns the
// SeqSteps into StepMetadata (positions, slot_mapping from the block tables,
// context lengths), runs LlamaModel::forward, copies the logits of the rows
// that sample to the host and samples them with the CPU Sampler. When every
// sampled row is plain greedy (no penalties, no top logprobs), the backend's
// argmax_logprob picks on the device and only ids come back; pure decode steps
// run inside Backend::begin_graph/end_graph (step graphs on CUDA).
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
#include "model/llama_model.h"

namespace kr {

class LlamaRunner final : public ModelRunner {
 public:
  // Takes ownership of both; the model must have been loaded on `backend`.
  LlamaRunner(std::unique_ptr<Backend> backend, std::unique_ptr<LlamaModel> model);
  ~LlamaRunner() override;

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

  LlamaModel& model() { return *model_; }
  Backend& backend() { return *backend_; }
  int32_t max_tokens_per_step() const { return model_->max_tokens_per_step(); }
  int32_t max_seqs_per_step() const { return model_->max_logit_rows(); }

 private:
  Status build_metadata(std::span<const SeqStep> seqs);

  std::unique_ptr<Backend> backend_;  // declared first: destroyed after the model
  std::unique_ptr<LlamaModel> model_;
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
  bool use_graphs_ = true;
};

// Loads `model_dir` (or options.arch with options.dummy_weights) onto `backend`
// and wraps it in a runner. options.block_size is the KV block size (16 by default).
StatusOr<std::unique_ptr<LlamaRunner>> make_llama_runner(const std::string& model_dir,
                                                         std::unique_ptr<Backend> backend,
                                                         const ModelOptions& options);

}  // namespace kr
