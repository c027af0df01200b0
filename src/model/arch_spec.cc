#include "model/arch_spec.h"

namespace kr {
namespace {

std::string key(const std::string& file, const char* k) { return file + ": key '" + k + "'"; }

}  // namespace

StatusOr<ArchSpec> family_arch_spec(const std::string& architecture, const std::string& file) {
  // Hugging Face's LlamaForCausalLM (transformers models/llama/modeling_llama.py):
  // pre-norm only, x̂ * w, SwiGLU, global attention, no soft-caps.
  if (architecture != "LlamaForCausalLM")
    return FailedPrecondition(key(file, "architectures") + ": unsupported architecture '" + architecture +
                              "' (supported: LlamaForCausalLM)");
  ArchSpec s;
  s.architecture = architecture;
  return s;
}

Status check_forward_supports(const ArchSpec& s, const std::string& file) {
  auto no = [&](const char* k, const std::string& what) {
    return Unimplemented(key(file, k) + ": " + what + " is not supported yet");
  };
  auto trait = [&](const std::string& what) {
    return Unimplemented(key(file, "architectures") + ": " + s.architecture + " needs " + what +
                         ", not supported yet");
  };
  if (s.activation != Activation::kSilu) return no("hidden_act", "an activation other than 'silu'");
  if (s.qkv_bias || s.o_bias) return no("attention_bias", "an attention bias");
  if (s.mlp_bias) return no("mlp_bias", "an MLP bias");
  if (s.attn_logit_softcap != 0.0f) return no("attn_logit_softcapping", "an attention logit soft-cap");
  if (s.final_logit_softcap != 0.0f) return no("final_logit_softcapping", "a final logit soft-cap");
  for (AttentionKind k : s.layer_attention)
    if (k != AttentionKind::kGlobal) return no("layer_types", "sliding-window attention");
  if (s.norm != NormKind::kTimesWeight) return trait("norms of the form x * (1 + w)");
  if (s.post_attention_norm || s.post_feedforward_norm) return trait("post-attention/feed-forward norms");
  if (s.qk_norm) return trait("per-head q/k norms");
  if (s.embedding_scale != 1.0f) return trait("scaled embeddings");
  if (s.query_pre_attn_scalar < 0.0f) return no("query_pre_attn_scalar", "a negative value");
  return Status::Ok();
}

}  // namespace kr
