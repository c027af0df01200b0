// Batch-1 GEMV kernels with fused prologue/epilogue (see cuda_gemv1.h).
//
// Split-K inside the block: a block of 128 threads owns R output rows and its
// threads divide K between them, each issuing R * V 16-byte weight loads before
// using any. Many short blocks (≥ 768 for the 3B shapes) keep every SM busy with
// bytes in flight and leave a short tail. The first weights are requested before
// waiting on the previous kernel (programmatic dependent launch), so the ramp-up
// of one GEMV overlaps the drain of the one before.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/cuda_gemv1.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {

namespace {

using bf16 = __nv_bfloat16;
constexpr int kThreads = 128;
constexpr int kRowsBf16 = 4;  // rows per block (bf16 weights)
constexpr int kRowsFp8 = 8;   // rows per block (FP8 weights)
// A RoPE block holds R / 2 pairs of one head: the launcher's (D / 2) % kRowsBf16 covers both.
static_assert(kRowsFp8 / 2 <= kRowsBf16 && kRowsBf16 % (kRowsFp8 / 2) == 0);
constexpr int kMaxQkPairsPerThread = 2;  // kRopeQkNorm: head_dim / 2 <= kThreads * this

// kRopeQkNorm: arrivals per q/k head of the blocks that own its rows. The block
// that brings a head's count to head_dim / R (rows per block) finishes the head and puts the
// count back to 0, so every launch (and graph replay) starts from zeros; launches
// are stream-ordered and touch the counts only after pdl_wait.
constexpr int kMaxHeadCounters = 1024;
__device__ int g_head_arrivals[kMaxHeadCounters] = {0};

__device__ __forceinline__ float bf(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ bf16 to_bf(float v) { return __float2bfloat16(v); }

// Sum of `v` over the block's threads, returned to every thread. The four warp
// sums are added as cuda_kernels.cu's block_sum adds them (a butterfly: (w0 + w2) +
// (w1 + w3)), so that a head's sum of squares in the kRopeQkNorm epilogue equals
// rope_kernel's bit for bit (lanes without a pair add exact zeros).
__device__ float block_sum(float v) {
  static_assert(kThreads == 128, "the butterfly below adds four warp sums");
  __shared__ float warp_part[kThreads / 32];
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) warp_part[threadIdx.x >> 5] = v;
  __syncthreads();
  return (warp_part[0] + warp_part[2]) + (warp_part[1] + warp_part[3]);
}

// Row layout of a block. Plain: rows n0 .. n0 + R - 1. Paired (SwiGLU,
// RoPE): R/2 rows from base_a and the R/2 rows at base_b that pair with them
// (gate i and up I + i; RoPE dims i and i + D/2 of one head).
template <int R, Gemv1Epilogue E>
struct RowMap {
  static constexpr bool kRopeRows = E == Gemv1Epilogue::kRope || E == Gemv1Epilogue::kRopeQkNorm;
  static constexpr bool kPaired = E == Gemv1Epilogue::kSwiglu || kRopeRows;
  int base_a = 0, base_b = 0, count = 0;  // count: valid rows (plain) or valid pairs (paired)
  __device__ RowMap(const Gemv1Args& a) {
    if constexpr (E == Gemv1Epilogue::kSwiglu) {
      const int I = a.N / 2;
      base_a = blockIdx.x * (R / 2);
      base_b = I + base_a;
      count = min(R / 2, I - base_a);
    } else if constexpr (kRopeRows) {
      const int half = a.head_dim / 2;
      const int p0 = blockIdx.x * (R / 2);  // pair index; half % (R / 2) == 0, so one head per block
      base_a = (p0 / half) * a.head_dim + p0 % half;
      base_b = base_a + half;
      count = R / 2;
    } else {
      base_a = blockIdx.x * R;
      count = min(R, a.N - base_a);
    }
  }
  __device__ bool valid(int r) const { return kPaired ? (r % (R / 2)) < count : r < count; }
  __device__ int row(int r) const { return kPaired ? (r < R / 2 ? base_a + r : base_b + r - R / 2) : base_a + r; }
};

// The weight formats (Gemv1Weight): rows per block, columns per 16-byte weight
// vector, and a pair of weights (k, k + 1; k even) of a vector as floats.
struct Bf16W {
  static constexpr int kRows = kRowsBf16;
  static constexpr int kCols = 8;
  static constexpr bool kFp8 = false, kGrouped = false, kTc = false;
  static constexpr int kMaxV = 4;  // weight vectors per thread and pass, at most
  __device__ static float2 pair(const uint4& v, int k) {
    const uint32_t w = reinterpret_cast<const uint32_t*>(&v)[k / 2];
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w));
  }
};
// bf16 with 8 rows a block: the GEMV with per-head q/k norms (kRopeQkNorm) when
// K <= 3072, so that Gemma 3 4B's [4096 x 2560] runs in one wave (512 blocks at 4
// per SM, against 1,024 at 6) with half the per-head arrivals (H200: 374-377 ->
// 380-383 tok/s batch-1 decode; docs/performance.md).
struct Bf16W8 : Bf16W {
  static constexpr int kRows = 8;
};
// FP8 e4m3: 16 weights per vector, so twice the rows of bf16 keep the same bytes in
// flight per thread. A pair is one cvt.rn.f16x2.e4m3x2 (exact) and two f16 -> f32
// conversions. kGrouped: more than one scale group per row, each vector's partial
// sum folded with its group's scale (a thread's 16 columns lie in one group);
// otherwise the row's one scale multiplies its sum at the end.
template <bool G>
struct Fp8W {
  static constexpr int kRows = kRowsFp8;
  static constexpr int kCols = 16;
  static constexpr bool kFp8 = true, kGrouped = G, kTc = false;
  static constexpr int kMaxV = 2;
  __device__ static float2 pair(const uint4& v, int k) {
    const uint32_t w = reinterpret_cast<const uint32_t*>(&v)[k / 4];
    const __nv_fp8x2_storage_t p = static_cast<__nv_fp8x2_storage_t>((w >> (8 * (k % 4))) & 0xFFFFu);
    return __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(p, __NV_E4M3)));
  }
};

