// The writing side of the quantized formats, for `kr-serve quantize`:
// round-to-nearest quantization of a float32 weight into the canonical
// QuantizedMatrix, the way each format's own tool rounds (no calibration data),
// and the encoders that turn it into the format's tensors (the inverse of the
// readers in quant_loader.h).
//
// Threading: pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/quant/quantized_matrix.h"
#include "model/safetensors.h"

namespace kr {

// `--format` values.
enum class QuantizeFormat : uint8_t {
  kFp8,         // compressed-tensors float-quantized: per-tensor FP8 weights, dynamic per-tensor activations
  kFp8Dynamic,  // compressed-tensors FP8_DYNAMIC preset: per-channel weights, dynamic per-token activations
  kAwq,         // AutoAWQ GEMM, 4-bit asymmetric
  kGptq,        // AutoGPTQ v1 ("gptq"), 4-bit symmetric, desc_act false
  kW4A16,       // compressed-tensors pack-quantized W4A16 preset, 4-bit symmetric
  kMlx4,        // MLX affine 4-bit
  kMlx8,        // MLX affine 8-bit
};

StatusOr<QuantizeFormat> parse_quantize_format(const std::string& s);
const char* quantize_format_name(QuantizeFormat f);
// 128 for awq/gptq/w4a16 (their tools' default), 64 for MLX (mlx-lm's), 0 for FP8 (no groups).
int64_t default_group_size(QuantizeFormat f);
bool uses_groups(QuantizeFormat f);
int format_bits(QuantizeFormat f);

// Round-to-nearest quantization of w [N, K] (float32, row-major). Scales are
// rounded to `scale_dtype` (F16 for AWQ/GPTQ, the model dtype otherwise) before
// the codes are computed from them. Errors (naming `name`) for group sizes that
// do not divide K or shapes the format cannot pack. Rows are spread over `pool`
// when given (the result does not depend on it).
StatusOr<QuantizedMatrix> quantize_rtn(QuantizeFormat f, const float* w, int64_t N, int64_t K, int64_t group_size,
                                       DType scale_dtype, const std::string& name, ThreadPool* pool = nullptr);

// One tensor of a module as the format stores it; `bytes` is empty in a plan.
struct EncodedTensor {
  std::string suffix;  // "qweight", "weight_scale", ...
  StorageType type = StorageType::kI32;
  std::vector<int64_t> shape;
  std::string bytes;
};

// The tensors (suffix, dtype, shape) `f` writes for an [N, K] module.
std::vector<EncodedTensor> plan_module(QuantizeFormat f, int64_t N, int64_t K, int64_t group_size, DType scale_dtype);
// The bytes of those tensors for `m` (produced by quantize_rtn with the same f).
StatusOr<std::vector<EncodedTensor>> encode_module(QuantizeFormat f, const QuantizedMatrix& m);

}  // namespace kr
