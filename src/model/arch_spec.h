// ArchSpec: what a decoder family's forward pass is made of, as data. Model's
// one forward (model.cc) follows it; hf_config.cc fills it from config.json:
// first the family's fixed traits (family_arch_spec, by `architectures`), then
// the keys that family's Hugging Face config defines (Llama: hidden_act,
// attention_bias, mlp_bias). A family that differs from Llama only in these
// fields is new data here plus the ops its values need, not a new forward.
//
// Today the forward runs the Llama values (and any query_pre_attn_scalar);
// check_forward_supports() turns every other value into an error that names the
// config key (or the architecture, for traits no key sets).
//
// Plain structs; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace kr {

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;                   // llama3
  double high_freq_factor = 4.0;                  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

// How an RMS norm applies its weight to x̂ = x / sqrt(mean(x²) + eps).
enum class NormKind {
  kTimesWeight,         // x̂ * w (Llama, Mistral, Qwen)
  kTimesOnePlusWeight,  // x̂ * (1 + w) (Gemma)
};

enum class Activation {
  kSilu,      // SwiGLU: silu(gate) * up ("silu")
  kGeluTanh,  // GeGLU: gelu_tanh(gate) * up ("gelu_pytorch_tanh")
};

enum class AttentionKind {
  kGlobal,   // every earlier position
  kSliding,  // the last ArchSpec::sliding_window positions, with the sliding RoPE
};

struct ArchSpec {
  std::string architecture;  // config.json architectures[0], e.g. "LlamaForCausalLM"

  // Norms. Every layer has an input norm (before attention) and a norm before the
  // MLP; post norms also normalise a block's output before the residual add.
  NormKind norm = NormKind::kTimesWeight;
  bool post_attention_norm = false;    // norm of o_proj's output (Gemma 2/3)
  bool post_feedforward_norm = false;  // norm of down_proj's output (Gemma 2/3)
  bool qk_norm = false;                // per-head RMS norm of q and k before RoPE (Qwen3, Gemma 3)

  // Biases (config: attention_bias, mlp_bias; Qwen2 has q/k/v biases only).
  bool qkv_bias = false;
  bool o_bias = false;
  bool mlp_bias = false;

  Activation activation = Activation::kSilu;  // config: hidden_act (hidden_activation)

  float embedding_scale = 1.0f;       // embeddings times this (Gemma: sqrt(hidden_size))
  float attn_logit_softcap = 0.0f;    // config: attn_logit_softcapping; 0: none
  float final_logit_softcap = 0.0f;   // config: final_logit_softcapping; 0: none
  float query_pre_attn_scalar = 0.0f;  // attention scale 1/sqrt(this); 0: head_dim

  // Attention per layer (config: layer_types, sliding_window). Global layers use
  // the config's RoPE (rope_theta, rope_scaling); sliding ones sliding_rope_theta
  // without scaling (Gemma 3: rope_local_base_freq), or the global RoPE when 0.
  std::vector<AttentionKind> layer_attention;  // [num_hidden_layers]
  int32_t sliding_window = 0;
  double sliding_rope_theta = 0.0;
};

// The fixed traits of a family, by its architectures[0] name (layer_attention
// is left to the caller, who knows the layer count). FailedPrecondition naming
// `file` and the name when the family is not known.
StatusOr<ArchSpec> family_arch_spec(const std::string& architecture, const std::string& file);

// Ok when Model's forward runs `spec`; otherwise Unimplemented naming the config
// key in `file` (or the architecture) whose value it does not run yet.
Status check_forward_supports(const ArchSpec& spec, const std::string& file);

}  // namespace kr
