#include "model/quant/quant_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>

#include "backend/dtype_convert.h"
#include "model/quant/float_codec.h"

namespace kr {
namespace {

float round_to(DType t, float x) {
  switch (t) {
    case DType::kF16: return f16_to_f32(f32_to_f16(x));
    case DType::kBF16: return bf16_to_f32(f32_to_bf16(x));
    default: return x;
  }
}

StorageType storage_of(DType t) {
  switch (t) {
    case DType::kF16: return StorageType::kF16;
    case DType::kBF16: return StorageType::kBF16;
    default: return StorageType::kF32;
  }
}

void put_u32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

void put_scale(std::string* out, DType t, float v) {
  if (t == DType::kF32) {
    out->append(reinterpret_cast<const char*>(&v), 4);
  } else {
    const uint16_t h = t == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
    out->append(reinterpret_cast<const char*>(&h), 2);
  }
}

// AutoAWQ WQLinear_GEMM.from_linear: nibble slot i of a word holds column 8c + kAwqOrder[i].
constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

Status check_scale(float s, const std::string& name, DType t) {
  if (std::isfinite(s)) return Status::Ok();
  return InvalidArgument("tensor '" + name + "': a scale overflows " + dtype_name(t) + " (weights too large to quantize)");
}

// fn(row) -> Status over [0, n), on `pool` when given; the first failure wins.
Status for_rows(ThreadPool* pool, int64_t n, int64_t row_cost, const std::function<Status(int64_t)>& fn) {
  if (pool == nullptr) {
    for (int64_t r = 0; r < n; ++r) KR_RETURN_IF_ERROR(fn(r));
    return Status::Ok();
  }
  std::mutex mu;
  Status first;
  pool->parallel_for(n, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(row_cost, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      Status s = fn(r);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = std::move(s);
        return;
      }
    }
  });
  return first;
}

}  // namespace

StatusOr<QuantizeFormat> parse_quantize_format(const std::string& s) {
  if (s == "fp8") return QuantizeFormat::kFp8;
  if (s == "fp8-dynamic") return QuantizeFormat::kFp8Dynamic;
  if (s == "awq") return QuantizeFormat::kAwq;
  if (s == "gptq") return QuantizeFormat::kGptq;
  if (s == "w4a16") return QuantizeFormat::kW4A16;
  if (s == "mlx4") return QuantizeFormat::kMlx4;
  if (s == "mlx8") return QuantizeFormat::kMlx8;
  return InvalidArgument("unknown --format '" + s + "' (fp8, fp8-dynamic, awq, gptq, w4a16, mlx4, mlx8)");
}

const char* quantize_format_name(QuantizeFormat f) {
  switch (f) {
    case QuantizeFormat::kFp8: return "fp8";
    case QuantizeFormat::kFp8Dynamic: return "fp8-dynamic";
    case QuantizeFormat::kAwq: return "awq";
    case QuantizeFormat::kGptq: return "gptq";
    case QuantizeFormat::kW4A16: return "w4a16";
    case QuantizeFormat::kMlx4: return "mlx4";
    case QuantizeFormat::kMlx8: return "mlx8";
  }
  return "?";
}

bool uses_groups(QuantizeFormat f) { return f != QuantizeFormat::kFp8 && f != QuantizeFormat::kFp8Dynamic; }

int64_t default_group_size(QuantizeFormat f) {
  if (!uses_groups(f)) return 0;
  return (f == QuantizeFormat::kMlx4 || f == QuantizeFormat::kMlx8) ? 64 : 128;
}

int format_bits(QuantizeFormat f) { return (f == QuantizeFormat::kMlx8 || !uses_groups(f)) ? 8 : 4; }

