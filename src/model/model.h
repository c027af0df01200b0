// Model: the forward pass of a decoder described by an ArchSpec (the Llama,
// Mistral, Qwen2, Qwen3, Gemma 2 and Gemma 3 families) as a sequence of Backend
// ops over a paged KV cache, fused ops included: what forward() calls is what runs. load_model() builds it from a
// Hugging Face folder (or a preset with dummy weights). Tokenizer-independent.
//
// Threading: the model, its backend and its KV cache belong to one thread (the
// engine thread); forward() must only be called from it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/hf_config.h"
#include "model/model_weights.h"

namespace kr {

struct ModelOptions {
  int32_t block_size = 16;             // tokens per KV block
  int32_t max_tokens_per_step = 2048;  // T bound: workspace rows
  int32_t max_logit_rows = 256;        // R bound: rows of logits one forward can return
  // Cap on KV-cache tokens (0: as many blocks as the backend's budget holds).
  int64_t max_kv_tokens = 0;
  // Element type of the KV cache (--kv-cache-dtype). fp8 takes the checkpoint's
  // per-layer k_scale / v_scale (ModelWeights::kv_scales), else 1.0; it holds
  // bytes per element of activation_dtype() times as many blocks.
  KvCacheDType kv_cache_dtype = KvCacheDType::kAuto;
  // Random weights of the configured shape instead of safetensors.
  bool dummy_weights = false;
  uint64_t dummy_seed = 1234;
  // With dummy_weights: random quantized Linears of this format
  // (model/quant/dummy_quant.h, e.g. "awq", "fp8"); empty: BF16.
  std::string dummy_quant;
  // Built-in config instead of DIR/config.json (model_config_preset_names(), e.g.
  // "llama-3.1-8b"); needs no folder with dummy_weights.
  std::string arch;
};

class Model {
 public:
  Model(ModelConfig config, GenerationDefaults gen, std::unique_ptr<ModelWeights> weights, Backend& backend,
             const ModelOptions& options);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Allocates workspace and the KV cache. ResourceExhausted when the budget holds no block.
  Status init();

  // One forward step. `meta` describes the batch (meta.num_tokens == token_ids.size());
  // `logit_rows` picks the token rows whose logits are wanted (e.g. each sequence's
  // last token). Returns logits [R, V] kF32 on the backend, valid until the next call.
  // InvalidArgument for ids out of vocabulary, too many tokens/rows, bad block ids.
  // Inside a replayed step graph (Backend::begin_graph) it copies the step's inputs
  // and leaves the ops to the recording, which runs at end_graph().
  // fed_ids (an overlapped decode step): the step's token ids are not copied from
  // token_ids (whose values are then ignored, only its size counts) but come from the
  // backend's latest launch_argmax, by Backend::feed_sampled_ids, the step's first op.
  StatusOr<Tensor> forward(const StepMetadata& meta, std::span<const int32_t> token_ids,
                           std::span<const int32_t> logit_rows, bool fed_ids = false);

  // Runs each distinct matmul of a layer once at every step size T in `step_tokens`
  // (each <= max_tokens_per_step; the step buffers are scratch here, the KV cache
  // is not touched): a backend that picks and loads kernels per shape at first use
  // (CUDA: cuBLAS) does it now instead of in a serving step. Between steps only.
  void warm_up_matmuls(std::span<const int32_t> step_tokens);

  const ModelConfig& config() const { return config_; }
  const GenerationDefaults& generation_defaults() const { return gen_; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  Backend& backend() { return backend_; }
  int32_t block_size() const { return options_.block_size; }
  int32_t num_kv_blocks() const { return num_kv_blocks_; }
  int32_t max_tokens_per_step() const { return options_.max_tokens_per_step; }
  int32_t max_logit_rows() const { return options_.max_logit_rows; }
  size_t weight_bytes() const { return weights_->weight_bytes; }
  const ModelWeights& weights() const { return *weights_; }
  size_t kv_cache_bytes() const { return kv_cache_bytes_; }
  // The cache's element type after `auto` was resolved: kBf16 (the activation
  // dtype) or kFp8.
  KvCacheDType kv_cache_dtype() const { return kv_dtype_; }
  // The paged KV cache, one KvLayer per layer (the host tier copies blocks of it).
  std::span<const KvLayer> kv_layers() const { return kv_; }

 private:
  Status validate_step(const StepMetadata& meta, std::span<const int32_t> token_ids,
                       std::span<const int32_t> logit_rows, bool fed_ids) const;

  ModelConfig config_;
  GenerationDefaults gen_;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<ModelWeights> weights_;
  Backend& backend_;
  ModelOptions options_;
  // Per-layer op parameters, built by init() (they point into ropes_ and weights_).
  float embed_scale_ = 1.0f;                  // embeddings × this (Gemma: sqrt(H) in the weight dtype)
  std::vector<RopeParams> ropes_;             // [2]: global, sliding (when it has its own)
  std::vector<QkvParams> layer_qkv_;          // [layers] bias, q/k norms, RoPE
  std::vector<AttentionParams> layer_attn_;   // [layers] scale, window, soft-cap
  // [layers] the layers as Backend::decode_stack takes them (empty: a model with
  // post-norms, which the composed loop in forward() runs).
  std::vector<Backend::DecodeLayer> decode_layers_;
  int32_t num_kv_blocks_ = 0;
  KvCacheDType kv_dtype_ = KvCacheDType::kBf16;
  size_t kv_cache_bytes_ = 0;
  std::vector<KvLayer> kv_;  // [layers]

  // Workspace, allocated once for max_tokens_per_step rows (T) / max_logit_rows (R).
  Tensor ids_;       // [T] i32
  Tensor residual_;  // [T, H]
  Tensor normed_;    // [T, H]
  Tensor qkv_;       // [T, (Hq + 2 Hkv) * D]
  Tensor attn_;      // [T, Hq * D]
  Tensor proj_;      // [T, H]: output of o_proj and of down_proj
  Tensor gate_up_;   // [T, 2 I]
  Tensor act_;       // [T, I]
  // FP8 rows of normed, attn and act for the W8A8 matmuls that read them, written
  // by the ops that produce them (Fp8Rows); allocated only where the backend
  // writes them for some layer's weights (Backend::writes_fp8_rows).
  Fp8Rows normed_fp8_;  // codes [T, H] e4m3, scales [T] f32
  Fp8Rows act_fp8_;     // codes [T, I] e4m3, scales [T] f32
  Fp8Rows attn_fp8_;    // codes [T, Hq * D] e4m3, scales [T] f32 (for o_proj; only where
                        // Backend::attention_writes_fp8_rows)
  Tensor row_idx_;   // [R] i32
  Tensor last_;      // [R, H]
  Tensor logits_;    // [R, V] f32
};

// Reads DIR/config.json (or options.arch's preset), DIR/generation_config.json
// (optional), the safetensors (or dummy weights), and initialises the model on
// `backend`, which must outlive the model. Errors name the file/key/tensor.
StatusOr<std::unique_ptr<Model>> load_model(const std::string& dir, Backend& backend,
                                                 const ModelOptions& options);

}  // namespace kr
