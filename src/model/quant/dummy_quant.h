// Random quantized matrices of a real shape, for benchmarks with dummy weights
// (kr-cuda-bench --quant FORMAT, ModelOptions::dummy_quant): the codes, scales
// and zeros a checkpoint of that format would hold, drawn from a counter-based
// generator (deterministic for a seed, filled on several threads). Dequantized
// weights lie in about ±0.02, like the BF16 dummy weights.
//
//   awq       4-bit, group 128, integer zero points (AutoAWQ GEMM), F16 scales
//   gptq      4-bit, group 128, symmetric (AutoGPTQ), F16 scales
//   gptq8     8-bit, group 128, symmetric, F16 scales
//   mlx4      MLX affine 4-bit, group 64, BF16 scales and biases
//   mlx8      MLX affine 8-bit, group 64
//   fp8       FP8 e4m3, per-channel scales, dynamic per-token activations
//             (compressed-tensors FP8_DYNAMIC)
//   fp8-static  FP8 e4m3, per-tensor scale and static input scale (ModelOpt FP8)
//
// Threading: pure function; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/quantized_matrix.h"
#include "base/status.h"

namespace kr {

// The formats make_dummy_quantized knows.
const std::vector<std::string>& dummy_quant_formats();

// An [N, K] matrix of `format`; InvalidArgument for an unknown format or a K the
// format's group size does not divide.
StatusOr<QuantizedMatrix> make_dummy_quantized(const std::string& format, int64_t N, int64_t K, uint64_t seed,
                                               const std::string& name);

}  // namespace kr
