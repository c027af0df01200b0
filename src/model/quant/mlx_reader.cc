// MLX affine (mlx.core.quantize; mlx.nn.QuantizedLinear / QuantizedEmbedding;
// mlx-lm utils.py):
//   weight U32 [N, K*b/32]  each row an LSB-first bit stream along K: the CPU
//                           quantizer (mlx/backend/cpu/quantized.cpp::quantize)
//                           ORs code k << (k*bits) into each uint32
//   scales, biases (model dtype) [N, K/G]
// W[n, k] = q * scales[n, k/G] + biases[n, k/G] (mlx/ops.cpp::affine_dequantize).
// Scales may be negative (the edge-based quantizer since MLX v0.12.2).
// Re-checked against MLX @ 846d1762 and mlx-lm @ d78bf58e.
#include "model/quant/quant_tensors.h"

namespace kr::quant_detail {

StatusOr<QuantizedMatrix> read_mlx(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N,
                                   int64_t K) {
  KR_ASSIGN_OR_RETURN(const int64_t G, resolve_group_size(p, module, K));
  const int64_t groups = K / G;
  const int b = p.bits, pf = 32 / b;
  const std::string what = "MLX module '" + module + "'";
  KR_ASSIGN_OR_RETURN(const TensorView* wt, require(t, module + ".weight", what));
  KR_ASSIGN_OR_RETURN(const TensorView* sc, require(t, module + ".scales", what));
  KR_ASSIGN_OR_RETURN(const TensorView* bi, require(t, module + ".biases", what + ", affine mode"));
  KR_RETURN_IF_ERROR(expect_storage(*wt, {StorageType::kU32, StorageType::kI32}));
  if (K % pf != 0)
    return InvalidArgument("MLX module '" + module + "': in_features " + std::to_string(K) + " is not a multiple of " +
                           std::to_string(pf) + " (" + std::to_string(b) + "-bit codes, " + p.origin + ")");
  KR_RETURN_IF_ERROR(expect_shape(*wt, {N, K / pf}, "[rows, columns * bits / 32], " + std::to_string(b) + "-bit (" + p.origin + ")"));
  KR_RETURN_IF_ERROR(expect_shape(*sc, {N, groups}, "[rows, columns / group_size], group_size " + std::to_string(G)));
  KR_RETURN_IF_ERROR(expect_shape(*bi, {N, groups}, "[rows, columns / group_size], group_size " + std::to_string(G)));

  QuantizedMatrix m;
  m.kind = QuantKind::kInt;
  m.N = N;
  m.K = K;
  m.bits = b;
  m.group_size = G;
  m.zero_kind = ZeroKind::kFloatBias;
  KR_RETURN_IF_ERROR(read_floats(*sc, &m.scales, &m.scale_dtype));
  DType bias_dtype;
  KR_RETURN_IF_ERROR(read_floats(*bi, &m.biases, &bias_dtype));
  m.qweight = read_words(*wt);  // already the canonical layout
  m.source_tensors = {wt->name, sc->name, bi->name};
  return m;
}

}  // namespace kr::quant_detail
