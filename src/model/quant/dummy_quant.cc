#include "model/quant/dummy_quant.h"

#include <algorithm>
#include <thread>

#include "backend/dtype_convert.h"
#include "backend/float_codec.h"

namespace kr {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// fill(i) for i in [0, n) on several threads.
template <typename F>
void parallel_fill(int64_t n, F fill) {
  const int threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
  if (threads == 1 || n < (int64_t{1} << 16)) {
    for (int64_t i = 0; i < n; ++i) fill(i);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([b, e, &fill] {
      for (int64_t i = b; i < e; ++i) fill(i);
    });
  }
  for (auto& th : pool) th.join();
}

// A float exactly representable in `dtype` near v.
float exact_in(float v, DType dtype) {
  if (dtype == DType::kBF16) return bf16_to_f32(f32_to_bf16(v));
  if (dtype == DType::kF16) return f16_to_f32(f32_to_f16(v));
  return v;
}

}  // namespace

const std::vector<std::string>& dummy_quant_formats() {
  static const std::vector<std::string> f = {"awq", "gptq", "gptq8", "mlx4", "mlx8", "fp8", "fp8-static"};
  return f;
}

StatusOr<QuantizedMatrix> make_dummy_quantized(const std::string& format, int64_t N, int64_t K, uint64_t seed,
                                               const std::string& name) {
  QuantizedMatrix m;
  m.name = name;
  m.N = N;
  m.K = K;
  const uint64_t s0 = splitmix64(seed);
  if (format == "fp8" || format == "fp8-static") {
    m.kind = QuantKind::kFp8;
    m.format = format == "fp8" ? "compressed-tensors" : "modelopt";
    m.bits = 8;
    m.group_size = K;
    m.fp8.resize(static_cast<size_t>(N * K));
    // Codes of magnitude <= 1.875 (exponent field <= 7), random sign: |W| <= 0.019 with s = 0.01.
    parallel_fill((N * K + 7) / 8, [&](int64_t w) {
      uint64_t r = splitmix64(s0 ^ (static_cast<uint64_t>(w) * 0xd1342543de82ef95ull));
      for (int j = 0; j < 8; ++j) {
        const int64_t i = w * 8 + j;
        if (i >= N * K) break;
        m.fp8[static_cast<size_t>(i)] = static_cast<uint8_t>((r & 0x80) | ((r >> 8) & 0x3F));
        r = (r >> 16) | (r << 48);
      }
    });
    if (format == "fp8") {
      m.scale_layout = ScaleLayout::kGroup;
      m.scale_dtype = DType::kBF16;
      m.scales.assign(static_cast<size_t>(N), exact_in(0.01f, DType::kBF16));
      m.act = ActQuant::kDynamicToken;
    } else {
      m.scale_layout = ScaleLayout::kTensor;
      m.scale_dtype = DType::kF32;
      m.scales = {0.01f};
      m.act = ActQuant::kStaticTensor;
      m.input_scale = 0.02f;
    }
    KR_RETURN_IF_ERROR(m.validate());
    return m;
  }
  m.kind = QuantKind::kInt;
  if (format == "awq" || format == "gptq") {
    m.bits = 4;
    m.group_size = 128;
    m.scale_dtype = DType::kF16;
    m.zero_kind = format == "awq" ? ZeroKind::kInteger : ZeroKind::kSymmetric;
  } else if (format == "gptq8") {
    m.bits = 8;
    m.group_size = 128;
    m.scale_dtype = DType::kF16;
    m.zero_kind = ZeroKind::kSymmetric;
  } else if (format == "mlx4" || format == "mlx8") {
    m.bits = format == "mlx4" ? 4 : 8;
    m.group_size = 64;
    m.scale_dtype = DType::kBF16;
    m.zero_kind = ZeroKind::kFloatBias;
  } else {
    std::string known;
    for (const std::string& f : dummy_quant_formats()) known += (known.empty() ? "" : ", ") + f;
    return InvalidArgument("unknown dummy quantization format '" + format + "' (known: " + known + ")");
  }
  m.format = format.starts_with("mlx") ? "mlx" : format.starts_with("awq") ? "awq" : "gptq";
  if (K % m.group_size != 0)
    return InvalidArgument("dummy " + format + " matrix '" + name + "': group size " + std::to_string(m.group_size) +
                           " does not divide K = " + std::to_string(K));
  const int64_t words = N * m.words_per_row();
  m.qweight.resize(static_cast<size_t>(words));
  parallel_fill(words, [&](int64_t w) {
    m.qweight[static_cast<size_t>(w)] = static_cast<uint32_t>(splitmix64(s0 ^ (static_cast<uint64_t>(w) * 0x9e3779b97f4a7c15ull)));
  });
  if (m.bits == 4 && K % 8 != 0) {
    // Codes past K in the last word of a row must be zero (QuantizedMatrix's invariant).
    for (int64_t n = 0; n < N; ++n) m.qweight[static_cast<size_t>((n + 1) * m.words_per_row() - 1)] &= (1u << (4 * (K % 8))) - 1u;
  }
  const int64_t ng = N * m.groups();
  const float mid = static_cast<float>(1 << (m.bits - 1));
  const float scale = exact_in(0.02f / mid, m.scale_dtype);
  m.scales.assign(static_cast<size_t>(ng), scale);
  if (m.zero_kind == ZeroKind::kInteger) {
    m.zeros.resize(static_cast<size_t>(ng));
    for (int64_t i = 0; i < ng; ++i) m.zeros[static_cast<size_t>(i)] = static_cast<uint8_t>(mid - 1 + (splitmix64(s0 + i) % 3));
  } else if (m.zero_kind == ZeroKind::kFloatBias) {
    m.biases.assign(static_cast<size_t>(ng), exact_in(-mid * scale, m.scale_dtype));
  }
  KR_RETURN_IF_ERROR(m.validate());
  return m;
}

}  // namespace kr
