// The element type of the paged KV cache (--kv-cache-dtype), and the FP8 one's
// encoding. Header-only; any thread.
//
// fp8: float8_e4m3fn with one scale per layer for K and one for V (vLLM's
// per-tensor k_scale / v_scale, from the checkpoint when it has them, else 1.0):
// a value x is stored as e4m3(x / scale), rounded to nearest even and saturated
// to ±448, and read back as e4m3 * scale. Every backend stores the same bytes,
// so the CPU reference and the CUDA kernels attend over the same values.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "backend/float_codec.h"

namespace kr {

enum class KvCacheDType : uint8_t {
  kAuto,  // the checkpoint's: fp8 when its quantization config declares an FP8 KV cache, else bf16
  kBf16,  // the backend's activation dtype (bf16 on CUDA, float32 on the CPU reference)
  kFp8,   // e4m3 with per-layer scales: half the bytes of bf16
};

// "auto|bf16|fp8", in the enum's order (the flag's choices).
inline constexpr const char* kKvCacheDTypeNames[] = {"auto", "bf16", "fp8"};

inline const char* kv_cache_dtype_name(KvCacheDType d) { return kKvCacheDTypeNames[static_cast<int>(d)]; }

// "auto", "bf16" or "fp8" (vLLM also spells fp8 "fp8_e4m3"); nullopt otherwise.
inline std::optional<KvCacheDType> parse_kv_cache_dtype(std::string_view s) {
  if (s == "auto") return KvCacheDType::kAuto;
  if (s == "bf16" || s == "bfloat16") return KvCacheDType::kBf16;
  if (s == "fp8" || s == "fp8_e4m3") return KvCacheDType::kFp8;
  return std::nullopt;
}

// One cache element: e4m3(x / scale), saturated (the CUDA kernels compute the
// same IEEE quotient with __fdiv_rn and convert with __NV_SATFINITE).
inline uint8_t kv_fp8_encode(float x, float scale) { return f32_to_fp8_e4m3(x / scale); }
inline float kv_fp8_decode(uint8_t c, float scale) { return fp8_e4m3_to_f32(c) * scale; }

}  // namespace kr