StatusOr<QuantizedMatrix> quantize_rtn(QuantizeFormat f, const float* w, int64_t N, int64_t K, int64_t G, DType sd,
                                       const std::string& name, ThreadPool* pool) {
  QuantizedMatrix m;
  m.name = name;
  m.N = N;
  m.K = K;
  m.bits = format_bits(f);
  m.scale_dtype = sd;
  if (!uses_groups(f)) {
    // compressed-tensors calculate_qparams for FP8: scale = absmax / 448 (min/max
    // include 0; a zero scale is clamped to float32 eps); q = fp8(clamp(w / s, ±448)).
    m.kind = QuantKind::kFp8;
    const bool per_tensor = f == QuantizeFormat::kFp8;
    m.scale_layout = per_tensor ? ScaleLayout::kTensor : ScaleLayout::kGroup;
    m.group_size = per_tensor ? 0 : K;
    m.act = per_tensor ? ActQuant::kDynamicTensor : ActQuant::kDynamicToken;
    m.fp8.resize(static_cast<size_t>(N * K));
    float tensor_absmax = 0.0f;
    if (per_tensor) {
      for (int64_t i = 0; i < N * K; ++i) tensor_absmax = std::max(tensor_absmax, std::fabs(w[i]));
      m.scales.assign(1, round_to(sd, std::max(tensor_absmax / 448.0f, std::numeric_limits<float>::epsilon())));
      KR_RETURN_IF_ERROR(check_scale(m.scales[0], name, sd));
    } else {
      m.scales.assign(static_cast<size_t>(N), 0.0f);
    }
    KR_RETURN_IF_ERROR(for_rows(pool, N, K, [&](int64_t n) -> Status {
      const float* x = w + n * K;
      float s = m.scales[0];
      if (!per_tensor) {
        float absmax = 0.0f;
        for (int64_t k = 0; k < K; ++k) absmax = std::max(absmax, std::fabs(x[k]));
        s = round_to(sd, std::max(absmax / 448.0f, std::numeric_limits<float>::epsilon()));
        KR_RETURN_IF_ERROR(check_scale(s, name, sd));
        m.scales[static_cast<size_t>(n)] = s;
      }
      uint8_t* q = m.fp8.data() + n * K;
      for (int64_t k = 0; k < K; ++k) q[k] = f32_to_fp8_e4m3(std::clamp(x[k] / s, -448.0f, 448.0f));
      return Status::Ok();
    }));
    KR_RETURN_IF_ERROR(m.validate());
    return m;
  }
  if (G <= 0 || K % G != 0)
    return InvalidArgument("tensor '" + name + "': group size " + std::to_string(G) + " does not divide in_features " +
                           std::to_string(K) + " (choose --group-size)");
  m.kind = QuantKind::kInt;
  m.group_size = G;
  const int64_t groups = K / G;
  const uint32_t maxq = (1u << m.bits) - 1u;
  std::vector<uint8_t> codes(static_cast<size_t>(N * K));
  m.scales.resize(static_cast<size_t>(N * groups));
  if (f == QuantizeFormat::kAwq) m.zeros.resize(m.scales.size());
  if (f == QuantizeFormat::kMlx4 || f == QuantizeFormat::kMlx8) m.biases.resize(m.scales.size());
  KR_RETURN_IF_ERROR(for_rows(pool, N, K, [&](int64_t n) -> Status {
    for (int64_t g = 0; g < groups; ++g) {
      const float* x = w + n * K + g * G;
      uint8_t* q = codes.data() + n * K + g * G;
      float lo = std::numeric_limits<float>::infinity(), hi = -lo, absmax = 0.0f;
      for (int64_t i = 0; i < G; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
        absmax = std::max(absmax, std::fabs(x[i]));
      }
      const size_t gi = static_cast<size_t>(n * groups + g);
      float s = 0.0f;
      switch (f) {
        case QuantizeFormat::kAwq: {
          // AutoAWQ AwqQuantizer.pseudo_quantize_tensor (zero_point=True): s =
          // clamp(max - min, 1e-5) / 15; z = clamp(-round(min / s), 0, 15);
          // q = clamp(round(w / s) + z, 0, 15). torch.round is half-to-even.
          s = round_to(sd, std::max(hi - lo, 1e-5f) / 15.0f);
          KR_RETURN_IF_ERROR(check_scale(s, name, sd));
          const float z = std::clamp(-std::nearbyint(lo / s), 0.0f, 15.0f);
          m.zeros[gi] = static_cast<uint8_t>(z);
          for (int64_t i = 0; i < G; ++i) q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(x[i] / s) + z, 0.0f, 15.0f));
          break;
        }
        case QuantizeFormat::kGptq:
        case QuantizeFormat::kW4A16: {
          // Symmetric: GPTQ Quantizer.find_params (sym) gives scale = 2 * absmax / maxq
          // with zero (maxq + 1) / 2 = 8, an all-zero group uses (-1, 1); compressed-
          // tensors' int4 symmetric scale absmax / 7.5 is the same number (its zero
          // scale is clamped to eps). q = clamp(round(w / s) + 8, 0, 15).
          const float raw = absmax > 0.0f ? absmax / 7.5f
                            : f == QuantizeFormat::kGptq ? 2.0f / 15.0f
                                                          : std::numeric_limits<float>::epsilon();
          s = round_to(sd, raw);
          KR_RETURN_IF_ERROR(check_scale(s, name, sd));
          for (int64_t i = 0; i < G; ++i) q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(x[i] / s) + 8.0f, 0.0f, 15.0f));
          break;
        }
        default: {
          // MLX affine, CPU quantize<T,U>() (mlx/backend/cpu/quantized.cpp): the
          // larger-magnitude edge is represented exactly, so the scale may be
          // negative. Codes are computed from the stored (rounded) scale and bias.
          const float n_bins = static_cast<float>(maxq);
          const bool mask = std::fabs(lo) > std::fabs(hi);
          float scale = std::max((hi - lo) / n_bins, 1e-7f);
          scale = mask ? scale : -scale;
          const float edge = mask ? lo : hi;
          const float q0 = std::rint(edge / scale);
          float bias = 0.0f;
          if (q0 != 0.0f) {
            scale = edge / q0;
            bias = edge;
          }
          s = round_to(sd, scale);
          const float b = round_to(sd, bias);
          KR_RETURN_IF_ERROR(check_scale(s, name, sd));
          KR_RETURN_IF_ERROR(check_scale(b, name, sd));
          m.biases[gi] = b;
          for (int64_t i = 0; i < G; ++i) q[i] = static_cast<uint8_t>(std::clamp(std::rint((x[i] - b) / s), 0.0f, n_bins));
          break;
        }
      }
      m.scales[gi] = s;
    }
    return Status::Ok();
  }));
  m.zero_kind = f == QuantizeFormat::kAwq                                    ? ZeroKind::kInteger
                : (f == QuantizeFormat::kMlx4 || f == QuantizeFormat::kMlx8) ? ZeroKind::kFloatBias
                                                                             : ZeroKind::kSymmetric;
  const int pf = m.pack_factor();
  const int64_t wpr = m.words_per_row();
  m.qweight.assign(static_cast<size_t>(N * wpr), 0u);
  KR_RETURN_IF_ERROR(for_rows(pool, N, K, [&](int64_t n) -> Status {
    uint32_t* row = m.qweight.data() + n * wpr;
    const uint8_t* c = codes.data() + n * K;
    for (int64_t k = 0; k < K; ++k) row[k / pf] |= static_cast<uint32_t>(c[k]) << (m.bits * (k % pf));
    return Status::Ok();
  }));
  KR_RETURN_IF_ERROR(m.validate());
  return m;
}

