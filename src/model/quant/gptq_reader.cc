// GPTQ (AutoGPTQ qlinear_cuda_old.py::QuantLinear, GPTQModel
// nn_modules/qlinear/__init__.py::GPTQQuantLinear; vLLM gptq.py create_weights):
//   qweight I32 [K*b/32, N]    packed along K, LSB first: QuantLinear.pack ORs
//                              intweight[row*pf + j] << (b*j), pf = 32/b
//   qzeros  I32 [K/G, N*b/32]  packed along N, same order
//   scales  F16 [K/G, N]
//   g_idx   I32 [K]            group of each input channel (k / G without act-order)
// Zero points: checkpoint_format "gptq" (v1) stores zero - 1 (AutoGPTQ pack:
// `zeros -= 1`; readers add it back: qlinear_cuda_old.forward `zeros + 1`, vLLM
// q_gemm.cu `zero_offset = use_v2_format ? 0 : 1`); "gptq_v2" stores the zero
// (GPTQModel convert_gptq_v2_to_v1_format_module subtracts 0x11111111 per word
// for the v1 export). A v1 nibble of 2^b - 1 means zero 2^b, which no reader
// agrees on (AutoGPTQ masks it to 0, vLLM's exllama kernel uses 16): refused.
// W[k, n] = (q[k, n] - zero[g_idx[k], n]) * s[g_idx[k], n].
// desc_act: g_idx = invperm // G (auto_gptq GPTQ.fasterquant); the columns are
// permuted once here so groups are contiguous (QuantizedMatrix::perm).
// Re-checked against GPTQModel @ f4c327a1 (utils/model.py, model_dequant.py).
#include "model/quant/quant_tensors.h"

namespace kr::quant_detail {

StatusOr<QuantizedMatrix> read_gptq(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N,
                                    int64_t K) {
  KR_ASSIGN_OR_RETURN(const int64_t G, resolve_group_size(p, module, K));
  const int64_t groups = K / G;
  const int b = p.bits, pf = 32 / b;
  const uint32_t maxq = (1u << b) - 1u;
  if (K % pf != 0 || N % pf != 0)
    return InvalidArgument("GPTQ module '" + module + "': in_features " + std::to_string(K) + " and out_features " +
                           std::to_string(N) + " must be multiples of " + std::to_string(pf) + " for " + std::to_string(b) +
                           "-bit packing (" + p.origin + ")");
  const std::string what = "GPTQ module '" + module + "'";
  KR_ASSIGN_OR_RETURN(const TensorView* qw, require(t, module + ".qweight", what));
  KR_ASSIGN_OR_RETURN(const TensorView* qz, require(t, module + ".qzeros", what));
  KR_ASSIGN_OR_RETURN(const TensorView* sc, require(t, module + ".scales", what));
  const TensorView* gi = find(t, module + ".g_idx");
  if (gi == nullptr && p.act_order)
    return NotFound("missing tensor '" + module + ".g_idx' (GPTQ with desc_act: true, " + p.origin + ")");
  KR_RETURN_IF_ERROR(expect_storage(*qw, {StorageType::kI32, StorageType::kU32}));
  KR_RETURN_IF_ERROR(expect_storage(*qz, {StorageType::kI32, StorageType::kU32}));
  const std::string bits_note = std::to_string(b) + "-bit";
  KR_RETURN_IF_ERROR(expect_shape(*qw, {K / pf, N}, "[in_features * bits / 32, out_features], " + bits_note));
  KR_RETURN_IF_ERROR(expect_shape(*qz, {groups, N / pf}, "[in_features / group_size, out_features * bits / 32], " + bits_note));
  KR_RETURN_IF_ERROR(expect_shape(*sc, {groups, N}, "[in_features / group_size, out_features]"));

  QuantizedMatrix m;
  m.kind = QuantKind::kInt;
  m.N = N;
  m.K = K;
  m.bits = b;
  m.group_size = G;
  std::vector<float> s;
  KR_RETURN_IF_ERROR(read_floats(*sc, &s, &m.scale_dtype));
  m.source_tensors = {qw->name, qz->name, sc->name};
  if (gi != nullptr) {
    KR_RETURN_IF_ERROR(expect_storage(*gi, {StorageType::kI32, StorageType::kI64}));
    KR_RETURN_IF_ERROR(expect_shape(*gi, {K}, "[in_features]"));
    KR_ASSIGN_OR_RETURN(m.perm, perm_from_g_idx(*gi, read_ints(*gi), K, G));
    if (!m.perm.empty() && !p.act_order)
      return InvalidArgument(where(*gi) + " is not k / group_size but desc_act is false (" + p.origin +
                             "); the checkpoint's act-order setting is ambiguous");
    m.source_tensors.push_back(gi->name);
  }
  const std::vector<uint32_t> w = read_words(*qw);
  const std::vector<uint32_t> zw = read_words(*qz);
  pack_canonical(&m, [&](int64_t n, int64_t j) {
    const int64_t k = m.perm.empty() ? j : m.perm[static_cast<size_t>(j)];
    return (w[static_cast<size_t>((k / pf) * N + n)] >> (b * (k % pf))) & maxq;
  });
  const uint32_t offset = p.gptq_version == 1 ? 1u : 0u;
  const uint32_t mid = 1u << (b - 1);
  bool all_mid = true;
  m.scales.resize(static_cast<size_t>(N * groups));
  m.zeros.resize(static_cast<size_t>(N * groups));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t n = 0; n < N; ++n) {
      const uint32_t stored = (zw[static_cast<size_t>(g * (N / pf) + n / pf)] >> (b * (n % pf))) & maxq;
      const uint32_t zero = stored + offset;
      if (zero > maxq)
        return InvalidArgument(where(*qz) + " holds " + std::to_string(stored) + " at group " + std::to_string(g) +
                               ", output channel " + std::to_string(n) + ": zero point " + std::to_string(zero) +
                               " (checkpoint_format gptq stores zero - 1) is outside 0.." + std::to_string(maxq));
      all_mid &= zero == mid;
      m.scales[static_cast<size_t>(n * groups + g)] = s[static_cast<size_t>(g * N + n)];
      m.zeros[static_cast<size_t>(n * groups + g)] = static_cast<uint8_t>(zero);
    }
  }
  if (all_mid) {
    m.zero_kind = ZeroKind::kSymmetric;  // every zero is 2^(b-1): the uint4b8 / uint8b128 form of Marlin
    m.zeros.clear();
  } else {
    m.zero_kind = ZeroKind::kInteger;
  }
  return m;
}

}  // namespace kr::quant_detail
