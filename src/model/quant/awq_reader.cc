// AWQ, GEMM layout (AutoAWQ awq/modules/linear/gemm.py::WQLinear_GEMM; vLLM
// awq.py::AWQLinearMethod.create_weights has the same shapes):
//   qweight I32 [K, N/8]   row = input channel k, 8 output channels per word,
//                          interleaved: WQLinear_GEMM.from_linear ORs column
//                          8c + order_map[i] into nibble slot i, order_map =
//                          [0, 2, 4, 6, 1, 3, 5, 7]; so column 8c + j sits at
//                          shift 4 * [0, 4, 1, 5, 2, 6, 3, 7][j] (vLLM
//                          awq_triton.py's reverse_awq_order_tensor,
//                          AutoAWQ packing_utils.py::AWQ_REVERSE_ORDER).
//   qzeros  I32 [K/G, N/8] same interleave; zero points stored as is (0..15).
//   scales  F16 [K/G, N]
// W[k, n] = (q - z[k/G, n]) * s[k/G, n] (packing_utils.py::dequantize_gemm).
// Re-checked against AutoAWQ @ 88e4c76b (gemm.py, packing_utils.py).
#include "model/quant/quant_tensors.h"

namespace kr::quant_detail {
namespace {

constexpr int kAwqReverseOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};

}  // namespace

StatusOr<QuantizedMatrix> read_awq(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N,
                                   int64_t K) {
  KR_ASSIGN_OR_RETURN(const int64_t G, resolve_group_size(p, module, K));
  const int64_t groups = K / G;
  if (N % 8 != 0)
    return InvalidArgument("AWQ module '" + module + "': out_features " + std::to_string(N) +
                           " is not a multiple of 8 (qweight packs 8 output channels per int32)");
  const std::string what = "AWQ module '" + module + "'";
  KR_ASSIGN_OR_RETURN(const TensorView* qw, require(t, module + ".qweight", what));
  KR_ASSIGN_OR_RETURN(const TensorView* qz, require(t, module + ".qzeros", what));
  KR_ASSIGN_OR_RETURN(const TensorView* sc, require(t, module + ".scales", what));
  KR_RETURN_IF_ERROR(expect_storage(*qw, {StorageType::kI32, StorageType::kU32}));
  KR_RETURN_IF_ERROR(expect_storage(*qz, {StorageType::kI32, StorageType::kU32}));
  KR_RETURN_IF_ERROR(expect_shape(*qw, {K, N / 8}, "[in_features, out_features / 8]"));
  KR_RETURN_IF_ERROR(expect_shape(*qz, {groups, N / 8}, "[in_features / group_size, out_features / 8]"));
  KR_RETURN_IF_ERROR(expect_shape(*sc, {groups, N}, "[in_features / group_size, out_features]"));

  QuantizedMatrix m;
  m.kind = QuantKind::kInt;
  m.N = N;
  m.K = K;
  m.bits = 4;
  m.group_size = G;
  m.zero_kind = ZeroKind::kInteger;
  std::vector<float> s;
  KR_RETURN_IF_ERROR(read_floats(*sc, &s, &m.scale_dtype));
  const std::vector<uint32_t> w = read_words(*qw);
  const std::vector<uint32_t> z = read_words(*qz);
  const int64_t cols = N / 8;
  auto nibble = [&](const std::vector<uint32_t>& words, int64_t row, int64_t n) {
    return (words[static_cast<size_t>(row * cols + n / 8)] >> (4 * kAwqReverseOrder[n % 8])) & 0xFu;
  };
  pack_canonical(&m, [&](int64_t n, int64_t k) { return nibble(w, k, n); });
  m.scales.resize(static_cast<size_t>(N * groups));
  m.zeros.resize(static_cast<size_t>(N * groups));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t n = 0; n < N; ++n) {
      m.scales[static_cast<size_t>(n * groups + g)] = s[static_cast<size_t>(g * N + n)];
      m.zeros[static_cast<size_t>(n * groups + g)] = static_cast<uint8_t>(nibble(z, g, n));
    }
  }
  m.source_tensors = {qw->name, qz->name, sc->name};
  return m;
}

}  // namespace kr::quant_detail
