// ArchSpec: what a decoder family's forward pass is made of, as data. Model's
// one forward (model.cc) follows it; hf_config.cc fills it from config.json:
// first the family's fixed traits (family_arch_spec, by `architectures`), then
// the keys that family's Hugging Face config class defines, with that class's
// defaults for keys the file leaves out. A family that differs from Llama only
// in these fields is new data here plus the ops its values need, not a new
// forward.
//
// Families (transformers 5.17 models/<name>/modeling_<name>.py):
//   LlamaForCausalLM, MistralForCausalLM  pre-norms x̂·w, SwiGLU (Mistral: sliding_window on every layer)
//   Qwen2ForCausalLM                      + q/k/v biases; sliding layers only with use_sliding_window
//   Qwen3ForCausalLM                      + per-head q/k RMS norms before RoPE
//   Gemma2ForCausalLM                     x̂·(1 + w) norms, four per layer; GeGLU; embeddings × √H;
//                                         query_pre_attn_scalar; alternating sliding/global layers;
//                                         attention and final-logit soft-caps
//   Gemma3ForCausalLM                     Gemma 2 + per-head q/k norms, sliding layers with their own RoPE
//   Gemma3ForConditionalGeneration        the Gemma 3 text model of a vision-language folder
//                                         (tensors under language_model.; the vision tower is skipped)
//
// check_forward_supports() turns every value the forward does not run into an
// error that names the config key (or the architecture, for traits no key sets).
//
// Plain structs; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"  // NormKind, Activation: options of the backend ops
#include "base/status.h"

namespace kr {

enum class RopeScalingType { kNone, kLinear, kLlama3, kYarn };

// One RoPE's scaling (rope_scaling / rope_parameters; transformers
// modeling_rope_utils.py). Fields beyond `factor` belong to the type named.
struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3, yarn
  double beta_fast = 32.0;                          // yarn
  double beta_slow = 1.0;                           // yarn
  double attention_factor = 0.0;                    // yarn; 0: from factor (and mscale)
  double mscale = 0.0;                              // yarn (DeepSeek form)
  double mscale_all_dim = 0.0;                      // yarn (DeepSeek form)
  bool truncate = true;                             // yarn: integer correction range
};

enum class AttentionKind {
  kGlobal,   // every earlier position, with the config's (global) RoPE
  kSliding,  // the last ArchSpec::sliding_window positions, with the sliding RoPE
};

struct ArchSpec {
  std::string architecture;  // config.json architectures[0], e.g. "LlamaForCausalLM"
  // The text model of a vision-language folder (Gemma3ForConditionalGeneration):
  // its config under text_config, its tensors under language_model.
  bool text_of_multimodal = false;

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

  Activation activation = Activation::kSilu;  // config: hidden_act (Gemma: hidden_activation)

  bool scale_embeddings = false;      // embeddings × sqrt(hidden_size) in the weight dtype (Gemma)
  float attn_logit_softcap = 0.0f;    // config: attn_logit_softcapping; 0: none
  float final_logit_softcap = 0.0f;   // config: final_logit_softcapping; 0: none
  float query_pre_attn_scalar = 0.0f;  // attention scale 1/sqrt(this); 0: head_dim

  // Attention per layer (config: layer_types, or the family's rule). Global layers
  // use the config's RoPE (ModelConfig::rope_theta, rope_scaling); sliding ones
  // sliding_rope_theta with sliding_rope_scaling (Gemma 3: rope_local_base_freq,
  // or rope_parameters.sliding_attention), or the global RoPE when
  // sliding_rope_theta is 0.
  std::vector<AttentionKind> layer_attention;  // [num_hidden_layers]
  int32_t sliding_window = 0;                  // > 0 when some layer slides
  double sliding_rope_theta = 0.0;
  RopeScaling sliding_rope_scaling;
};

// The fixed traits of a family, by its architectures[0] name (layer_attention
// is left to the caller, who knows the layer count). FailedPrecondition naming
// `file` and the name when the family is not known.
StatusOr<ArchSpec> family_arch_spec(const std::string& architecture, const std::string& file);

// Ok when Model's forward runs `spec`; otherwise Unimplemented naming the config
// key in `file` (or the architecture) whose value it does not run.
Status check_forward_supports(const ArchSpec& spec, const std::string& file);

}  // namespace kr
