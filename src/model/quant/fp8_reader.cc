// FP8 weights (float8_e4m3fn [N, K] `weight`) with float scales:
//  - compressed-tensors float-quantized (naive_quantized.py; lifecycle/
//    initialize.py::initialize_qparams gives the scale shapes: tensor [1], channel
//    [N, 1], block [ceil(N/bn), ceil(K/bk)]; scales in the weight's dtype);
//    static activations add `input_scale` [1]. Zero points are omitted for
//    symmetric schemes (base.py::_skip_zp); if an old file has them they must be 0.
//  - Meta fbgemm_fp8 (transformers integrations/fbgemm_fp8.py::FbgemmFp8Linear):
//    weight_scale F32 [N, 1], dynamic per-token activations capped by
//    activation_scale_ub.
//  - NVIDIA ModelOpt (vLLM modelopt.py::ModelOptFp8LinearMethod.create_weights):
//    weight_scale and input_scale F32 per tensor ([] or [1]); FP8_PER_CHANNEL_
//    PER_TOKEN: weight_scale [N] (or [N, 1]), no input_scale.
// W[n, k] = fp8(w) * s.
#include <cstring>

#include "model/quant/float_codec.h"
#include "model/quant/quant_tensors.h"

namespace kr::quant_detail {
namespace {

Status expect_all_zero(const TensorView& v) {
  const Status bad = InvalidArgument(where(v) + " is not all zero (FP8 schemes here are symmetric)");
  if (v.storage == StorageType::kBF16 || v.storage == StorageType::kF16 || v.storage == StorageType::kF32) {
    std::vector<float> f;
    KR_RETURN_IF_ERROR(read_floats(v, &f, nullptr));
    for (float x : f)
      if (x != 0.0f) return bad;
    return Status::Ok();
  }
  const auto* p = static_cast<const uint8_t*>(v.data);
  const uint8_t mask = v.storage == StorageType::kF8E4M3 ? 0x7F : 0xFF;  // -0.0 is zero too
  for (size_t i = 0; i < v.bytes; ++i)
    if ((p[i] & mask) != 0) return bad;
  return Status::Ok();
}

}  // namespace

StatusOr<QuantizedMatrix> read_fp8(const ModuleQuantParams& p, const std::string& format, const TensorMap& t,
                                   const std::string& module, int64_t N, int64_t K) {
  const std::string what = format + " FP8 module '" + module + "'";
  KR_ASSIGN_OR_RETURN(const TensorView* wt, require(t, module + ".weight", what));
  KR_ASSIGN_OR_RETURN(const TensorView* sc, require(t, module + ".weight_scale", what));
  if (wt->storage == StorageType::kF8E5M2)
    return Unimplemented(where(*wt) + " is F8_E5M2; only float8_e4m3fn weights are supported");
  KR_RETURN_IF_ERROR(expect_storage(*wt, {StorageType::kF8E4M3}));
  KR_RETURN_IF_ERROR(expect_shape(*wt, {N, K}, "[out_features, in_features]"));

  QuantizedMatrix m;
  m.kind = QuantKind::kFp8;
  m.N = N;
  m.K = K;
  m.bits = 8;
  m.scale_layout = p.weight_scale;
  m.act = p.act;
  m.act_group_size = p.act_group_size;
  m.activation_scale_ub = p.activation_scale_ub;
  switch (p.weight_scale) {
    case ScaleLayout::kTensor:
      KR_RETURN_IF_ERROR(expect_scalar(*sc, "per-tensor weight scale, " + p.origin));
      break;
    case ScaleLayout::kGroup:
      m.group_size = K;
      if (sc->shape != std::vector<int64_t>{N})
        KR_RETURN_IF_ERROR(expect_shape(*sc, {N, 1}, "per-channel weight scale [out_features, 1], " + p.origin));
      break;
    case ScaleLayout::kBlock:
      m.block_n = p.block_n;
      m.block_k = p.block_k;
      KR_RETURN_IF_ERROR(expect_shape(*sc, {(N + p.block_n - 1) / p.block_n, (K + p.block_k - 1) / p.block_k},
                                      "block weight scale [ceil(N / " + std::to_string(p.block_n) + "), ceil(K / " +
                                          std::to_string(p.block_k) + ")], " + p.origin));
      break;
  }
  KR_RETURN_IF_ERROR(read_floats(*sc, &m.scales, &m.scale_dtype));
  m.fp8.resize(static_cast<size_t>(N * K));
  std::memcpy(m.fp8.data(), wt->data, m.fp8.size());
  for (size_t i = 0; i < m.fp8.size(); ++i) {
    if (fp8_e4m3_is_nan(m.fp8[i]))
      return InvalidArgument(where(*wt) + " holds NaN (0x" + (m.fp8[i] & 0x80 ? std::string("ff") : std::string("7f")) +
                             ") at row " + std::to_string(static_cast<int64_t>(i) / K) + ", column " +
                             std::to_string(static_cast<int64_t>(i) % K));
  }
  m.source_tensors = {wt->name, sc->name};
  if (const TensorView* is = find(t, module + ".input_scale")) {
    KR_RETURN_IF_ERROR(expect_scalar(*is, "per-tensor input scale"));
    std::vector<float> v;
    KR_RETURN_IF_ERROR(read_floats(*is, &v, nullptr));
    if (!(v[0] > 0.0f)) return InvalidArgument(where(*is) + " is " + std::to_string(v[0]) + "; an input scale must be positive");
    m.input_scale = v[0];
    m.source_tensors.push_back(is->name);
  } else if (p.act == ActQuant::kStaticTensor) {
    return NotFound("missing tensor '" + module + ".input_scale' (static activation scale, " + p.origin + ")");
  }
  for (const char* zp_name : {".weight_zero_point", ".input_zero_point"}) {
    if (const TensorView* z = find(t, module + zp_name)) {
      KR_RETURN_IF_ERROR(expect_all_zero(*z));
      m.source_tensors.push_back(z->name);
    }
  }
  return m;
}

}  // namespace kr::quant_detail