std::vector<EncodedTensor> plan_module(QuantizeFormat f, int64_t N, int64_t K, int64_t G, DType sd) {
  const StorageType st = storage_of(sd);
  const int b = format_bits(f), pf = 32 / b;
  switch (f) {
    case QuantizeFormat::kFp8:
      return {{"weight", StorageType::kF8E4M3, {N, K}, {}}, {"weight_scale", st, {1}, {}}};
    case QuantizeFormat::kFp8Dynamic:
      return {{"weight", StorageType::kF8E4M3, {N, K}, {}}, {"weight_scale", st, {N, 1}, {}}};
    case QuantizeFormat::kAwq:
      return {{"qweight", StorageType::kI32, {K, N / 8}, {}},
              {"qzeros", StorageType::kI32, {K / G, N / 8}, {}},
              {"scales", st, {K / G, N}, {}}};
    case QuantizeFormat::kGptq:
      return {{"qweight", StorageType::kI32, {K / pf, N}, {}},
              {"qzeros", StorageType::kI32, {K / G, N / pf}, {}},
              {"scales", st, {K / G, N}, {}},
              {"g_idx", StorageType::kI32, {K}, {}}};
    case QuantizeFormat::kW4A16:
      return {{"weight_packed", StorageType::kI32, {N, (K + pf - 1) / pf}, {}},
              {"weight_scale", st, {N, K / G}, {}},
              {"weight_shape", StorageType::kI64, {2}, {}}};
    case QuantizeFormat::kMlx4:
    case QuantizeFormat::kMlx8:
      return {{"weight", StorageType::kU32, {N, K / pf}, {}}, {"scales", st, {N, K / G}, {}}, {"biases", st, {N, K / G}, {}}};
  }
  return {};
}

