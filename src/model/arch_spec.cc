#include "model/arch_spec.h"

namespace kr {
namespace {

std::string key(const std::string& file, const char* k) { return file + ": key '" + k + "'"; }

constexpr const char* kSupported =
    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, "
    "Gemma3ForCausalLM, Gemma3ForConditionalGeneration";

}  // namespace

StatusOr<ArchSpec> family_arch_spec(const std::string& architecture, const std::string& file) {
  ArchSpec s;
  s.architecture = architecture;
  if (architecture == "LlamaForCausalLM" || architecture == "MistralForCausalLM") {
    // Pre-norms only, x̂ · w, SwiGLU, no soft-caps (Mistral's sliding window is a key).
    return s;
  }
  if (architecture == "Qwen2ForCausalLM") {
    s.qkv_bias = true;  // Qwen2Attention: q/k/v with bias, o without
    return s;
  }
  if (architecture == "Qwen3ForCausalLM") {
    s.qk_norm = true;  // Qwen3RMSNorm(head_dim) on q and k before RoPE
    return s;
  }
  if (architecture == "Gemma2ForCausalLM" || architecture == "Gemma3ForCausalLM" ||
      architecture == "Gemma3ForConditionalGeneration") {
    s.norm = NormKind::kTimesOnePlusWeight;
    s.post_attention_norm = s.post_feedforward_norm = true;
    s.activation = Activation::kGeluTanh;
    s.scale_embeddings = true;
    s.qk_norm = architecture != "Gemma2ForCausalLM";
    s.text_of_multimodal = architecture == "Gemma3ForConditionalGeneration";
    return s;
  }
  return FailedPrecondition(key(file, "architectures") + ": unsupported architecture '" + architecture +
                            "' (supported: " + kSupported + ")");
}

Status check_forward_supports(const ArchSpec& s, const std::string& file) {
  auto no = [&](const char* k, const std::string& what) {
    return Unimplemented(key(file, k) + ": " + what + " is not supported yet");
  };
  if (s.o_bias) return no("attention_bias", "a bias on o_proj");
  if (s.mlp_bias) return no("mlp_bias", "an MLP bias");
  if (s.attn_logit_softcap < 0.0f) return no("attn_logit_softcapping", "a negative value");
  if (s.final_logit_softcap < 0.0f) return no("final_logit_softcapping", "a negative value");
  if (s.query_pre_attn_scalar < 0.0f) return no("query_pre_attn_scalar", "a negative value");
  for (AttentionKind k : s.layer_attention)
    if (k == AttentionKind::kSliding && s.sliding_window <= 0)
      return InvalidArgument(key(file, "sliding_window") + " must be a positive integer for sliding-window layers");
  return Status::Ok();
}

}  // namespace kr
