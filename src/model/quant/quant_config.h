// Which quantized checkpoint format a model folder holds, and with which
// parameters each module was quantized: read from config.json's
// `quantization_config` (or MLX's `quantization`), and from the side files older
// checkpoints carry (hf_quant_config.json of ModelOpt, quantize_config.json of
// AutoGPTQ, quant_config.json of AutoAWQ).
//
// Detection order (vLLM and mlx-lm read the same keys):
//   1. config.json `quantization` (mlx-lm; it takes precedence there) -> MLX affine;
//   2. config.json `quantization_config.quant_method`: awq, gptq,
//      compressed-tensors, fbgemm_fp8, modelopt; or a `quantization_config`
//      without `quant_method` that has `bits` and `group_size` -> MLX (mlx-lm
//      writes both keys since 2024-09, mlx_lm/utils.py::save_config);
//   3. hf_quant_config.json with producer.name "modelopt";
//   4. quantize_config.json (AutoGPTQ), quant_config.json (AutoAWQ).
// Anything else that names a quantization (bitsandbytes, exl2, Marlin-repacked
// files, 3-bit, AWQ GEMV, HF block FP8, unknown methods) is an error naming the
// format and the key: nothing is silently loaded as bf16.
//
// Whether a given module *is* quantized is decided by its tensors (see
// quant_loader.h); the config supplies the parameters.
//
// Threading: immutable after parsing; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "model/quant/quantized_matrix.h"

namespace kr {

enum class QuantMethod : uint8_t { kNone, kAwq, kGptq, kCompressedTensors, kFbgemmFp8, kModelOpt, kMlx };
const char* quant_method_name(QuantMethod m);

// Linears are quantized by every format; embeddings only by MLX.
enum class ModuleRole : uint8_t { kLinear, kEmbedding };

// How one module was quantized, resolved from the config.
struct ModuleQuantParams {
  QuantKind kind = QuantKind::kInt;
  int bits = 4;
  int64_t group_size = -1;  // kInt: -1 means one group per row (G = K)
  bool symmetric = true;    // GPTQ sym / compressed-tensors symmetric
  bool act_order = false;   // GPTQ desc_act / compressed-tensors actorder "group": g_idx expected
  int gptq_version = 1;     // GPTQ checkpoint_format: 1 ("gptq", zeros stored minus one) or 2 ("gptq_v2")
  // kFp8
  ScaleLayout weight_scale = ScaleLayout::kTensor;
  int64_t block_n = 0, block_k = 0;
  ActQuant act = ActQuant::kNone;
  int64_t act_group_size = 0;
  float activation_scale_ub = 0.0f;
  std::string origin;  // "FILE: key 'quantization_config.config_groups.group_0'" for messages
};

class QuantConfig {
 public:
  QuantMethod method() const { return method_; }
  bool quantized() const { return method_ != QuantMethod::kNone; }
  // Where the settings were read, e.g. "DIR/config.json: key 'quantization_config'".
  const std::string& source() const { return source_; }
  // True when the checkpoint declares FP8 KV-cache scales (compressed-tensors
  // kv_cache_scheme, ModelOpt kv_cache_quant_algo / kv_cache_scheme).
  bool fp8_kv_cache() const { return fp8_kv_cache_; }

  // The module's parameters, or nullopt when the config excludes it
  // (ignore / modules_to_not_convert / exclude_modules / dynamic "-:" / an MLX
  // override `false`). `module` is the prefix, e.g. model.layers.0.mlp.up_proj.
  StatusOr<std::optional<ModuleQuantParams>> params_for(const std::string& module, ModuleRole role) const;

  struct Impl;  // format-specific settings (quant_config.cc)

 private:
  friend StatusOr<QuantConfig> parse_quant_config(const std::string&, const std::string&,
                                                  const std::map<std::string, std::string>&);
  QuantMethod method_ = QuantMethod::kNone;
  std::string source_;
  bool fp8_kv_cache_ = false;
  std::shared_ptr<const Impl> impl_;
};

// Reads DIR/config.json and, when it names no quantization, the side files.
StatusOr<QuantConfig> load_quant_config(const std::string& model_dir);

// The same from texts: config.json's text (named `config_file` in messages) and
// side files by base name ("hf_quant_config.json", "quantize_config.json",
// "quant_config.json") -> text. For tests and fuzzing.
StatusOr<QuantConfig> parse_quant_config(const std::string& config_json, const std::string& config_file,
                                         const std::map<std::string, std::string>& side_files = {});

}  // namespace kr