// FP8 on the tensor cores (Gemv1Args::fp8_tc): the same rows per block, but each
// thread's products go through mma.sync m16n8k16 (f16 operands, f32 accumulation)
// instead of f32 FMAs on weights widened pair by pair. A GEMV has one column, so the
// mma is used on its diagonal: a quad (4 lanes) feeds rows g and g + 8 of A with two
// weight rows of its block at its own columns, and column g of B with x at the same
// columns; D[g][g] and D[g + 8][g] are then the quad's partial dot products of those
// two rows (the other 14 outputs a lane gets mix quads and are dropped). Per 16
// weights: 8 e4m3x2 -> f16x2 conversions (exact) and 2 mma, against 8 + 16
// conversions and 16 FMAs. x is scaled into f16 range per quad and pass by a power
// of two (exact for every x within 2^-29 of the quad's largest), undone on the sum.
// The products are exact; the sum is in f32 in another order than the FMA form's.
// Grouped scales need a quad's 64 columns inside one group (launch_e checks).
// One weight vector per thread and pass (V = 1): the converted operands need
// registers, and with two vectors (138-168 registers, 3 blocks an SM) Llama-3.1-8B
// FP8 batch-1 decode ran at 347 tok/s against 352 for the FMA form; with one (82-96
// registers, 5 blocks) at 401-404 (H200; docs/performance.md).
template <bool G>
struct Fp8Tc : Fp8W<G> {
  static constexpr bool kTc = true;
  static constexpr int kMaxV = 1;
};

// D += A · B on one m16n8k16 f16 mma with f32 accumulators (PTX ISA, "Matrix
// fragments for mma.m16n8k16 with floating point type": a0 (row g, k 2j..2j+1),
// a1 (row g + 8, same k), a2 (row g, k 2j+8..2j+9), a3 (row g + 8, those k);
// b0 (k 2j..2j+1, column g), b1 (k 2j+8..2j+9, column g); d0, d1 (row g, columns
// 2j, 2j+1), d2, d3 (row g + 8, those columns); g = lane / 4, j = lane % 4).
__device__ __forceinline__ void mma_f16_k16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                            uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Two e4m3 (the low or high half of w) as an f16x2 word (exact).
// (asm volatile, as the mma: kept where the source puts it, next to the mma that
// uses it, rather than hoisted with every other conversion of the pass.)
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t w, bool high) {
  uint32_t out;
  if (high) {
    asm volatile("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.rn.f16x2.e4m3x2 %0, hi; }" : "=r"(out) : "r"(w));
  } else {
    asm volatile("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.rn.f16x2.e4m3x2 %0, lo; }" : "=r"(out) : "r"(w));
  }
  return out;
}

