// Readers of quantized checkpoints: turn one module's tensors (AWQ qweight/
// qzeros/scales, GPTQ qweight/qzeros/scales/g_idx, compressed-tensors
// weight_packed/weight_scale/weight_zero_point/weight_g_idx/weight_shape, FP8
// weight/weight_scale/input_scale, MLX weight/scales/biases) into a
// QuantizedMatrix (quantized_matrix.h), checking every shape, dtype and value
// against the config and the expected [N, K]. A bad tensor is an error naming it,
// never a crash.
//
// Open the folder's tensors with DTypePolicy::kAny (packed words are I32/U32,
// FP8 weights F8_E4M3):
//   KR_ASSIGN_OR_RETURN(auto cfg, load_quant_config(dir));
//   KR_ASSIGN_OR_RETURN(auto files, SafetensorsSet::open_dir(dir, DTypePolicy::kAny));
//   if (is_quantized_module(cfg, files->all(), "model.layers.0.mlp.up_proj"))
//     KR_ASSIGN_OR_RETURN(auto m, load_quantized_matrix(cfg, files->all(), "model.layers.0.mlp.up_proj",
//                                                       ModuleRole::kLinear, I, H));
//
// Threading: pure functions of their arguments; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "model/quant/quant_config.h"
#include "model/quant/quantized_matrix.h"
#include "model/safetensors.h"

namespace kr {

using TensorMap = std::map<std::string, TensorView>;

// Whether the checkpoint stores `module` quantized. Decided by the tensors, as
// mlx-lm and vLLM's GPTQ-Marlin do: `.qweight` (AWQ, GPTQ), `.weight_packed`
// (compressed-tensors), an F8_E4M3 `.weight` (FP8 formats), `.scales` (MLX).
bool is_quantized_module(const QuantConfig& config, const TensorMap& tensors, const std::string& module);

// Reads a module of `out_features` x `in_features` ([N, K], torch Linear
// orientation; for an MLX embedding N = vocab, K = hidden). Errors name the tensor
// or config key: missing tensors, shapes that do not match N, K and the config,
// group sizes that do not divide K, zero points out of range, NaN/Inf scales, a
// module the config excludes but whose tensors are quantized.
StatusOr<QuantizedMatrix> load_quantized_matrix(const QuantConfig& config, const TensorMap& tensors,
                                                const std::string& module, ModuleRole role, int64_t out_features,
                                                int64_t in_features);

// Per-tensor FP8 KV-cache scales of one attention block (`attn` is e.g.
// model.layers.3.self_attn): ModelOpt's `k_proj.k_scale` / `v_proj.v_scale`,
// compressed-tensors' `k_scale` / `v_scale` (older: `k_proj.output_scale` /
// `v_proj.output_scale`). nullopt when the checkpoint has none.
struct KvCacheScales {
  float k_scale = 1.0f;
  float v_scale = 1.0f;
  std::vector<std::string> source_tensors;
};
StatusOr<std::optional<KvCacheScales>> load_kv_cache_scales(const TensorMap& tensors, const std::string& attn);

}  // namespace kr
