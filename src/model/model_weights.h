// ModelWeights: every weight of a decoder (the families of model/arch_spec.h),
// validated against the config and handed to the backend. q/k/v are fused into
// one [(Hq + 2 Hkv) * D, H] matrix (and their biases into one vector) and
// gate/up into one [2 I, H] matrix at load (one matmul instead of three/two).
//
// Tensor names are Hugging Face's: model.layers.N.* (plus, by ArchSpec, the
// q/k/v biases, q_norm/k_norm, and Gemma's four norms), under language_model.model.*
// (published) or model.language_model.* (transformers 5) for the text model of
// a vision-language folder, whose vision tensors are skipped with one log line.
//
// Linears (and the embedding) may be quantized: a module is read as the
// checkpoint stores it (model/quant/quant_loader.h), fused the same way
// (fuse_rows) and uploaded with Backend::upload_quantized; never dequantized to a
// dense fallback. Norms and biases stay dense whatever the format.
//
// Threading: built on the backend's thread; immutable afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/hf_config.h"
#include "model/quant/quant_config.h"
#include "model/quant/quant_loader.h"
#include "model/safetensors.h"

namespace kr {

// Optional tensors are empty (Tensor::empty()) where the family has none.
struct LayerWeights {
  Tensor input_norm;     // [H] input_layernorm
  LinearWeight qkv;      // [(Hq + 2 Hkv) * D, H]: rows of q, then k, then v
  Tensor qkv_bias;       // [(Hq + 2 Hkv) * D] q/k/v biases (Qwen2), optional
  Tensor q_norm;         // [D] self_attn.q_norm (Qwen3, Gemma 3), optional
  Tensor k_norm;         // [D] self_attn.k_norm, with q_norm
  LinearWeight o;        // [H, Hq * D]
  Tensor attn_out_norm;  // [H] norm of o's output (Gemma: post_attention_layernorm), optional
  Tensor mlp_norm;       // [H] norm before the MLP (Llama: post_attention_layernorm; Gemma: pre_feedforward_layernorm)
  LinearWeight gate_up;  // [2 I, H]: rows of gate, then up
  LinearWeight down;     // [H, I]
  Tensor mlp_out_norm;   // [H] norm of down's output (Gemma: post_feedforward_layernorm), optional
};

struct ModelWeights {
  LinearWeight embed;    // [V, H]
  Tensor final_norm;     // [H]
  LinearWeight lm_head;  // [V, H]; the same weight as embed when tied
  std::vector<LayerWeights> layers;
  // Per-layer FP8 KV-cache scales the checkpoint carries (empty when it has none).
  std::vector<KvCacheScales> kv_scales;
  // The quantization config declares an FP8 KV cache (kv_cache_scheme,
  // kv_cache_quant_algo): what --kv-cache-dtype auto follows.
  bool fp8_kv_cache = false;

  // Host memory the backend may still point at (see Backend::upload_keeps_host_pointer).
  std::unique_ptr<SafetensorsSet> files;
  std::vector<std::unique_ptr<uint16_t[]>> host_buffers;  // fused or dummy weights (16-bit)
  std::vector<std::unique_ptr<float[]>> host_buffers_f32;  // fused f32 weights
  size_t weight_bytes = 0;                                 // total bytes of all weights
};

// Checks names, shapes and dtypes (missing or extra tensors are errors naming
// them), fuses, and uploads. `quant` says how the checkpoint is quantized (a
// default QuantConfig: not at all); `files` must then be opened with
// DTypePolicy::kAny. Takes ownership of `files`.
StatusOr<std::unique_ptr<ModelWeights>> load_model_weights(const ModelConfig& config,
                                                           std::unique_ptr<SafetensorsSet> files,
                                                           Backend& backend, const QuantConfig& quant = {});

// Random weights of the configured shape (vLLM's --load-format dummy): BF16
// uniform in ±0.02, norms the identity (weights 1 for x̂ · w, 0 for x̂ · (1 + w));
// with `quant_format` (model/quant/dummy_quant.h: "awq", "mlx4", "fp8", ...) the
// Linears of the decoder layers are random quantized matrices of that format
// instead (embedding and lm_head stay BF16).
// Deterministic for a seed.
StatusOr<std::unique_ptr<ModelWeights>> make_dummy_weights(const ModelConfig& config, Backend& backend,
                                                           uint64_t seed, const std::string& quant_format = "");

}  // namespace kr