// Two bf16 (one word of a Vec8) times 2^k (an exact f32 product) as an f16x2 word.
__device__ __forceinline__ uint32_t bf16x2_to_f16x2(uint32_t w, float scale) {
  const float lo = __uint_as_float(w << 16) * scale, hi = __uint_as_float(w & 0xFFFF0000u) * scale;
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Blocks per SM each variant is compiled for (__launch_bounds__): the register
// budget (65536 / (blocks * 128), rounded down to 8) that its R * V weight vectors
// and its epilogue fit without spilling (ptxas -v: none), pinned so that an
// unrelated change cannot move ptxas to a costlier allocation unnoticed: when
// Gemv1Args grew by two ints, the Llama qkv GEMV (kRope, V = 3) went from 80 to 96
// registers, 6 -> 5 blocks per SM. V = 3 without the RoPE epilogues fits 72
// registers (7 blocks); the norm prologue keeps the row too (4 blocks, 128).
// FP8 (8 rows): V = 1 is bf16's V = 2 in loads, V = 2 its V = 4; with group scales
// (16 more registers at V = 2) the RoPE epilogue spilled at 96 (4 blocks, 128).
// FP8 on the tensor cores (V = 1): 82-96 registers (5 blocks), 114-136 with the
// norm prologue (3 blocks).
template <class F>
constexpr int min_blocks_per_sm(int V, bool norm, Gemv1Epilogue E) {
  const bool rope = E == Gemv1Epilogue::kRope || E == Gemv1Epilogue::kRopeQkNorm;
  const int loads = F::kRows * V;  // 16-byte weight vectors in flight per thread
  // The tensor-core form holds converted f16 operands next to the weights.
  if (F::kTc) return norm ? 3 : 5;
  if (norm) return 4;
  if (loads > 16) return 4;        // Bf16W8 at V = 3: 128 registers
  if (loads <= 8) return 8;
  if (loads <= 12) return rope ? 6 : 7;
  return F::kGrouped && rope ? 4 : 5;
}

template <class F, int V, bool kNorm, Gemv1Epilogue E>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<F>(V, kNorm, E)) gemv1_kernel(Gemv1Args a) {
  constexpr int R = F::kRows;
  constexpr int XV = F::kCols / 8;  // x vectors (8 bf16) per weight vector
  const RowMap<R, E> map(a);
  const int K = a.K, kvecs = K / 8, wvecs = (K + F::kCols - 1) / F::kCols;
  const size_t ld = F::kFp8 ? static_cast<size_t>(a.w_ld / 16) : static_cast<size_t>(kvecs);  // uint4 per row
  const uint4* xv = static_cast<const uint4*>(a.x);
  const uint4* wrow[R];
#pragma unroll
  for (int r = 0; r < R; ++r)
    wrow[r] = static_cast<const uint4*>(a.w) + static_cast<size_t>(map.valid(r) ? map.row(r) : a.N - 1) * ld;
  // FP8: the meta index of (row r, group 0); group g adds 16 g. The rows of a block
  // (of each half of a paired one) are consecutive inside one 16-row tile (the
  // launcher checks), so two indices give them all; rows past N stay inside Np.
  constexpr int kRun = RowMap<R, E>::kPaired ? R / 2 : R;
  auto meta_base = [&](int n) { return (n / 16) * a.w_groups * 16 + n % 16; };
  const int meta_a = F::kFp8 ? meta_base(map.base_a) : 0, meta_b = F::kFp8 ? meta_base(map.base_b) : 0;
  auto meta_of = [&](int r) { return r < kRun ? meta_a + r : meta_b + r - kRun; };
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  // FP8 with one scale per row: thread r < R holds row r's, applied to the row's sum.
  [[maybe_unused]] float my_row_scale = 1.0f;
  for (int base = 0; base < wvecs; base += kThreads * V) {
    uint4 wv[R][V];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int u = 0; u < V; ++u) {
        const int v = base + u * kThreads + threadIdx.x;
        wv[r][u] = v < wvecs ? __ldcs(wrow[r] + v) : make_uint4(0, 0, 0, 0);  // streamed once
      }
    if (base == 0) {  // weights are in flight before waiting for the kernel that writes x
      if constexpr (F::kFp8 && !F::kGrouped) {
        if (threadIdx.x < R) my_row_scale = __ldg(a.w_scale + meta_of(threadIdx.x));
      }
      pdl_launch_dependents();
      pdl_wait();
    }
    // This pass's x, read through L2 (__ldcg: the previous kernel wrote it): the XV
    // vectors of weight vector v are x vectors XV v .. XV v + XV - 1.
    Vec8 xr[V][XV];
#pragma unroll
    for (int u = 0; u < V; ++u)
#pragma unroll
      for (int h = 0; h < XV; ++h) {
        const int v = (base + u * kThreads + threadIdx.x) * XV + h;
        xr[u][h].u = v < kvecs ? __ldcg(xv + v) : make_uint4(0, 0, 0, 0);
      }
    // FP8 group scales of this pass's vectors (L2 hits mostly; in flight with the x reads).
    [[maybe_unused]] float gscale[F::kGrouped ? R : 1][V];
    if constexpr (F::kGrouped) {
#pragma unroll
      for (int u = 0; u < V; ++u) {
        const int v = min(base + u * kThreads + static_cast<int>(threadIdx.x), wvecs - 1);
        const int g16 = (v * F::kCols) / a.w_group * 16;
#pragma unroll
        for (int r = 0; r < R; ++r) gscale[r][u] = __ldg(a.w_scale + meta_of(r) + g16);
      }
    }
    if constexpr (kNorm) {
      // The launcher guarantees one pass covers the row, so the whole row is in
      // registers: x' rounded exactly as rms_norm_kernel rounds it (norm_apply).
      float ss = 0.0f;
#pragma unroll
      for (int u = 0; u < V; ++u)
#pragma unroll
        for (int h = 0; h < XV; ++h)
#pragma unroll
          for (int e = 0; e < 8; ++e) ss += bf(xr[u][h].h[e]) * bf(xr[u][h].h[e]);
      const float inv = rsqrtf(block_sum(ss) / static_cast<float>(K) + a.eps);
#pragma unroll
      for (int u = 0; u < V; ++u)
#pragma unroll
        for (int h = 0; h < XV; ++h) {
          const int v = (u * kThreads + threadIdx.x) * XV + h;
          Vec8 g;  // the norm weight: the same for every block, so an L1 hit after the first
          g.u = v < kvecs ? __ldg(static_cast<const uint4*>(a.norm_w) + v) : make_uint4(0, 0, 0, 0);
#pragma unroll
          for (int e = 0; e < 8; ++e) xr[u][h].h[e] = norm_apply(bf(xr[u][h].h[e]), inv, g.h[e], a.norm_kind);
          if (blockIdx.x == 0 && v < kvecs) static_cast<uint4*>(a.normed)[v] = xr[u][h].u;
        }
    }
    if constexpr (F::kTc) {
      static_assert(R % 2 == 0 && F::kCols == 16 && XV == 2);
      const int lane = threadIdx.x & 31, g = lane >> 2;
      // This lane's d[g & 1] is D[g][g] and d[2 + (g & 1)] D[g + 8][g] (read by
      // selects: a register array indexed at run time would live in local memory).
      const bool holder = (lane & 3) == (g >> 1), odd = (g & 1) != 0;
      // The quad's largest |x| of the pass (bf16 bits of non-negative values order
      // as unsigned integers), then 2^k putting it in [2^14, 2^15).
      uint32_t m2 = 0;
#pragma unroll
      for (int u = 0; u < V; ++u)
#pragma unroll
        for (int h = 0; h < XV; ++h) {
          m2 = __vmaxu2(m2, xr[u][h].u.x & 0x7FFF7FFFu);
          m2 = __vmaxu2(m2, xr[u][h].u.y & 0x7FFF7FFFu);
          m2 = __vmaxu2(m2, xr[u][h].u.z & 0x7FFF7FFFu);
          m2 = __vmaxu2(m2, xr[u][h].u.w & 0x7FFF7FFFu);
        }
      uint32_t mx = max(m2 & 0xFFFFu, m2 >> 16);
      mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const int k = min(126, 141 - static_cast<int>(mx >> 7));  // bf16 exponent field: max * 2^k in [2^14, 2^15)
      const float x_scale = __int_as_float((k + 127) << 23), x_unscale = __int_as_float((127 - k) << 23);
#pragma unroll
      for (int u = 0; u < V; ++u) {
        // x at the thread's 16 columns: word q of the weight vector holds columns
        // 4q .. 4q + 3; b0 = x(4q, 4q + 1), b1 = x(4q + 2, 4q + 3).
        uint32_t b[4][2];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const uint32_t* xw = reinterpret_cast<const uint32_t*>(&xr[u][q >> 1].u);
          b[q][0] = bf16x2_to_f16x2(xw[2 * (q & 1)], x_scale);
          b[q][1] = bf16x2_to_f16x2(xw[2 * (q & 1) + 1], x_scale);
        }
        // Rows 2p and 2p + 1 as A's rows g and g + 8; the quad's sums folded into
        // acc right away (times the group's scale when grouped: one group a quad).
#pragma unroll
        for (int p = 0; p < R / 2; ++p) {
          const uint32_t* wa = reinterpret_cast<const uint32_t*>(&wv[2 * p][u]);
          const uint32_t* wb = reinterpret_cast<const uint32_t*>(&wv[2 * p + 1][u]);
          float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
          for (int q = 0; q < 4; ++q)
            mma_f16_k16(d, e4m3x2_to_f16x2(wa[q], false), e4m3x2_to_f16x2(wb[q], false),
                        e4m3x2_to_f16x2(wa[q], true), e4m3x2_to_f16x2(wb[q], true), b[q][0], b[q][1]);
          float sa = x_unscale, sb = x_unscale;
          if constexpr (F::kGrouped) {
            sa *= gscale[2 * p][u];
            sb *= gscale[2 * p + 1][u];
          }
          acc[2 * p] = fmaf(sa, holder ? (odd ? d[1] : d[0]) : 0.0f, acc[2 * p]);
          acc[2 * p + 1] = fmaf(sb, holder ? (odd ? d[3] : d[2]) : 0.0f, acc[2 * p + 1]);
        }
      }
    } else {
#pragma unroll
      for (int u = 0; u < V; ++u) {
        float part[R];  // kGrouped: this vector's sums, before its group scale
#pragma unroll
        for (int r = 0; r < R; ++r) part[r] = 0.0f;
#pragma unroll
        for (int h = 0; h < XV; ++h)
#pragma unroll
          for (int e = 0; e < 8; e += 2) {
            const float2 xf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&xr[u][h].h[e]));
#pragma unroll
            for (int r = 0; r < R; ++r) {
              const float2 wf = F::pair(wv[r][u], 8 * h + e);
              float& dst = F::kGrouped ? part[r] : acc[r];
              dst = fmaf(wf.x, xf.x, dst);
              dst = fmaf(wf.y, xf.y, dst);
            }
          }
        if constexpr (F::kGrouped) {
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r] = fmaf(gscale[r][u], part[r], acc[r]);
        }
      }
    }  // F::kTc
  }
  __shared__ float part[kThreads / 32][R];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float s = warp_sum(acc[r]);
    if (lane == 0) part[warp][r] = s;
  }
  [[maybe_unused]] __shared__ float row_scale[R];
  if constexpr (F::kFp8 && !F::kGrouped) {
    if (threadIdx.x < R) row_scale[threadIdx.x] = my_row_scale;
  }
  __syncthreads();
  auto total = [&](int r) {
    const float sum = part[0][r] + part[1][r] + part[2][r] + part[3][r];
    if constexpr (F::kFp8 && !F::kGrouped) {
      return sum * row_scale[r];
    } else {
      return sum;
    }
  };
  bf16* out = static_cast<bf16*>(a.out);
  if constexpr (E == Gemv1Epilogue::kPlain) {
    const int r = threadIdx.x;
    if (r >= R || !map.valid(r)) return;
    const int n = map.row(r);
    if (a.out_f32) {
      static_cast<float*>(a.out)[n] = total(r);
      return;
    }
    out[n] = to_bf(total(r));
  } else if constexpr (E == Gemv1Epilogue::kRopeQkNorm) {
    const int D = a.head_dim, half = D / 2;
    const int h = map.base_a / D;  // one head per block (the launcher checks half % (R / 2) == 0)
    const int qk_heads = a.q_heads + a.kv_heads;
    const bf16* bias = static_cast<const bf16*>(a.bias);
    const int slot = a.slots[0];
    const size_t kv_width = static_cast<size_t>(a.kv_heads) * D;
    const int r = threadIdx.x;
    if (r < R / 2) {
      // The projection (+ bias) in bf16, rounded as the unfused matmul and rope_kernel
      // leave it: the matmul's bf16, then the bias added and rounded again.
      const int na = map.row(r), nb = map.row(r + R / 2);
      bf16 ga = to_bf(total(r)), gb = to_bf(total(r + R / 2));
      if (bias != nullptr) {
        ga = add_bias(ga, bias[na]);
        gb = add_bias(gb, bias[nb]);
      }
      out[na] = ga;
      out[nb] = gb;
      if (h >= qk_heads && slot >= 0) {  // v: stored as projected
        const size_t dst = slot * kv_width + static_cast<size_t>(h - qk_heads) * D;
        kv_store(a.v_cache, a.kv_fp8, a.v_scale, dst + na % D, ga);
        kv_store(a.v_cache, a.kv_fp8, a.v_scale, dst + na % D + half, gb);
      }
    }
    if (h >= qk_heads) return;  // uniform in the block
    // Release: the barrier and thread 0's fence order this block's stores before its
    // arrival (cooperative groups' grid sync relies on the same: no fence per writer); acquire: the last arriver fences after the atomic that saw every other
    // block's arrival and reads the head through L2 (__ldcg), as the attention's split merge.
    __shared__ int is_last;
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      const int arrived = atomicAdd(&g_head_arrivals[h], 1);
      is_last = arrived == D / R - 1;
      if (is_last) {
        atomicExch(&g_head_arrivals[h], 0);
        __threadfence();
      }
    }
    __syncthreads();
    if (!is_last) return;
    // The last block of the head: its RMS norm, then the rotation, as rope_kernel.
    const bf16* w = static_cast<const bf16*>(h < a.q_heads ? a.q_norm_w : a.k_norm_w);
    bf16* head = out + static_cast<size_t>(h) * D;
    const unsigned short* head_bits = reinterpret_cast<const unsigned short*>(head);
    float xa[kMaxQkPairsPerThread], xb[kMaxQkPairsPerThread];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxQkPairsPerThread; ++k) {
      const int j = threadIdx.x + k * kThreads;
      xa[k] = xb[k] = 0.0f;
      if (j < half) {
        xa[k] = bf(__ushort_as_bfloat16(__ldcg(head_bits + j)));
        xb[k] = bf(__ushort_as_bfloat16(__ldcg(head_bits + j + half)));
        ss += pair_square_sum(xa[k], xb[k]);
      }
    }
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(D) + a.qk_eps);
    const int pos = a.positions[0];
