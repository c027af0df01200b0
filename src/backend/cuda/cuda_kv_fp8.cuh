// Device helpers of the FP8 (e4m3) KV cache (backend/kv_cache_dtype.h): the
// store of one element, and the exact widening of cached bytes to bf16 / float
// that the attention kernels use. Included by the kernels that read or write
// the paged cache.
//
// A kernel templated on the cache element (KvElem: bf16 or e4m3) reads 8
// elements per chunk: 16 bytes of bf16 or 8 bytes of e4m3. The scales are not
// applied per element: k_scale goes into the softmax scale and v_scale onto the
// output rows (the host folds them into the kernels' arguments).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace kr::cuda {

// e4m3(x / scale), rounded to nearest even and saturated to ±448 (NaN stays
// NaN): the IEEE quotient (__fdiv_rn, whatever --use_fast_math says), so that
// the bytes equal the CPU backend's f32_to_fp8_e4m3(x / scale).
__device__ __forceinline__ uint8_t kv_fp8_encode(float x, float scale) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3));
}

// Element i of a paged cache row: bf16 as is, or the e4m3 byte of x / scale.
__device__ __forceinline__ void kv_store(void* cache, bool fp8, float scale, size_t i, __nv_bfloat16 x) {
  if (fp8) {
    static_cast<uint8_t*>(cache)[i] = kv_fp8_encode(__bfloat162float(x), scale);
  } else {
    static_cast<__nv_bfloat16*>(cache)[i] = x;
  }
}

// Four e4m3 bytes (element e in byte e) → two words of two bf16 each (lo:
// elements 0, 1; hi: 2, 3), exactly. Each byte goes to the top of a 16-bit half
// (one prmt), its exponent and mantissa move to bf16's fields (shift and mask):
// that bf16 is the e4m3 value times 2^-120 (e4m3's exponent bias is 7, bf16's
// 127), subnormals included; one bf16x2 multiply by 2^120 (exact: bf16
// arithmetic keeps subnormals) restores it. No e4m3 NaN ever reaches the cache
// from finite inputs (stores saturate).
__device__ __forceinline__ uint32_t e4m3x2_bits_to_bf16x2(uint32_t w) {
  const uint32_t r = (w & 0x80008000u) | ((w & 0x7F007F00u) >> 4);
  uint32_t out;
  asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(out) : "r"(r), "r"(0x7B807B80u));  // 2^120 in each half
  return out;
}
__device__ __forceinline__ void e4m3x4_to_bf16x4(uint32_t x, uint32_t& lo, uint32_t& hi) {
  lo = e4m3x2_bits_to_bf16x2(__byte_perm(x, 0u, 0x1404));  // bytes 0, 1 → bits 15:8 and 31:24
  hi = e4m3x2_bits_to_bf16x2(__byte_perm(x, 0u, 0x3424));  // bytes 2, 3
}
// Eight e4m3 (8 bytes) → eight bf16 (16 bytes), in order.
__device__ __forceinline__ uint4 e4m3x8_to_bf16x8(uint2 v) {
  uint4 r;
  e4m3x4_to_bf16x4(v.x, r.x, r.y);
  e4m3x4_to_bf16x4(v.y, r.z, r.w);
  return r;
}

// The cache element types the attention kernels are instantiated for.
struct KvBf16 {
  static constexpr bool kFp8 = false;
  using Chunk = uint4;  // 8 elements
  static constexpr int kBytes = 2;
  __device__ static __forceinline__ uint4 widen(uint4 c) { return c; }
};
struct KvFp8 {
  static constexpr bool kFp8 = true;
  using Chunk = uint2;  // 8 elements
  static constexpr int kBytes = 1;
  __device__ static __forceinline__ uint4 widen(uint2 c) { return e4m3x8_to_bf16x8(c); }
};

// Chunk `c8` (8 elements) at element offset `off` of a cache (bf16 or e4m3 bytes).
template <typename KV>
__device__ __forceinline__ typename KV::Chunk load_chunk(const void* cache, size_t off) {
  return *reinterpret_cast<const typename KV::Chunk*>(static_cast<const unsigned char*>(cache) + off * KV::kBytes);
}
template <typename KV>
__device__ __forceinline__ typename KV::Chunk zero_chunk() {
  if constexpr (KV::kFp8) {
    return make_uint2(0u, 0u);
  } else {
    return make_uint4(0u, 0u, 0u, 0u);
  }
}

}  // namespace kr::cuda
