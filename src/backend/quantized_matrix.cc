#include "backend/quantized_matrix.h"

#include <algorithm>
#include <cmath>

#include "backend/float_codec.h"

namespace kr {
namespace {

std::string where(const QuantizedMatrix& m) { return "quantized matrix '" + m.name + "' (" + m.format + ")"; }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

const char* quant_kind_name(QuantKind k) { return k == QuantKind::kInt ? "int" : "fp8"; }

const char* zero_kind_name(ZeroKind z) {
  switch (z) {
    case ZeroKind::kSymmetric: return "symmetric";
    case ZeroKind::kInteger: return "integer zero points";
    case ZeroKind::kFloatBias: return "float biases";
  }
  return "?";
}

const char* act_quant_name(ActQuant a) {
  switch (a) {
    case ActQuant::kNone: return "none";
    case ActQuant::kStaticTensor: return "static per-tensor";
    case ActQuant::kDynamicTensor: return "dynamic per-tensor";
    case ActQuant::kDynamicToken: return "dynamic per-token";
    case ActQuant::kDynamicGroup: return "dynamic per-token-group";
  }
  return "?";
}

bool fp8_runs_w8a8(const QuantizedMatrix& m) {
  // N % 8 and K % 16: the alignment the FP8 tensor-core GEMM (cuBLASLt) needs;
  // other shapes run W8A16.
  return m.kind == QuantKind::kFp8 && m.scale_layout != ScaleLayout::kBlock && m.N % 8 == 0 && m.K % 16 == 0 &&
         (m.act == ActQuant::kStaticTensor || m.act == ActQuant::kDynamicToken || m.act == ActQuant::kDynamicTensor);
}

int64_t QuantizedMatrix::scale_rows() const {
  switch (scale_layout) {
    case ScaleLayout::kGroup: return N;
    case ScaleLayout::kTensor: return 1;
    case ScaleLayout::kBlock: return block_n > 0 ? ceil_div(N, block_n) : 0;
  }
  return 0;
}

int64_t QuantizedMatrix::scale_cols() const {
  switch (scale_layout) {
    case ScaleLayout::kGroup: return groups();
    case ScaleLayout::kTensor: return 1;
    case ScaleLayout::kBlock: return block_k > 0 ? ceil_div(K, block_k) : 0;
  }
  return 0;
}

int64_t QuantizedMatrix::weight_bytes() const {
  const int64_t scale_bytes = static_cast<int64_t>(dtype_size_bytes(scale_dtype)) * scale_rows() * scale_cols();
  if (kind == QuantKind::kFp8) return N * K + scale_bytes;
  int64_t b = N * words_per_row() * 4 + scale_bytes;
  if (zero_kind == ZeroKind::kInteger) b += ceil_div(N * groups() * bits, 8);
  if (zero_kind == ZeroKind::kFloatBias) b += scale_bytes;
  return b;
}

Status QuantizedMatrix::validate() const {
  if (N <= 0 || K <= 0) return InvalidArgument(where(*this) + ": shape [" + std::to_string(N) + ", " + std::to_string(K) + "] is empty");
  if (N > (int64_t{1} << 31) || K > (int64_t{1} << 31) || N * K > (int64_t{1} << 40))
    return InvalidArgument(where(*this) + ": shape is too large");
  for (size_t i = 0; i < scales.size(); ++i) {
    if (!std::isfinite(scales[i]))
      return InvalidArgument(where(*this) + ": scale " + std::to_string(i) + " is not finite");
  }
  if (static_cast<int64_t>(scales.size()) != scale_rows() * scale_cols())
    return InvalidArgument(where(*this) + ": " + std::to_string(scales.size()) + " scales, expected " +
                           std::to_string(scale_rows() * scale_cols()));
  if (kind == QuantKind::kFp8) {
    if (bits != 8) return InvalidArgument(where(*this) + ": FP8 with " + std::to_string(bits) + " bits");
    if (static_cast<int64_t>(fp8.size()) != N * K) return InvalidArgument(where(*this) + ": fp8 holds " + std::to_string(fp8.size()) + " bytes, expected N*K");
    if (scale_layout == ScaleLayout::kGroup && group_size != K)
      return InvalidArgument(where(*this) + ": FP8 group scales must be per channel");
    if (scale_layout == ScaleLayout::kBlock && (block_n <= 0 || block_k <= 0))
      return InvalidArgument(where(*this) + ": FP8 block scales need positive block sizes");
    if (act == ActQuant::kStaticTensor && !(std::isfinite(input_scale) && input_scale > 0.0f))
      return InvalidArgument(where(*this) + ": static input scale must be finite and positive");
    if (act == ActQuant::kDynamicGroup && act_group_size <= 0)
      return InvalidArgument(where(*this) + ": activation group size " + std::to_string(act_group_size) + " is not positive");
    return Status::Ok();
  }
  if (bits != 4 && bits != 8) return InvalidArgument(where(*this) + ": " + std::to_string(bits) + "-bit codes are not supported");
  if (group_size <= 0 || K % group_size != 0)
    return InvalidArgument(where(*this) + ": group size " + std::to_string(group_size) + " does not divide K = " + std::to_string(K));
  if (scale_layout != ScaleLayout::kGroup) return InvalidArgument(where(*this) + ": integer codes need group scales");
  if (static_cast<int64_t>(qweight.size()) != N * words_per_row())
    return InvalidArgument(where(*this) + ": qweight holds " + std::to_string(qweight.size()) + " words, expected " +
                           std::to_string(N * words_per_row()));
  const size_t ng = static_cast<size_t>(N * groups());
  if (zero_kind == ZeroKind::kInteger) {
    if (zeros.size() != ng) return InvalidArgument(where(*this) + ": zeros size mismatch");
    for (size_t i = 0; i < ng; ++i)
      if (zeros[i] >= (1u << bits)) return InvalidArgument(where(*this) + ": zero point " + std::to_string(zeros[i]) + " out of range");
  } else if (!zeros.empty()) {
    return InvalidArgument(where(*this) + ": zeros given without integer zero points");
  }
  if (zero_kind == ZeroKind::kFloatBias) {
    if (biases.size() != ng) return InvalidArgument(where(*this) + ": biases size mismatch");
    for (size_t i = 0; i < ng; ++i)
      if (!std::isfinite(biases[i])) return InvalidArgument(where(*this) + ": bias " + std::to_string(i) + " is not finite");
  } else if (!biases.empty()) {
    return InvalidArgument(where(*this) + ": biases given without float-bias zero points");
  }
  if (!perm.empty()) {
    if (static_cast<int64_t>(perm.size()) != K) return InvalidArgument(where(*this) + ": perm size is not K");
    std::vector<bool> seen(static_cast<size_t>(K), false);
    for (int32_t p : perm) {
      if (p < 0 || p >= K || seen[static_cast<size_t>(p)]) return InvalidArgument(where(*this) + ": perm is not a permutation of 0..K-1");
      seen[static_cast<size_t>(p)] = true;
    }
  }
  return Status::Ok();
}

void dequantize_row(const QuantizedMatrix& m, int64_t n, float* out) {
  if (m.kind == QuantKind::kFp8) {
    const uint8_t* q = m.fp8.data() + n * m.K;
    for (int64_t k = 0; k < m.K; ++k) {
      float s;
      switch (m.scale_layout) {
        case ScaleLayout::kTensor: s = m.scales[0]; break;
        case ScaleLayout::kGroup: s = m.scales[static_cast<size_t>(n)]; break;
        default: s = m.scales[static_cast<size_t>((n / m.block_n) * m.scale_cols() + k / m.block_k)]; break;
      }
      out[k] = fp8_e4m3_to_f32(q[k]) * s;
    }
    return;
  }
  const int64_t G = m.group_size, ng = m.groups();
  const float mid = static_cast<float>(1u << (m.bits - 1));
  for (int64_t j = 0; j < m.K; ++j) {
    const int64_t k = m.perm.empty() ? j : m.perm[static_cast<size_t>(j)];
    const size_t gi = static_cast<size_t>(n * ng + j / G);
    const float q = static_cast<float>(m.code(n, j));
    const float s = m.scales[gi];
    float w;
    switch (m.zero_kind) {
      case ZeroKind::kSymmetric: w = (q - mid) * s; break;
      case ZeroKind::kInteger: w = (q - static_cast<float>(m.zeros[gi])) * s; break;
      default: {
        const float prod = q * s;  // rounded on its own (the library builds with -ffp-contract=off)
        w = prod + m.biases[gi];
        break;
      }
    }
    out[k] = w;
  }
}

std::vector<float> dequantize(const QuantizedMatrix& m) {
  std::vector<float> w(static_cast<size_t>(m.N * m.K));
  for (int64_t n = 0; n < m.N; ++n) dequantize_row(m, n, w.data() + n * m.K);
  return w;
}

StatusOr<QuantizedMatrix> fuse_rows(const std::vector<const QuantizedMatrix*>& parts, const std::string& name) {
  if (parts.empty()) return InvalidArgument("fuse_rows(" + name + "): no parts");
  const QuantizedMatrix& a = *parts[0];
  auto mismatch = [&](const QuantizedMatrix& b, const std::string& what) {
    return InvalidArgument("cannot fuse '" + a.name + "' and '" + b.name + "' into '" + name + "': " + what + " differ");
  };
  int64_t rows = 0;
  bool any_int_zero = false, all_tensor_same = true;
  float in_scale = 0.0f;
  for (const QuantizedMatrix* p : parts) {
    const QuantizedMatrix& b = *p;
    if (b.kind != a.kind) return mismatch(b, "kinds");
    if (b.K != a.K) return mismatch(b, "input sizes K");
    if (b.bits != a.bits) return mismatch(b, "bit widths");
    if (b.kind == QuantKind::kInt) {
      if (b.group_size != a.group_size) return mismatch(b, "group sizes");
      if (b.perm != a.perm) return mismatch(b, "act-order permutations (g_idx)");
      if ((b.zero_kind == ZeroKind::kFloatBias) != (a.zero_kind == ZeroKind::kFloatBias)) return mismatch(b, "zero-point kinds");
      any_int_zero |= b.zero_kind == ZeroKind::kInteger;
    } else {
      if (b.act != a.act || b.act_group_size != a.act_group_size) return mismatch(b, "activation schemes");
      if (b.activation_scale_ub != a.activation_scale_ub) return mismatch(b, "activation scale bounds");
      const bool blk = b.scale_layout == ScaleLayout::kBlock;
      if (blk != (a.scale_layout == ScaleLayout::kBlock)) return mismatch(b, "scale layouts (block and non-block)");
      if (blk && (b.block_n != a.block_n || b.block_k != a.block_k)) return mismatch(b, "block sizes");
      if (blk && p != parts.back() && b.N % b.block_n != 0)
        return mismatch(b, "row counts (not a multiple of the block size)");
      if (b.scale_layout != ScaleLayout::kTensor || b.scales[0] != a.scales[0] || a.scale_layout != ScaleLayout::kTensor)
        all_tensor_same = false;
      in_scale = std::max(in_scale, b.input_scale);
    }
    rows += b.N;
  }
  QuantizedMatrix f;
  f.kind = a.kind;
  f.format = a.format;
  f.name = name;
  f.N = rows;
  f.K = a.K;
  f.bits = a.bits;
  f.group_size = a.group_size;
  f.scale_dtype = a.scale_dtype;
  for (const QuantizedMatrix* p : parts) {
    if (p->scale_dtype != f.scale_dtype) f.scale_dtype = DType::kF32;  // keep the values exact
    f.source_tensors.insert(f.source_tensors.end(), p->source_tensors.begin(), p->source_tensors.end());
  }
  if (a.kind == QuantKind::kInt) {
    f.perm = a.perm;
    f.scale_layout = ScaleLayout::kGroup;
    f.zero_kind = a.zero_kind == ZeroKind::kFloatBias ? ZeroKind::kFloatBias
                  : any_int_zero                      ? ZeroKind::kInteger
                                                      : ZeroKind::kSymmetric;
    for (const QuantizedMatrix* p : parts) {
      f.qweight.insert(f.qweight.end(), p->qweight.begin(), p->qweight.end());
      f.scales.insert(f.scales.end(), p->scales.begin(), p->scales.end());
      if (f.zero_kind == ZeroKind::kInteger) {
        if (p->zero_kind == ZeroKind::kInteger) {
          f.zeros.insert(f.zeros.end(), p->zeros.begin(), p->zeros.end());
        } else {
          f.zeros.insert(f.zeros.end(), static_cast<size_t>(p->N * p->groups()), static_cast<uint8_t>(1u << (p->bits - 1)));
        }
      }
      if (f.zero_kind == ZeroKind::kFloatBias) f.biases.insert(f.biases.end(), p->biases.begin(), p->biases.end());
    }
  } else {
    f.act = a.act;
    f.act_group_size = a.act_group_size;
    f.activation_scale_ub = a.activation_scale_ub;
    f.input_scale = in_scale;
    for (const QuantizedMatrix* p : parts) f.fp8.insert(f.fp8.end(), p->fp8.begin(), p->fp8.end());
    if (a.scale_layout == ScaleLayout::kBlock) {
      f.scale_layout = ScaleLayout::kBlock;
      f.block_n = a.block_n;
      f.block_k = a.block_k;
      for (const QuantizedMatrix* p : parts) f.scales.insert(f.scales.end(), p->scales.begin(), p->scales.end());
    } else if (all_tensor_same) {
      f.scale_layout = ScaleLayout::kTensor;
      f.scales = {a.scales[0]};
    } else {  // per-channel: expand per-tensor parts row by row
      f.scale_layout = ScaleLayout::kGroup;
      f.group_size = f.K;
      for (const QuantizedMatrix* p : parts) {
        if (p->scale_layout == ScaleLayout::kTensor) {
          f.scales.insert(f.scales.end(), static_cast<size_t>(p->N), p->scales[0]);
        } else {
          f.scales.insert(f.scales.end(), p->scales.begin(), p->scales.end());
        }
      }
    }
  }
  KR_RETURN_IF_ERROR(f.validate());
  return f;
}

}  // namespace kr