#pragma unroll
    for (int k = 0; k < kMaxQkPairsPerThread; ++k) {
      const int j = threadIdx.x + k * kThreads;
      if (j >= half) continue;
      const float na = bf(norm_apply(xa[k], inv, w[j], a.qk_kind));
      const float nb = bf(norm_apply(xb[k], inv, w[j + half], a.qk_kind));
      float cs, sn;
      rope_cos_sin(pos, a.inv_freq[j], &cs, &sn);
      bf16 ra, rb;
      rope_rotate(na, nb, cs, sn, &ra, &rb);
      head[j] = ra;
      head[j + half] = rb;
      if (slot >= 0 && h >= a.q_heads) {
        const size_t dst = slot * kv_width + static_cast<size_t>(h - a.q_heads) * D;
        kv_store(a.k_cache, a.kv_fp8, a.k_scale, dst + j, ra);
        kv_store(a.k_cache, a.kv_fp8, a.k_scale, dst + j + half, rb);
      }
    }
  } else {
    const int r = threadIdx.x;
    if (r >= R / 2 || !map.valid(r)) return;
    const int na = map.row(r), nb = map.row(r + R / 2);
    bf16 ga = to_bf(total(r)), gb = to_bf(total(r + R / 2));
    if constexpr (E == Gemv1Epilogue::kRope) {
      if (a.bias != nullptr) {  // q/k/v biases (Qwen2), on the rounded projection as rope_kernel adds them
        ga = add_bias(ga, static_cast<const bf16*>(a.bias)[na]);
        gb = add_bias(gb, static_cast<const bf16*>(a.bias)[nb]);
      }
    }
    if constexpr (E == Gemv1Epilogue::kSwiglu) {
      out[na] = ga;
      out[nb] = gb;
      // HF rounds f(gate) to bf16 before the product (as silu_mul_kernel).
      const float sg = bf(to_bf(glu_activation(bf(ga), a.activation)));
      static_cast<bf16*>(a.act)[map.base_a + r] = to_bf(sg * bf(gb));
    } else {
      const int D = a.head_dim, half = D / 2;
      const int h = na / D, i = na % D;
      const int qk_heads = a.q_heads + a.kv_heads;
      bf16 ra = ga, rb = gb;
      if (h < qk_heads) {  // q and k heads rotate (as rope_kernel)
        float c, s;
        rope_cos_sin(a.positions[0], a.inv_freq[i], &c, &s);
        rope_rotate(bf(ga), bf(gb), c, s, &ra, &rb);
      }
      out[na] = ra;
      out[nb] = rb;
      const int slot = a.slots[0];
      if (slot >= 0 && h >= a.q_heads) {
        const size_t kv_width = static_cast<size_t>(a.kv_heads) * D;
        const bool is_k = h < qk_heads;
        void* cache = is_k ? a.k_cache : a.v_cache;
        const float scale = is_k ? a.k_scale : a.v_scale;
        const size_t dst = slot * kv_width + static_cast<size_t>(h - (is_k ? a.q_heads : qk_heads)) * D;
        kv_store(cache, a.kv_fp8, scale, dst + i, ra);
        kv_store(cache, a.kv_fp8, scale, dst + i + half, rb);
      }
    }
  }
}

