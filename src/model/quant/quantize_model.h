// quantize_model: a float Hugging Face folder -> a quantized folder in one of the
// real formats (round-to-nearest, no calibration data), with exactly the
// tensors, dtypes and config keys that vLLM, transformers or mlx-lm read:
//   fp8, fp8-dynamic  compressed-tensors float-quantized (config_groups "Linear",
//                     ignore lm_head); per-tensor / per-channel weight scales in the
//                     model dtype; activations dynamic per-tensor / per-token
//   awq               AutoAWQ GEMM 4-bit (quantization_config as
//                     AwqConfig.to_transformers_dict writes it); fp16 model, as
//                     AutoAWQ saves
//   gptq              AutoGPTQ 4-bit symmetric, desc_act false, checkpoint_format
//                     "gptq" (v1); quantization_config and quantize_config.json;
//                     fp16 model
//   w4a16             compressed-tensors pack-quantized W4A16 preset
//   mlx4, mlx8        MLX affine ("quantization" and its "quantization_config"
//                     copy), embeddings and lm_head included, as mlx_lm.convert does
// Which modules: every 2-D `.weight` inside the decoder layers except norms and
// MoE routers (AutoAWQ/AutoGPTQ quantize the Linears of the blocks; llm-compressor
// targets Linear and ignores lm_head); MLX adds the embedding and lm_head and,
// like mlx-lm, leaves a module whose width the group size does not divide
// unquantized. Tokenizer and generation files are copied.
//
// Threading: any thread; reads and writes files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/quant/quant_writer.h"

namespace kr {

struct QuantizeOptions {
  QuantizeFormat format = QuantizeFormat::kAwq;
  int64_t group_size = 0;  // 0: the format's default
  uint64_t max_shard_bytes = uint64_t{5} << 30;
};

struct QuantizeReport {
  int64_t group_size = 0;
  std::vector<std::string> quantized;  // module prefixes
  std::vector<std::string> kept;       // tensors written unquantized
  std::vector<std::string> copied_files;
  uint64_t bytes_in = 0, bytes_out = 0;  // tensor data
};

StatusOr<QuantizeReport> quantize_model(const std::string& model_dir, const std::string& out_dir, const QuantizeOptions& options);

}  // namespace kr
