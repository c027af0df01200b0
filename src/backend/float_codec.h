// Scalar encoders/decoders for the small float types of quantized checkpoints:
// float8_e4m3fn (FP8 weights) and IEEE half (AWQ/GPTQ scales). Header-only; any
// thread. bf16 and the f16 decoder live in backend/dtype_convert.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace kr {

// float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; exponent 0 is
// subnormal (m * 2^-9); S.1111.111 is NaN; there are no infinities; the largest
// finite value is 0x7E = 448 (the OCP FP8 spec; torch.float8_e4m3fn).
inline bool fp8_e4m3_is_nan(uint8_t c) { return (c & 0x7F) == 0x7F; }

inline float fp8_e4m3_to_f32(uint8_t c) {
  const float sign = (c & 0x80) ? -1.0f : 1.0f;
  const int e = (c >> 3) & 0xF, m = c & 0x7;
  if (fp8_e4m3_is_nan(c)) return std::nanf("");
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
}

// Round to nearest even after saturating to ±448, as producers do
// (compressed-tensors clamps to finfo(float8_e4m3fn) before the cast); NaN stays NaN.
inline uint8_t f32_to_fp8_e4m3(float x) {
  if (std::isnan(x)) return 0x7F;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  float a = std::fabs(x);
  if (a >= 448.0f) return sign | 0x7E;
  if (a < 0.015625f) {  // below 2^-6: subnormal step 2^-9 (m == 8 is the first normal, code 0x08)
    const int m = static_cast<int>(std::rint(a * 512.0f));
    return sign | static_cast<uint8_t>(m);
  }
  int e2 = 0;
  const float fr = std::frexp(a, &e2);  // a = fr * 2^e2, fr in [0.5, 1)
  int e = e2 - 1 + 7;                   // biased exponent of 1.m form
  int m = static_cast<int>(std::rint((fr * 2.0f - 1.0f) * 8.0f));
  if (m == 8) {
    m = 0;
    ++e;
  }
  if (e > 15 || (e == 15 && m == 7)) return sign | 0x7E;
  return sign | static_cast<uint8_t>((e << 3) | m);
}

// IEEE half, round to nearest even; overflow goes to ±Inf (callers check).
inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
  if (a < 0x38800000u) {  // below 2^-14: subnormal half (or zero), step 2^-24
    float v;
    std::memcpy(&v, &a, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::rint(v * 16777216.0f)));
  }
  uint32_t h = (((a >> 23) - 127 + 15) << 10) | ((a & 0x7fffffu) >> 13);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry moves into the exponent correctly
  return static_cast<uint16_t>(sign | h);
}

}  // namespace kr