// Weight vectors (16 bytes) per thread and row in one pass over K, V in
// vmin..vmax: the fewest passes over the row (each pass is one round trip to
// memory), then the fewest vector slots (registers; a slot past the row's end
// loads nothing). bf16 (V in 2..4, 8 columns a vector): one pass for every K <=
// 4096: V = 2 for K <= 2048, 3 for K <= 3072 (Gemma 3's 2560 included, which V = 4
// ran with 38% of its slots empty and a fifth fewer blocks per SM), 4 up to 4096.
// FP8 (V in 1..2, 16 columns a vector, twice the rows): V = 1 for K <= 2048, else 2;
// its tensor-core form V = 1 always (Fp8Tc).
template <class F>
int vectors_per_thread(int K) {
  constexpr int vmin = F::kFp8 ? 1 : 2, vmax = F::kMaxV;
  const int vecs = (K + F::kCols - 1) / F::kCols;
  int best = vmax;
  for (int V = vmax - 1; V >= vmin; --V) {
    const int passes = (vecs + kThreads * V - 1) / (kThreads * V);
    const int best_passes = (vecs + kThreads * best - 1) / (kThreads * best);
    if (passes <= best_passes) best = V;
  }
  return best;
}

template <class F, bool kNorm, Gemv1Epilogue E>
void launch_v(const Gemv1Args& a, bool pdl, cudaStream_t stream) {
  constexpr int R = F::kRows;
  unsigned blocks = static_cast<unsigned>((a.N + R - 1) / R);
  if (E == Gemv1Epilogue::kSwiglu) blocks = static_cast<unsigned>((a.N / 2 + R / 2 - 1) / (R / 2));
  if (E == Gemv1Epilogue::kRope || E == Gemv1Epilogue::kRopeQkNorm) blocks = static_cast<unsigned>(a.N / R);
  const int V = vectors_per_thread<F>(a.K);
  if constexpr (F::kFp8) {
    if (V == 1) {  // always, when F::kMaxV == 1 (no V = 2 instance is compiled for it)
      launch(pdl, gemv1_kernel<F, 1, kNorm, E>, dim3(blocks), dim3(kThreads), 0, stream, a);
    } else if constexpr (F::kMaxV >= 2) {
      launch(pdl, gemv1_kernel<F, 2, kNorm, E>, dim3(blocks), dim3(kThreads), 0, stream, a);
    }
  } else {
    switch (V) {
      case 2: launch(pdl, gemv1_kernel<F, 2, kNorm, E>, dim3(blocks), dim3(kThreads), 0, stream, a); break;
      case 3: launch(pdl, gemv1_kernel<F, 3, kNorm, E>, dim3(blocks), dim3(kThreads), 0, stream, a); break;
      default: launch(pdl, gemv1_kernel<F, 4, kNorm, E>, dim3(blocks), dim3(kThreads), 0, stream, a); break;
    }
  }
}

