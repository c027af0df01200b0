// compressed-tensors pack-quantized (W4A16 / W8A16): compressors/
// quantized_compressors/pack_quantized.py (PackedQuantizationCompressor,
// pack_to_int32, unpack_from_int32); vLLM compressed_tensors_wNa16.py.
//   weight_packed     I32 [N, ceil(K*b/32)]  packed along K, LSB first; each value
//                                            stored + 2^(b-1) (pack_to_int32's offset),
//                                            padded with 0 up to a whole word
//   weight_scale      model dtype [N, K/G] (group) or [N, 1] (channel)
//   weight_shape      I64 (I32 accepted) [2] = [N, K]
//   weight_zero_point I32 [ceil(N*b/32), K/G]  asymmetric only; packed along N
//                                            (pack_to_int32(zero_point, packed_dim=0))
//   weight_g_idx      I32 [K]                actorder "group" only
// W[n, k] = (q - zp) * s with q, zp the signed values; in stored (shifted) codes
// that is (nib - znib) * s, and (nib - 2^(b-1)) * s when symmetric.
// Re-checked against compressed-tensors @ 52792be0 (pack_quantized.py).
#include "model/quant/quant_tensors.h"

namespace kr::quant_detail {

StatusOr<QuantizedMatrix> read_ct_packed(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N,
                                         int64_t K) {
  KR_ASSIGN_OR_RETURN(const int64_t G, resolve_group_size(p, module, K));
  const int64_t groups = K / G;
  const int b = p.bits, pf = 32 / b;
  const uint32_t mask = (1u << b) - 1u;
  const std::string what = "compressed-tensors module '" + module + "'";
  KR_ASSIGN_OR_RETURN(const TensorView* wp, require(t, module + ".weight_packed", what));
  KR_ASSIGN_OR_RETURN(const TensorView* sc, require(t, module + ".weight_scale", what));
  KR_ASSIGN_OR_RETURN(const TensorView* ws, require(t, module + ".weight_shape", what));
  const TensorView* zp = find(t, module + ".weight_zero_point");
  const TensorView* gi = find(t, module + ".weight_g_idx");
  if (!p.symmetric && zp == nullptr)
    return NotFound("missing tensor '" + module + ".weight_zero_point' (asymmetric scheme, " + p.origin + ")");
  if (p.symmetric && zp != nullptr)
    return InvalidArgument(where(*zp) + " is present but the scheme is symmetric (" + p.origin + ")");
  if (p.act_order && gi == nullptr)
    return NotFound("missing tensor '" + module + ".weight_g_idx' (actorder: group, " + p.origin + ")");
  if (!p.act_order && gi != nullptr)
    return InvalidArgument(where(*gi) + " is present but actorder is not 'group' (" + p.origin + ")");

  KR_RETURN_IF_ERROR(expect_storage(*wp, {StorageType::kI32}));
  KR_RETURN_IF_ERROR(expect_storage(*ws, {StorageType::kI64, StorageType::kI32}));
  KR_RETURN_IF_ERROR(expect_shape(*ws, {2}, "[2]"));
  const std::vector<int64_t> shape = read_ints(*ws);
  if (shape[0] != N || shape[1] != K)
    return InvalidArgument(where(*ws) + " is " + shape_str(shape) + " but the model expects [" + std::to_string(N) + ", " +
                           std::to_string(K) + "]");
  const int64_t wpr = (K + pf - 1) / pf;
  KR_RETURN_IF_ERROR(expect_shape(*wp, {N, wpr}, "[out_features, ceil(in_features * bits / 32)], " + std::to_string(b) + "-bit"));
  KR_RETURN_IF_ERROR(expect_shape(*sc, {N, groups}, G == K ? "[out_features, 1], strategy channel"
                                                           : "[out_features, in_features / group_size]"));

  QuantizedMatrix m;
  m.kind = QuantKind::kInt;
  m.N = N;
  m.K = K;
  m.bits = b;
  m.group_size = G;
  KR_RETURN_IF_ERROR(read_floats(*sc, &m.scales, &m.scale_dtype));
  m.source_tensors = {wp->name, sc->name, ws->name};
  if (gi != nullptr) {
    KR_RETURN_IF_ERROR(expect_storage(*gi, {StorageType::kI32, StorageType::kI64}));
    KR_RETURN_IF_ERROR(expect_shape(*gi, {K}, "[in_features]"));
    KR_ASSIGN_OR_RETURN(m.perm, perm_from_g_idx(*gi, read_ints(*gi), K, G));
    m.source_tensors.push_back(gi->name);
  }
  const std::vector<uint32_t> w = read_words(*wp);
  pack_canonical(&m, [&](int64_t n, int64_t j) {
    const int64_t k = m.perm.empty() ? j : m.perm[static_cast<size_t>(j)];
    return (w[static_cast<size_t>(n * wpr + k / pf)] >> (b * (k % pf))) & mask;
  });
  if (zp == nullptr) {
    m.zero_kind = ZeroKind::kSymmetric;
    return m;
  }
  KR_RETURN_IF_ERROR(expect_storage(*zp, {StorageType::kI32}));
  KR_RETURN_IF_ERROR(expect_shape(*zp, {(N + pf - 1) / pf, groups}, "[ceil(out_features * bits / 32), groups], packed along N"));
  const std::vector<uint32_t> z = read_words(*zp);
  m.zero_kind = ZeroKind::kInteger;
  m.zeros.resize(static_cast<size_t>(N * groups));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < groups; ++g)
      m.zeros[static_cast<size_t>(n * groups + g)] =
          static_cast<uint8_t>((z[static_cast<size_t>((n / pf) * groups + g)] >> (b * (n % pf))) & mask);
  m.source_tensors.push_back(zp->name);
  return m;
}

}  // namespace kr::quant_detail
