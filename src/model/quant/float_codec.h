// Scalar encoders/decoders for the small float types of quantized checkpoints:
// float8_e4m3fn (FP8 weights) and IEEE half (AWQ/GPTQ scales). Header-only; any
// thread. bf16 and IEEE half (both directions) live in backend/dtype_convert.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/dtype_convert.h"

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

}  // namespace kr