template <class F, Gemv1Epilogue E>
void launch_f(const Gemv1Args& a, bool pdl, cudaStream_t stream) {
  if (a.norm_w == nullptr) {
    launch_v<F, false, E>(a, pdl, stream);
  } else {
    launch_v<F, true, E>(a, pdl, stream);
  }
}

template <Gemv1Epilogue E>
void launch_e(const Gemv1Args& a, bool pdl, cudaStream_t stream) {
  if (a.weight == Gemv1Weight::kBf16) {
    if constexpr (E == Gemv1Epilogue::kRopeQkNorm) {
      const int V = vectors_per_thread<Bf16W>(a.K);
      // (launch_gemv1 checks (D / 2) % kRowsBf16 == 0, which covers Bf16W8's R / 2 pairs.)
      static_assert(kRowsBf16 % (Bf16W8::kRows / 2) == 0);
      if (a.norm_w == nullptr && V <= 3) {
        const dim3 blocks(static_cast<unsigned>(a.N / Bf16W8::kRows));
        if (V == 2) launch(pdl, gemv1_kernel<Bf16W8, 2, false, E>, blocks, dim3(kThreads), 0, stream, a);
        else launch(pdl, gemv1_kernel<Bf16W8, 3, false, E>, blocks, dim3(kThreads), 0, stream, a);
        return;
      }
    }
    launch_f<Bf16W, E>(a, pdl, stream);
  } else if constexpr (E != Gemv1Epilogue::kRopeQkNorm) {  // FP8: no caller runs its q/k norms here
    // The tensor-core form needs each quad's 64 columns (4 vectors) inside one
    // group, and the norm prologue's row in one pass (K <= 2048 at one vector).
    const bool tc = a.fp8_tc && (a.w_groups == 1 || a.w_group % 64 == 0) &&
                    (a.norm_w == nullptr || a.K <= Fp8Tc<false>::kCols * kThreads);
    if (a.w_groups == 1) {
      if (tc) launch_f<Fp8Tc<false>, E>(a, pdl, stream);
      else launch_f<Fp8W<false>, E>(a, pdl, stream);
    } else {
      if (tc) launch_f<Fp8Tc<true>, E>(a, pdl, stream);
      else launch_f<Fp8W<true>, E>(a, pdl, stream);
    }
  }
}

