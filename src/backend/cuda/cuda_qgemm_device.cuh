// Device helpers shared by the quantized-weight kernels (cuda_qgemm.cu,
// cuda_qgemm_wgmma.cu): bf16 pair arithmetic, the dequantization of one mma A
// fragment from the repacked layout (qgemm_layout.h), a block's tile pair, the
// shared epilogues (plain, GLU, bias + RoPE + KV store) and the launch-time
// dispatch on the code kind and epilogue. Included only by CUDA translation units
// of the backend and by kr-cuda-bench's mega_gemv_bench.cu (a study of the same
// arithmetic in a persistent kernel); everything here is internal to each of them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_cluster.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_mma.cuh"
#include "backend/cuda/cuda_qgemm.h"

namespace kr::cuda {

namespace {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float bf(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ bf16 to_bf(float v) { return __float2bfloat16(v); }

__device__ __forceinline__ uint32_t as_u32(__nv_bfloat162 v) { return *reinterpret_cast<uint32_t*>(&v); }
__device__ __forceinline__ __nv_bfloat162 as_bf2(uint32_t v) { return *reinterpret_cast<__nv_bfloat162*>(&v); }

// A 16-bit float of the meta (f16 or bf16 bits) as f32.
__device__ __forceinline__ float meta_float(uint32_t bits16, bool f16) {
  return f16 ? __half2float(__ushort_as_half(static_cast<unsigned short>(bits16)))
             : __uint_as_float(bits16 << 16);
}

// Shape constants of one code kind.
template <QCode C>
struct Kind {
  static constexpr int kChunk = C == QCode::kFp8 ? 64 : 32;            // columns per chunk (fold / group unit)
  static constexpr int kStep = C == QCode::kU8 ? 32 : 64;              // columns per step
  static constexpr int kChunks = kStep / kChunk;                       // chunks per step
  static constexpr int kMmaPerChunk = kChunk / 16;                     // k16 tiles per chunk
  static constexpr int kWVecs = C == QCode::kFp8 ? 2 : 1;              // uint4 per lane, tile and step
  static constexpr int kXVecs = kChunk / 4 / 8;                        // uint4 of x per lane and chunk
};

// 32-column chunks (global index kc) and the groups of `group` columns (a multiple
// of 32) they fall in: a shift and a mask where the chunks per group are a power of
// two (32, 64 and 128-column groups), a division otherwise (channel-wise weights,
// one group of K). A runtime division in a kernel's step loop is a dependent chain of
// ~20 instructions; these run per chunk.
struct ChunkGroups {
  int cpg;    // chunks per group
  bool pow2;  // cpg is a power of two
  int shift;  // log2(cpg) where pow2
  __device__ explicit ChunkGroups(int group) : cpg(group / 32), pow2((cpg & (cpg - 1)) == 0), shift(0) {
    while ((1 << shift) < cpg) ++shift;
  }
  __device__ bool starts(int kc) const { return pow2 ? (kc & (cpg - 1)) == 0 : kc % cpg == 0; }
  __device__ int group(int kc) const { return pow2 ? kc >> shift : kc / cpg; }
};

// The per-row terms of one chunk for the dequantization of rows g and g + 8.
struct RowMeta {
  float s[2];          // scales (f32)
  float b[2];          // MLX biases (f32)
  uint32_t sub[2];     // bf16x2 (128 + z, 128 + z): subtracted from the 4-bit magic pairs
  float subf[2];       // 2^23 + z: subtracted from the 8-bit magic floats
  uint32_t s2[2];      // bf16x2 (s, s)
  uint32_t b2[2];      // bf16x2 (b, b)
};

template <QCode C, bool kBias>
__device__ __forceinline__ RowMeta decode_meta(uint32_t m0, uint32_t m1, bool meta_f16) {
  RowMeta r;
  const uint32_t m[2] = {m0, m1};
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if constexpr (C == QCode::kFp8) {
      r.s[h] = __uint_as_float(m[h]);
      r.b[h] = 0.0f;
      r.sub[h] = 0;
      r.subf[h] = 0.0f;
    } else {
      r.s[h] = meta_float(m[h] & 0xFFFFu, meta_f16);
      const uint32_t hi = m[h] >> 16;
      const float z = kBias ? 0.0f : static_cast<float>(hi);
      r.b[h] = kBias ? meta_float(hi, meta_f16) : 0.0f;
      const bf16 zb = to_bf(128.0f + z);  // exact: z < 16 for 4-bit codes
      r.sub[h] = as_u32(__halves2bfloat162(zb, zb));
      r.subf[h] = 8388608.0f + z;
    }
    const bf16 sb = to_bf(r.s[h]), bb = to_bf(r.b[h]);
    r.s2[h] = as_u32(__halves2bfloat162(sb, sb));
    r.b2[h] = as_u32(__halves2bfloat162(bb, bb));
  }
  return r;
}

// Finishes a bf16x2 pair of exact values v (q - z for codes, the FP8 value):
// kFold keeps them exact (the scale is applied to the chunk's sum); otherwise
// (q - z) s, or q s + b for MLX (q kept, z = 0), rounded once to bf16.
template <bool kFold, bool kBias>
__device__ __forceinline__ uint32_t finish_pair(uint32_t v, const RowMeta& m, int h) {
  if constexpr (kFold) return v;
  if constexpr (kBias) return as_u32(__hfma2(as_bf2(v), as_bf2(m.s2[h]), as_bf2(m.b2[h])));
  return as_u32(__hmul2(as_bf2(v), as_bf2(m.s2[h])));
}

// v, opaque to the compiler from here on, so that it stays in a register across a
// kernel's step loop: per-thread values (addresses, shuffle lanes, shifts, the magic
// exponent) were otherwise recomputed from the thread index at every step.
__device__ __forceinline__ uint32_t opaque(uint32_t v) {
  asm volatile("" : "+r"(v));
  return v;
}
template <class T>
__device__ __forceinline__ const T* opaque(const T* p) {
  asm volatile("" : "+l"(p));
  return p;
}

// u4_pair_plus128 (qgemm_layout.h) for shift = 4 j, the mask and the magic exponent
// in one lop3: `magic` (0x43004300, opaque()) comes in a register, since a lop3
// takes one immediate (with both as immediates the compiler emits two).
__device__ __forceinline__ uint32_t u4_pair_plus128_r(uint32_t w, uint32_t shift, uint32_t magic) {
  uint32_t v;
  asm("lop3.b32 %0, %1, 0x000F000F, %2, 0xEA;" : "=r"(v) : "r"(w >> shift), "r"(magic));  // (a & b) | c
  return v;
}

// 4-bit: positions (2j, 2j+1) of a repacked word as the bf16x2 pair (q - z).
__device__ __forceinline__ uint32_t u4_pair(uint32_t w, int j, uint32_t sub) {
  return as_u32(__hsub2(as_bf2(u4_pair_plus128(w, j)), as_bf2(sub)));
}
// u4_pair for shift = 4 j with the magic exponent in a register (u4_pair_plus128_r).
__device__ __forceinline__ uint32_t u4_pair_r(uint32_t w, uint32_t shift, uint32_t sub, uint32_t magic) {
  return as_u32(__hsub2(as_bf2(u4_pair_plus128_r(w, shift, magic)), as_bf2(sub)));
}

// 8-bit: bytes (2j, 2j+1) of a word as the bf16x2 pair (q - z): 2^23 + q built
// from the bits (exact), minus 2^23 + z, packed (exact below 2^8).
__device__ __forceinline__ uint32_t u8_pair(uint32_t w, int j, float subf) {
  const float lo = __uint_as_float(0x4B000000u | ((w >> (16 * j)) & 0xFFu)) - subf;
  const float hi = __uint_as_float(0x4B000000u | ((w >> (16 * j + 8)) & 0xFFu)) - subf;
  return as_u32(__floats2bfloat162_rn(lo, hi));
}

// FP8: bytes (2j, 2j+1) of a word as a bf16x2 pair (exact), times s unless kFold.
template <bool kFold>
__device__ __forceinline__ uint32_t fp8_pair(uint32_t w, int j, float s) {
  const __nv_fp8x2_storage_t v = static_cast<__nv_fp8x2_storage_t>((w >> (16 * j)) & 0xFFFFu);
  const __half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(v, __NV_E4M3));
  float2 f = __half22float2(h);
  if constexpr (!kFold) {
    f.x *= s;
    f.y *= s;
  }
  return as_u32(__floats2bfloat162_rn(f.x, f.y));
}

// A fragment of mma tile i of a chunk for one 16-row tile. rg / rg8: the lane's
// words of rows g and g+8 for this chunk (4-bit: one word each; 8-bit: the word of
// positions 4i..4i+3; FP8: the word of positions 4i..4i+3).
template <QCode C, bool kFold, bool kBias>
__device__ __forceinline__ void a_fragment(uint32_t (&a)[4], uint32_t rg, uint32_t rg8, int i, const RowMeta& m) {
  if constexpr (C == QCode::kU4) {
    a[0] = finish_pair<kFold, kBias>(u4_pair(rg, 2 * i, m.sub[0]), m, 0);
    a[1] = finish_pair<kFold, kBias>(u4_pair(rg8, 2 * i, m.sub[1]), m, 1);
    a[2] = finish_pair<kFold, kBias>(u4_pair(rg, 2 * i + 1, m.sub[0]), m, 0);
    a[3] = finish_pair<kFold, kBias>(u4_pair(rg8, 2 * i + 1, m.sub[1]), m, 1);
  } else if constexpr (C == QCode::kU8) {
    a[0] = finish_pair<kFold, kBias>(u8_pair(rg, 0, m.subf[0]), m, 0);
    a[1] = finish_pair<kFold, kBias>(u8_pair(rg8, 0, m.subf[1]), m, 1);
    a[2] = finish_pair<kFold, kBias>(u8_pair(rg, 1, m.subf[0]), m, 0);
    a[3] = finish_pair<kFold, kBias>(u8_pair(rg8, 1, m.subf[1]), m, 1);
  } else {
    a[0] = fp8_pair<kFold>(rg, 0, m.s[0]);
    a[1] = fp8_pair<kFold>(rg8, 0, m.s[1]);
    a[2] = fp8_pair<kFold>(rg, 1, m.s[0]);
    a[3] = fp8_pair<kFold>(rg8, 1, m.s[1]);
  }
}

__device__ __forceinline__ uint32_t word_of(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// The lane's words of rows g and g + 8 for mma tile i of chunk c, from one tile's
// vectors of a step (qgemm_layout.h: 4-bit, one word per row and chunk; 8-bit, the
// word of positions 4i..4i+3, rows g and g + 8 in words i and 2 + i; FP8, one vector per row).
template <QCode C>
__device__ __forceinline__ void tile_row_words(const uint4 (&wt)[Kind<C>::kWVecs], int c, int i, uint32_t& rg,
                                               uint32_t& rg8) {
  if constexpr (C == QCode::kU4) {
    rg = word_of(wt[0], 2 * c);
    rg8 = word_of(wt[0], 2 * c + 1);
  } else if constexpr (C == QCode::kU8) {
    rg = word_of(wt[0], i);
    rg8 = word_of(wt[0], 2 + i);
  } else {
    rg = word_of(wt[0], i);
    rg8 = word_of(wt[Kind<C>::kWVecs - 1], i);
  }
}

// A fragment of mma tile i of a chunk with the codes as they are stored: 4-bit as
// 128 + q, 8-bit as q, FP8 as its value (all exact in bf16).
template <QCode C>
__device__ __forceinline__ void a_fragment_raw(uint32_t (&a)[4], uint32_t rg, uint32_t rg8, int i, uint32_t magic) {
  if constexpr (C == QCode::kU4) {
    a[0] = u4_pair_plus128_r(rg, 8 * i, magic);
    a[1] = u4_pair_plus128_r(rg8, 8 * i, magic);
    a[2] = u4_pair_plus128_r(rg, 8 * i + 4, magic);
    a[3] = u4_pair_plus128_r(rg8, 8 * i + 4, magic);
  } else if constexpr (C == QCode::kU8) {
    a[0] = u8_pair(rg, 0, 8388608.0f);
    a[1] = u8_pair(rg8, 0, 8388608.0f);
    a[2] = u8_pair(rg, 1, 8388608.0f);
    a[3] = u8_pair(rg8, 1, 8388608.0f);
  } else {
    a[0] = fp8_pair<true>(rg, 0, 0.0f);
    a[1] = fp8_pair<true>(rg8, 0, 0.0f);
    a[2] = fp8_pair<true>(rg, 1, 0.0f);
    a[3] = fp8_pair<true>(rg8, 1, 0.0f);
  }
}

// (s, beta) of one meta word: a fold adds s * Σ(code · x) + beta * Σx (qgemv_stream_kernel, cuda_qgemm.cu).
// kOffset: what the codes carry above q (a_fragment_raw's 4-bit codes 128 + q; 0 where the
// caller folds its offsets itself). The zero point hi (< 2^16) becomes a float through the
// exponent 2^23 (one lop3 and the fadd the offset needs anyway) rather than an I2F, which runs
// on the SM's slower conversion pipe.
template <QCode C, bool kBias, int kOffset = (C == QCode::kU4 ? 128 : 0)>
__device__ __forceinline__ float2 decode_fold_meta(uint32_t m, bool meta_f16) {
  if constexpr (C == QCode::kFp8) {
    return make_float2(__uint_as_float(m), 0.0f);
  } else {
    const float s = meta_float(m & 0xFFFFu, meta_f16);
    const uint32_t hi = m >> 16;
    constexpr float kOff = static_cast<float>(kOffset);
    if constexpr (kBias) return make_float2(s, meta_float(hi, meta_f16) - kOff * s);
    // kOffset + hi, exactly: (2^23 + hi) - (2^23 - kOffset), both exact in f32.
    return make_float2(s, -s * (__uint_as_float(0x4B000000u | hi) - (8388608.0f - kOff)));
  }
}

// The two 16-row tiles a block owns.
template <QEpilogue E>
__device__ __forceinline__ void tile_pair(const QWeight& w, const QGemmArgs& a, int pair, int (&tiles)[2]) {
  if constexpr (E == QEpilogue::kSwiglu) {
    tiles[0] = pair;
    tiles[1] = pair + (w.N / 2) / 16;
  } else if constexpr (E == QEpilogue::kRope) {
    const int htiles = a.head_dim / 32;  // tiles in half a head
    const int h = pair / htiles, j = pair % htiles;
    tiles[0] = h * (a.head_dim / 16) + j;
    tiles[1] = tiles[0] + htiles;
  } else {
    tiles[0] = 2 * pair;
    tiles[1] = 2 * pair + 1;
  }
}

// The epilogue of a block's two tiles x token columns [t0, t0 + cols) (cols <=
// kCols): fin[r * kLd + c * kColStride] is row r (0..15 tile 0, 16..31 tile 1) of
// token t0 + c. Row-major sums (kColStride 1) have an odd kLd > kCols, token-major
// ones (kLd 1) a kColStride of 32 + 4: either way the reads of consecutive rows hit
// distinct banks.
template <QEpilogue E, int kNThreads, int kCols, int kLd = kCols, int kColStride = 1>
__device__ void qgemm_epilogue(const QWeight& w, const QGemmArgs& a, const int (&tiles)[2], int t0, const float* fin,
                               int cols = kCols) {
  const int T = a.T;
  const int N = w.N;
  if constexpr (E == QEpilogue::kPlain) {
    for (int e = threadIdx.x; e < 32 * cols; e += kNThreads) {
      const int r = e % 32, c = e / 32, tok = t0 + c;
      const int n = (r < 16 ? tiles[0] : tiles[1]) * 16 + r % 16;
      if (tok >= T || n >= N) continue;
      const float v = fin[r * kLd + c * kColStride];
      if (a.out_f32) {
        static_cast<float*>(a.out)[static_cast<size_t>(tok) * N + n] = v;
      } else {
        static_cast<bf16*>(a.out)[static_cast<size_t>(tok) * N + n] = to_bf(v);
      }
    }
  } else if constexpr (E == QEpilogue::kSwiglu) {
    const int I = N / 2;
    bf16* out = static_cast<bf16*>(a.out);
    for (int e = threadIdx.x; e < 16 * cols; e += kNThreads) {
      const int r = e % 16, c = e / 16, tok = t0 + c;
      if (tok >= T) continue;
      const int n = tiles[0] * 16 + r;  // gate row n, up row I + n
      const bf16 gb = to_bf(fin[r * kLd + c * kColStride]), ub = to_bf(fin[(16 + r) * kLd + c * kColStride]);
      out[static_cast<size_t>(tok) * N + n] = gb;
      out[static_cast<size_t>(tok) * N + I + n] = ub;
      const float gf = bf(gb);
      // HF rounds f(gate) to bf16 before the product (as silu_mul_kernel).
      const float sg = bf(to_bf(glu_activation(gf, a.activation)));
      static_cast<bf16*>(a.act)[static_cast<size_t>(tok) * I + n] = to_bf(sg * bf(ub));
    }
  } else {
    const int D = a.head_dim, half = D / 2, qk_heads = a.q_heads + a.kv_heads;
    const size_t kv_width = static_cast<size_t>(a.kv_heads) * D;
    bf16* out = static_cast<bf16*>(a.out);
    for (int e = threadIdx.x; e < 16 * cols; e += kNThreads) {
      const int r = e % 16, c = e / 16, tok = t0 + c;
      if (tok >= T) continue;
      const int na = tiles[0] * 16 + r, nb = na + half;
      const int h = na / D, i = na % D;
      bf16 ra = to_bf(fin[r * kLd + c * kColStride]), rb = to_bf(fin[(16 + r) * kLd + c * kColStride]);
      if (a.bias != nullptr) {  // the projection's output with its bias, in bf16 (as rope_kernel)
        ra = to_bf(bf(ra) + bf(static_cast<const bf16*>(a.bias)[na]));
        rb = to_bf(bf(rb) + bf(static_cast<const bf16*>(a.bias)[nb]));
      }
      if (h < qk_heads) {  // q and k heads rotate (as rope_kernel)
        const double angle = static_cast<double>(a.positions[tok]) * static_cast<double>(a.inv_freq[i]);
        double sd, cd;
        sincos(angle, &sd, &cd);
        const float s = static_cast<float>(sd), co = static_cast<float>(cd);
        const float fa = bf(ra), fb = bf(rb);
        ra = to_bf(fa * co - fb * s);
        rb = to_bf(fb * co + fa * s);
      }
      out[static_cast<size_t>(tok) * N + na] = ra;
      out[static_cast<size_t>(tok) * N + nb] = rb;
      const int slot = a.slots[tok];
      if (slot >= 0 && h >= a.q_heads) {
        const bool is_k = h < qk_heads;
        void* cache = is_k ? a.k_cache : a.v_cache;
        const float scale = is_k ? a.k_scale : a.v_scale;
        const size_t dst = static_cast<size_t>(slot) * kv_width + static_cast<size_t>(h - (is_k ? a.q_heads : qk_heads)) * D;
        kv_store(cache, a.kv_fp8, scale, dst + i, ra);
        kv_store(cache, a.kv_fp8, scale, dst + i + half, rb);
      }
    }
  }
}

// The sums of a CTA's tile pairs, fin_all [kNPairs][kPairFloats] in each rank's
// shared memory, over the S ranks of its cluster (K slices): rank r sums pairs r,
// r + S, ... over the ranks in rank order (deterministic) into its own copy. Ends
// with the sums visible CTA-wide and no rank reading another's memory. S == 1: a
// barrier only. fin_all is 16-byte aligned; the sums move as float4 (a quarter of
// the dependent DSMEM round trips of scalar loads).
template <int kNThreads, int kNPairs, int kPairFloats, int kMaxS>
__device__ void cluster_sum_pairs(float* fin_all, int rank, int S) {
  static_assert(kPairFloats % 4 == 0, "pairs of whole float4s");
  if (S == 1) {
    __syncthreads();
    return;
  }
  cluster_arrive_release();
  cluster_wait_acquire();  // every rank's sums are in its shared memory
  for (int p = rank; p < kNPairs; p += S) {
    float* fin = fin_all + p * kPairFloats;
    uint32_t remote[kMaxS];  // pair p's sums in rank r (shared::cluster addresses)
#pragma unroll
    for (int r = 0; r < kMaxS; ++r) remote[r] = r < S ? cluster_smem_addr(fin, r) : 0u;
    for (int e = threadIdx.x; e < kPairFloats / 4; e += kNThreads)
      reinterpret_cast<float4*>(fin)[e] = sum_ranks_f32x4(remote, S, 16u * e);  // only this rank reads pair p
  }
  cluster_arrive_release();
  cluster_wait_acquire();  // no rank reads another's memory after this; the sums are visible CTA-wide
}

// The token-major sums of a CTA's tile pairs, fin_all [kNPairs][tokens][kTokFloats]
// (a token's 32 rows, then padding; kTokFloats a multiple of 4) in each rank's shared
// memory, summed over the S ranks of its cluster (K slices) for tokens [c0, c1) of
// every pair: each rank takes its own token range, so the DSMEM loads are spread
// evenly over the ranks whatever the pair count, and only the real tokens move
// (cluster_sum_pairs moves whole pairs, padding tokens included). The ranks are
// summed in rank order (deterministic; the same order as cluster_sum_pairs) into the
// own copy. Ends as cluster_sum_pairs: the sums visible CTA-wide, no rank reading
// another's memory. S == 1: a barrier only.
template <int kNThreads, int kNPairs, int kPairFloats, int kTokFloats, int kMaxS>
__device__ void cluster_sum_tokens(float* fin_all, int rank, int S, int c0, int c1) {
  static_assert(kTokFloats % 4 == 0 && kPairFloats % 4 == 0, "tokens of whole float4s");
  if (S == 1) {
    __syncthreads();
    return;
  }
  cluster_arrive_release();
  cluster_wait_acquire();  // every rank's sums are in its shared memory
  constexpr int kTokVecs = kTokFloats / 4;
  const int vecs = (c1 - c0) * kTokVecs;  // float4s of the range in one pair
  uint32_t remote[kMaxS];  // fin_all in rank r (shared::cluster addresses)
#pragma unroll
  for (int r = 0; r < kMaxS; ++r) remote[r] = r < S ? cluster_smem_addr(fin_all, r) : 0u;
  for (int e = threadIdx.x; e < kNPairs * vecs; e += kNThreads) {
    const int p = e / vecs, v4 = c0 * kTokVecs + e % vecs;
    const int idx = p * (kPairFloats / 4) + v4;
    reinterpret_cast<float4*>(fin_all)[idx] = sum_ranks_f32x4(remote, S, 16u * idx);  // only this rank reads its range
  }
  cluster_arrive_release();
  cluster_wait_acquire();  // no rank reads another's memory after this; the sums are visible CTA-wide
}

// f(code, bias) with std::integral_constant arguments for w's code kind and bias
// form (MLX biases; FP8 has none): the kernels' template arguments.
template <class F>
void with_code(const QWeight& w, F&& f) {
  using U4 = std::integral_constant<QCode, QCode::kU4>;
  using U8 = std::integral_constant<QCode, QCode::kU8>;
  using F8 = std::integral_constant<QCode, QCode::kFp8>;
  switch (w.code) {
    case QCode::kU4:
      if (w.has_bias) {
        f(U4{}, std::true_type{});
      } else {
        f(U4{}, std::false_type{});
      }
      break;
    case QCode::kU8:
      if (w.has_bias) {
        f(U8{}, std::true_type{});
      } else {
        f(U8{}, std::false_type{});
      }
      break;
    case QCode::kFp8: f(F8{}, std::false_type{}); break;
  }
}

// f(epilogue) with a std::integral_constant argument.
template <class F>
void with_epilogue(QEpilogue e, F&& f) {
  switch (e) {
    case QEpilogue::kPlain: f(std::integral_constant<QEpilogue, QEpilogue::kPlain>{}); break;
    case QEpilogue::kSwiglu: f(std::integral_constant<QEpilogue, QEpilogue::kSwiglu>{}); break;
    case QEpilogue::kRope: f(std::integral_constant<QEpilogue, QEpilogue::kRope>{}); break;
  }
}

// Streamed once: not kept in L1 (ld.global.nc.L1::no_allocate; the weights are
// never written while kernels run).
__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

}  // namespace

}  // namespace kr::cuda
