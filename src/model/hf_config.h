// Model configuration from a Hugging Face folder (config.json and the optional
// generation_config.json), or from a built-in preset: the shapes, and the
// family's ArchSpec (model/arch_spec.h).
//
// Both config forms load: transformers 4 (published checkpoints: rope_theta,
// rope_scaling, rope_local_base_freq, sliding_window_pattern) and transformers 5
// (rope_parameters, keyed by layer type for Gemma 3; layer_types). A key the
// file leaves out takes the default of the family's transformers config class
// (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config, Gemma2Config,
// Gemma3TextConfig; values as transformers 5.17 sets them), except the shape
// keys (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
// vocab_size), which are required in every family but Gemma 3, whose published
// configs leave several to Gemma3TextConfig. An unsupported value is an error
// naming its key. Plain structs; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/arch_spec.h"

namespace kr {

struct ModelConfig {
  ArchSpec arch;                    // what the forward is made of
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_hidden_layers = 0;
  int32_t num_attention_heads = 0;
  int32_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int32_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int32_t vocab_size = 0;
  double rms_norm_eps = 1e-6;
  // RoPE of global-attention layers: from rope_parameters (transformers 5) when
  // present, else from the top-level rope_theta and rope_scaling (transformers 4).
  // Sliding layers may have their own (ArchSpec::sliding_rope_theta).
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 2048;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;
};

// Defaults of generation_config.json (absent fields stay empty).
struct GenerationDefaults {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int32_t> top_k;
  std::vector<int32_t> eos_token_ids;
};

// Parses the text of a config.json; `file` names it in error messages.
StatusOr<ModelConfig> parse_model_config(const std::string& json_text, const std::string& file);
// Reads DIR/config.json (NotFound when missing).
StatusOr<ModelConfig> load_model_config(const std::string& model_dir);
// Parses the text of a generation_config.json.
StatusOr<GenerationDefaults> parse_generation_config(const std::string& json_text, const std::string& file);
// Reads DIR/generation_config.json; an absent file gives empty defaults.
StatusOr<GenerationDefaults> load_generation_config(const std::string& model_dir);
// Built-in shapes for --arch (no folder needed): the names of model_config_preset_names().
// NotFound otherwise.
StatusOr<ModelConfig> model_config_preset(const std::string& arch);
// "llama-3.2-3b", "llama-3.1-8b", "qwen3-8b", "qwen2.5-7b", "mistral-7b-v0.3", "gemma-3-4b".
std::vector<std::string> model_config_preset_names();

// The union of config and generation-config EOS ids, in first-seen order.
std::vector<int32_t> merged_eos_ids(const ModelConfig& config, const GenerationDefaults& gen);

// [head_dim / 2] rotary inverse frequencies in float32, with rope scaling applied
// exactly as Hugging Face's _compute_default_rope_parameters /
// _compute_linear_scaling_rope_parameters / _compute_llama3_parameters /
// _compute_yarn_parameters (transformers modeling_rope_utils.py; float32 arithmetic).
std::vector<float> rope_inv_freq(int32_t head_dim, double theta, const RopeScaling& scaling);
// The factor HF multiplies cos and sin by (yarn's attention_factor; 1 otherwise):
// q·k scales by its square, which the model folds into the attention scale.
double rope_attention_factor(const RopeScaling& scaling);

// Reads a whole file; NotFound / DataLoss naming the path on failure.
StatusOr<std::string> read_text_file(const std::string& path);

}  // namespace kr