// Whether the FP8 weight's strides and groups are what the kernel reads: rows of
// w_ld bytes holding K (16-byte vectors), and each vector inside one group.
bool fp8_weight_fits(const Gemv1Args& a) {
  return a.w != nullptr && a.w_scale != nullptr && a.w_ld % 16 == 0 && a.w_ld >= (a.K + 15) / 16 * 16 &&
         a.w_group > 0 && a.w_group % 16 == 0 && a.w_groups >= 1 && a.w_groups * a.w_group >= a.K;
}

}  // namespace

bool launch_gemv1(const Gemv1Args& a, Gemv1Epilogue epi, bool pdl, cudaStream_t stream) {
  if (a.K <= 0 || a.N <= 0 || a.K % 8 != 0) return false;
  const bool fp8 = a.weight == Gemv1Weight::kFp8;
  if (fp8 && (!fp8_weight_fits(a) || epi == Gemv1Epilogue::kRopeQkNorm)) return false;
  // The norm prologue keeps the whole row in registers: one pass (K <= 4096).
  const int one_pass_cols = fp8 ? 16 * kThreads * vectors_per_thread<Fp8W<false>>(a.K)
                              : 8 * kThreads * vectors_per_thread<Bf16W>(a.K);
  if (a.norm_w != nullptr && (a.normed == nullptr || a.K > one_pass_cols)) return false;
  if (a.out_f32 && epi != Gemv1Epilogue::kPlain) return false;
  if (a.bias != nullptr && epi != Gemv1Epilogue::kRope && epi != Gemv1Epilogue::kRopeQkNorm) return false;
  switch (epi) {
    case Gemv1Epilogue::kPlain:
      launch_e<Gemv1Epilogue::kPlain>(a, pdl, stream);
      return true;
    case Gemv1Epilogue::kSwiglu:
      if (a.N % 2 != 0 || a.act == nullptr) return false;
      if (fp8 && (a.N / 2) % (kRowsFp8 / 2) != 0) return false;  // up rows aligned as gate rows (meta_of)
      launch_e<Gemv1Epilogue::kSwiglu>(a, pdl, stream);
      return true;
    case Gemv1Epilogue::kRope:
    case Gemv1Epilogue::kRopeQkNorm: {
      const int D = a.head_dim;
      if (D <= 0 || D % 2 != 0 || (D / 2) % kRowsBf16 != 0 || a.q_heads <= 0 || a.kv_heads <= 0) return false;
      if (a.N != (a.q_heads + 2 * a.kv_heads) * D || a.positions == nullptr || a.slots == nullptr ||
          a.inv_freq == nullptr || a.k_cache == nullptr || a.v_cache == nullptr)
        return false;
      if (epi == Gemv1Epilogue::kRope) {
        launch_e<Gemv1Epilogue::kRope>(a, pdl, stream);
        return true;
      }
      if (a.q_norm_w == nullptr || a.k_norm_w == nullptr || D / 2 > kThreads * kMaxQkPairsPerThread ||
          a.q_heads + a.kv_heads > kMaxHeadCounters)
        return false;
      launch_e<Gemv1Epilogue::kRopeQkNorm>(a, pdl, stream);
      return true;
    }
  }
  return false;
}

}  // namespace kr::cuda