StatusOr<std::vector<EncodedTensor>> encode_module(QuantizeFormat f, const QuantizedMatrix& m) {
  std::vector<EncodedTensor> out = plan_module(f, m.N, m.K, m.group_size, m.scale_dtype);
  const int64_t N = m.N, K = m.K, groups = m.groups();
  const int b = m.bits, pf = 32 / b;
  const uint32_t mask = (1u << b) - 1u;
  auto tensor = [&](const char* suffix) -> std::string& {
    for (EncodedTensor& t : out)
      if (t.suffix == suffix) return t.bytes;
    return out[0].bytes;  // unreachable: every suffix asked for is planned
  };
  auto scales_gn = [&](std::string* dst) {  // [groups, N] from the canonical [N, groups]
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t n = 0; n < N; ++n) put_scale(dst, m.scale_dtype, m.scales[static_cast<size_t>(n * groups + g)]);
  };
  switch (f) {
    case QuantizeFormat::kFp8:
    case QuantizeFormat::kFp8Dynamic:
      tensor("weight").assign(reinterpret_cast<const char*>(m.fp8.data()), m.fp8.size());
      for (float s : m.scales) put_scale(&tensor("weight_scale"), m.scale_dtype, s);
      break;
    case QuantizeFormat::kAwq: {
      std::string& qw = tensor("qweight");
      for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < N / 8; ++c) {
          uint32_t word = 0;
          for (int i = 0; i < 8; ++i) word |= m.code(c * 8 + kAwqOrder[i], k) << (4 * i);
          put_u32(&qw, word);
        }
      std::string& qz = tensor("qzeros");
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t c = 0; c < N / 8; ++c) {
          uint32_t word = 0;
          for (int i = 0; i < 8; ++i) word |= static_cast<uint32_t>(m.zeros[static_cast<size_t>((c * 8 + kAwqOrder[i]) * groups + g)]) << (4 * i);
          put_u32(&qz, word);
        }
      scales_gn(&tensor("scales"));
      break;
    }
    case QuantizeFormat::kGptq: {
      // AutoGPTQ QuantLinear.pack, checkpoint_format "gptq" (v1): zeros stored minus one.
      std::string& qw = tensor("qweight");
      for (int64_t r = 0; r < K / pf; ++r)
        for (int64_t n = 0; n < N; ++n) {
          uint32_t word = 0;
          for (int j = 0; j < pf; ++j) word |= m.code(n, r * pf + j) << (b * j);
          put_u32(&qw, word);
        }
      std::string& qz = tensor("qzeros");
      const uint32_t stored = (1u << (b - 1)) - 1u;  // symmetric zero 2^(b-1), minus one
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t c = 0; c < N / pf; ++c) {
          uint32_t word = 0;
          for (int j = 0; j < pf; ++j) word |= (stored & mask) << (b * j);
          put_u32(&qz, word);
        }
      scales_gn(&tensor("scales"));
      std::string& gi = tensor("g_idx");
      for (int64_t k = 0; k < K; ++k) put_u32(&gi, static_cast<uint32_t>(k / m.group_size));
      break;
    }
    case QuantizeFormat::kW4A16: {
      // pack_to_int32: the stored nibble is the signed code + 8, i.e. the canonical code.
      std::string& wp = tensor("weight_packed");
      for (uint32_t w : m.qweight) put_u32(&wp, w);
      for (float s : m.scales) put_scale(&tensor("weight_scale"), m.scale_dtype, s);
      const int64_t shape[2] = {N, K};
      tensor("weight_shape").assign(reinterpret_cast<const char*>(shape), sizeof(shape));
      break;
    }
    case QuantizeFormat::kMlx4:
    case QuantizeFormat::kMlx8:
      for (uint32_t w : m.qweight) put_u32(&tensor("weight"), w);
      for (float s : m.scales) put_scale(&tensor("scales"), m.scale_dtype, s);
      for (float s : m.biases) put_scale(&tensor("biases"), m.scale_dtype, s);
      break;
  }
  for (const EncodedTensor& t : out) {
    uint64_t want = storage_type_size_bytes(t.type);
    for (int64_t d : t.shape) want *= static_cast<uint64_t>(d);
    if (t.bytes.size() != want) return Internal("encode_module(" + m.name + "." + t.suffix + "): size mismatch");
  }
  return out;
}

}  // namespace kr
