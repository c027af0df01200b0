// The decode stack kernel (cuda_decode_stack.h), its device code and the templates that
// configure and launch its forms. Included by cuda_decode_stack.cu (the forms with
// grid barriers between all phases, the image builder and the host functions) and
// cuda_decode_stack_flags.cu (the flags forms, DecodeStackArgs::flags): two translation
// units that compile side by side. Its unit arithmetic is the serving stream GEMV's
// (qgemv_stream_kernel, cuda_qgemm.cu): codes into the mma as stored (128 + q), a second
// mma with an all-ones A for Σx, the group folded as s Σ(code x) + beta Σx
// (decode_fold_meta). The persistent form was measured first as a design study
// (kr-cuda-bench --mega-gemv-bench, mega_gemv_bench.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "backend/cuda/cuda_bulk_copy.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_cluster.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_cp_async.cuh"
#include "backend/cuda/cuda_decode_stack.h"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_mma.cuh"
#include "backend/cuda/cuda_qgemm_device.cuh"

namespace kr::cuda {
namespace {

// A form's CTA has stack_cta_warps(SU * 64, kRowRing) warps (12 or 16; the kernel's kWarps).
// Warps 1 .. kWarps - 1 of a CTA stream the weights (a ring each, DecodeStackArgs::ring_depth units);
// warp 0 runs the attention items, and with DecodeStackArgs::warp0_streams streams units too
// (its ring's loads in flight then wait with its keys). With the row ring (16 warps), warps 1 .. 15 take
// their units from the CTA's one ring, which warp 0 fills (kRowRingWarps a row).
constexpr int kRowRingWarps = kStackRowRingWarps;

// A CTA's crew: the threads that share its per-phase work (the residual h, the norms, the
// stagings, the grid barrier's arrival by its first thread) and meet at its barriers. Every
// thread with per-warp rings (Crew<false, kThreads>: __syncthreads); with the row ring
// (DecodeStackArgs::row_ring) warps 1 .. 15 (Crew<true, 512>: named barrier 1 of their 480
// threads), while warp 0 keeps the ring filled and runs the attention items on its own.
// kCtaThreads: the CTA's threads.
template <bool kRowRing, int kCtaThreads>
struct Crew {
  static constexpr int kFirst = kRowRing ? 32 : 0;  // its first thread (the grid barrier's)
  static constexpr int kCount = kCtaThreads - kFirst;
  static constexpr int kHVecs = (kStackMaxH / 4 + kCount - 1) / kCount;    // float4s of h a thread
  static constexpr int kGluVecs = (kStackMaxI / 4 + kCount - 1) / kCount;  // float4s of the GLU a thread
  __device__ __forceinline__ static int rank() { return static_cast<int>(threadIdx.x) - kFirst; }
  __device__ __forceinline__ static void sync() {
    if constexpr (kRowRing) {
      asm volatile("bar.sync 1, %0;" ::"n"(kCount) : "memory");
    } else {
      __syncthreads();
    }
  }
};
// A shared-memory word written by one thread and polled by another (the row ring's signals
// between the crew and warp 0): release / acquire at CTA scope.
__device__ __forceinline__ void store_release_cta(unsigned* p, unsigned v) {
  asm volatile("st.release.cta.shared::cta.u32 [%0], %1;" ::"r"(smem_u32(p)), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned load_acquire_cta(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.cta.shared::cta.u32 %0, [%1];" : "=r"(v) : "r"(smem_u32(p)) : "memory");
  return v;
}

// A unit of SU 64-column steps (one group): codes [step][tile][lane] uint4, then the
// meta words [tile][row].
template <int SU>
struct Unit {
  static constexpr int kCodeVecs = SU * 2 * 32;
  static constexpr int kBytes = kCodeVecs * 16 + 2 * 16 * 4;
};

__device__ __forceinline__ float bfr(float v) { return __bfloat162float(__float2bfloat16(v)); }

// All CTAs meet (every CTA resident: a cooperative launch). count (64-bit) only
// grows: barrier k of a launch waits for count >= base + (k + 1) * grid, base being
// its value when the launch began (DecodeStackArgs::barrier; the last CTA 0 of a
// launch stores the next base). target: thread 0's running target in shared memory (base
// at the launch's start, grown by the grid at each barrier; not in registers, which the
// kernel is short of). The CTA's writes before it (the warps' red.add sums)
// are visible to every CTA after it: __syncthreads, then thread 0's arrival, a red.release
// (PTX ISA, memory consistency model: a release is cumulative, so it orders the writes the
// __syncthreads ordered before it; CUTLASS's GenericBarrier arrives the same way, with
// fence.acq_rel and a relaxed red). No __threadfence (fence.sc.gpu) before it: it only made
// each barrier slower (docs/performance.md, session 27).
// trace: when not null, thread 0 stores the globaltimer at its arrival (trace[0]) and exit (trace[1]).
// C: the crew (its first thread arrives). await: when not null, that thread first waits until
// *await >= await_value (the row ring: warp 0's attention done, its writes then ordered before
// the release by causality); publish: when not null, it stores publish_value there as it exits
// (the row ring: the barriers the crew has passed, which warp 0 waits on); in_matrix: when not
// null, it stores 0 there once the crew is done with its matrix (the row ring's window).
__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
template <class C>
__device__ __forceinline__ void grid_barrier(unsigned long long* count, unsigned long long* target,
                                             unsigned long long* trace, const unsigned* await = nullptr,
                                             unsigned await_value = 0, unsigned* publish = nullptr,
                                             unsigned publish_value = 0, unsigned* in_matrix = nullptr) {
  C::sync();
  if (threadIdx.x == C::kFirst) {
    if (in_matrix != nullptr) store_release_cta(in_matrix, 0);
    if (await != nullptr)
      while (load_acquire_cta(await) < await_value) {
      }
    if (trace != nullptr) trace[0] = global_ns();
    const unsigned long long t = *target += gridDim.x;
    asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(count) : "memory");
    unsigned long long v;
    do {
      asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(count) : "memory");
    } while (v < t);
    if (publish != nullptr) store_release_cta(publish, publish_value);
    if (trace != nullptr) trace[1] = global_ns();
  }
  C::sync();
}

// The flags form's counters (DecodeStackArgs::flags; u32, zero at a launch's start, only
// growing within it). flag_add: the warp's writes before it (red.add sums, stores) are
// visible to whoever sees the count it adds: the warp's sync orders every lane's writes
// before lane 0's release, which is cumulative (PTX ISA, memory consistency model: release
// patterns). flag_wait: lane 0 waits for the count to reach target; the warp's reads after
// it see what the adders wrote before (the acquire, then the warp's sync).
__device__ __forceinline__ void flag_add(unsigned* flag, unsigned n, int lane) {
  __syncwarp();
  if (lane == 0) asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(flag), "r"(n) : "memory");
}
__device__ __forceinline__ void flag_wait(const unsigned* flag, unsigned target, int lane) {
  if (lane == 0) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(flag) : "memory");
    if (v < target) {
      // A count that never comes is a bug in the counters' arithmetic: a launch error after
      // ~2 s rather than a hung device.
      const unsigned long long start = global_ns();
      do {  // backing off: up to ~2,000 warps poll a few lines
        __nanosleep(64);
        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(flag) : "memory");
        if (v < target && global_ns() - start > 2000000000ull) __trap();
      } while (v < target);
    }
  }
  __syncwarp();
}

// Waits until at most depth - 1 of the thread's cp.async groups are pending (depth:
// kStackMinRingDepth .. kStackMaxRingDepth). The defaults (2 for groups of 128, 4 for 64) are
// tested first, by compare and branch: a switch over all five compiled to an indexed jump
// (BRX) at every unit.
__device__ __forceinline__ void ring_wait(int depth) {
  if (depth == 2) {
    cp_async_wait<1>();
  } else if (depth == 4) {
    cp_async_wait<3>();
  } else if (depth == 3) {
    cp_async_wait<2>();
  } else if (depth == 5) {
    cp_async_wait<4>();
  } else {
    cp_async_wait<5>();
  }
}

// Sum over the crew C's threads (red: its warps' floats); ends with every thread of it holding it.
template <class C>
__device__ __forceinline__ float cta_sum(float v, float* red) {
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) red[C::rank() >> 5] = v;
  C::sync();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < C::kCount / 32; ++w) total += red[w];
  return total;
}

// A matrix's input as compute_unit reads it: the 8 bf16 (16 bytes) at element i. kStaging:
// what the warp does before a unit (run_matrix): 0 nothing, 1 stage(grp, lane) (that unit's
// columns into the warp's scratch).
// kF16: the input's 16-bit values are f16 (staged so by the CTA: stage_norm, the o stage),
// and compute_unit takes the codes into f16 mmas (compute_unit); else bf16.
template <bool kF16In>
struct SharedInput {  // staged in shared memory by the CTA
  static constexpr int kStaging = 0;
  static constexpr bool kF16 = kF16In;
  const bf16* xs;  // (f16 bits when kF16)
  __device__ __forceinline__ uint4 operator()(int i) const { return *reinterpret_cast<const uint4*>(xs + i); }
};
struct L2Input {  // in global memory, read through L2 (the flags form's merged attention)
  static constexpr int kStaging = 0;
  static constexpr bool kF16 = false;
  const void* x;
  __device__ __forceinline__ uint4 operator()(int i) const {
    return __ldcg(reinterpret_cast<const uint4*>(static_cast<const bf16*>(x) + i));
  }
};
// bf16(bf16(f(bf16 g)) * bf16 u): the GLU as the GEMV's GLU epilogue rounds it (every form's).
__device__ __forceinline__ bf16 glu_bf16(float g, float u, int activation) {
  return __float2bfloat16(bfr(glu_activation(bfr(g), activation)) * bfr(u));
}
// The V = SU * 2 f32 at p (8-byte aligned) into v.
template <int SU>
__device__ __forceinline__ void load_lane_sums(const float* p, float (&v)[SU * 2]) {
  if constexpr (SU == 2) {
    const float4 q = __ldcg(reinterpret_cast<const float4*>(p));
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else {
    const float2 q = __ldcg(reinterpret_cast<const float2*>(p));
    v[0] = q.x, v[1] = q.y;
  }
}
// The flags form's down_proj input: the GLU of gate_up's f32 sums gu [2 I] (gate, then up)
// over one unit's column group at a time, which the warp makes (stage: SU * 2 values a
// lane, rounded as the staged GLU and the GEMV's GLU epilogue round them) into its own
// shared scratch buf [SU 64] before the unit's mma read it.
template <int SU>
struct GluInput {
  static constexpr int kStaging = 1;
  static constexpr bool kF16 = false;
  const float* gu;
  bf16* buf;
  int I, activation;
  __device__ __forceinline__ void stage(int grp, int lane) const {
    constexpr int V = SU * 2;
    const int i = grp * SU * 64 + V * lane;
    float g[V], u[V];
    load_lane_sums<SU>(gu + i, g);
    load_lane_sums<SU>(gu + I + i, u);
#pragma unroll
    for (int e = 0; e < V; ++e) buf[V * lane + e] = glu_bf16(g[e], u[e], activation);
    __syncwarp();
  }
  __device__ __forceinline__ uint4 operator()(int i) const {
    return *reinterpret_cast<const uint4*>(buf + (i & (SU * 64 - 1)));  // i: in the staged group
  }
};

// The f16 codes of one mma's A fragment (rows g and g + 8) from the lane's words of those
// rows, shifted right by 8 i for mma i (the nibbles a_fragment_raw takes at shifts 8 i and
// 8 i + 4): the k of the mma's first 8 columns as 1024 + q (mantissa bits 0-3 under the
// exponent of 1024), those of its last 8 as 64 + q (bits 4-7 under the exponent of 64: the
// nibble where it is, so one shift a word serves four pairs where bf16's 7-bit mantissa
// takes three). f16's exact integers: 1024 + q and 64 + q both are.
__device__ __forceinline__ void a_fragment_f16(uint32_t (&a)[4], uint32_t rg, uint32_t rg8) {
  constexpr uint32_t kLo = 0x64006400u, kHi = 0x54005400u;  // f16x2 (1024, 1024), (64, 64)
  asm("lop3.b32 %0, %1, 0x000F000F, %2, 0xEA;" : "=r"(a[0]) : "r"(rg), "r"(kLo));  // (a & b) | c
  asm("lop3.b32 %0, %1, 0x000F000F, %2, 0xEA;" : "=r"(a[1]) : "r"(rg8), "r"(kLo));
  asm("lop3.b32 %0, %1, 0x00F000F0, %2, 0xEA;" : "=r"(a[2]) : "r"(rg), "r"(kHi));
  asm("lop3.b32 %0, %1, 0x00F000F0, %2, 0xEA;" : "=r"(a[3]) : "r"(rg8), "r"(kHi));
}

// One unit (a slot) into the warp's sums of rows g and g + 8 of both tiles; x: the
// matrix's input (SharedInput, L2Input or GluInput).
//
// X::kF16 (an f16 input): the codes go into f16 mmas as a_fragment_f16 makes them, so a row's
// part is Σ q x + 1024 Σlo x + 64 Σhi x (lo: the k of each mma's first 8 columns, hi: its last
// 8). The Σx mma's A is 1 in rows 0-7 at lo and 1/16 at hi, and 1 in rows 8-15: its row g
// (psum[.][0]) holds Σlo x + Σhi x / 16, the offsets / 1024, and row g + 8 (psum[.][2]) Σx. A
// row of the unit then adds s (part - 1024 psum[0]) + beta psum[2], beta being the zero point's
// -s z or MLX's bias (decode_fold_meta with no offset). Else (bf16) the codes are 128 + q,
// the Σx mma's A all ones, and a row adds s part + beta Σx with beta carrying the 128.
template <int SU, bool kBias, int kChains, class X>
__device__ __forceinline__ void compute_unit(const uint8_t* slot, const X& x, int grp, float (&acc)[2][2],
                                             int lane, uint32_t magic, bool meta_f16) {
  const int t = lane & 3, g = lane >> 2;
  const uint4* sw = reinterpret_cast<const uint4*>(slot);
  const uint32_t* sm = reinterpret_cast<const uint32_t*>(slot + Unit<SU>::kCodeVecs * 16);
  // kChains accumulators a tile and for Σx (1, or 2: chunk c of each step into accumulator c,
  // so that each mma chain is SU * 4 / kChains deep; stack_mma_chains).
  static_assert(kChains == 1 || kChains == 2, "one or two mma chains a tile");
  float part[2][kChains][4] = {}, psum[kChains][4] = {};
  constexpr uint32_t kOnes = 0x3F803F80u;                            // bf16x2 (1, 1)
  constexpr uint32_t kOne16 = 0x3C003C00u, kSixteenth = 0x2C002C00u;  // f16x2 (1, 1), (1/16, 1/16)
  // The Σx mma's A: f16, rows g and g + 8 at lo, then at hi; bf16, all ones.
  const uint32_t ones[4] = {X::kF16 ? kOne16 : kOnes, X::kF16 ? kOne16 : kOnes, X::kF16 ? kSixteenth : kOnes,
                            X::kF16 ? kOne16 : kOnes};
#pragma unroll
  for (int s = 0; s < SU; ++s) {
    const uint4 w0 = sw[(s * 2) * 32 + lane], w1 = sw[(s * 2 + 1) * 32 + lane];
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      // Lane t's 8 columns of chunk c of the step (qgemm_layout.h's lane-contiguous k).
      const uint4 xv = x((grp * SU + s) * 64 + c * 32 + 8 * t);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint32_t b0 = word_of(xv, 2 * i), b1 = word_of(xv, 2 * i + 1);
        uint32_t af[4];
        if constexpr (X::kF16) {
          a_fragment_f16(af, word_of(w0, 2 * c) >> (8 * i), word_of(w0, 2 * c + 1) >> (8 * i));
          mma_f16(part[0][c % kChains], af, b0, b1);
          a_fragment_f16(af, word_of(w1, 2 * c) >> (8 * i), word_of(w1, 2 * c + 1) >> (8 * i));
          mma_f16(part[1][c % kChains], af, b0, b1);
          mma_f16(psum[c % kChains], ones, b0, b1);
        } else {
          a_fragment_raw<QCode::kU4>(af, word_of(w0, 2 * c), word_of(w0, 2 * c + 1), i, magic);
          mma_bf16(part[0][c % kChains], af, b0, b1);
          a_fragment_raw<QCode::kU4>(af, word_of(w1, 2 * c), word_of(w1, 2 * c + 1), i, magic);
          mma_bf16(part[1][c % kChains], af, b0, b1);
          mma_bf16(psum[c % kChains], ones, b0, b1);
        }
      }
    }
  }
  // Every column of B is x, so column 2t of C holds the row's sum on every lane.
  constexpr int kOffset = X::kF16 ? 0 : 128;  // what the codes carry above q that beta takes out
  float s0 = psum[0][0], s2 = psum[0][2];
  if constexpr (kChains == 2) s0 += psum[1][0], s2 += psum[1][2];
#pragma unroll
  for (int ti = 0; ti < 2; ++ti) {
    const float2 m0 = decode_fold_meta<QCode::kU4, kBias, kOffset>(sm[ti * 16 + g], meta_f16);
    const float2 m1 = decode_fold_meta<QCode::kU4, kBias, kOffset>(sm[ti * 16 + g + 8], meta_f16);
    float p0 = part[ti][0][0], p2 = part[ti][0][2];
    if constexpr (kChains == 2) p0 += part[ti][1][0], p2 += part[ti][1][2];
    if constexpr (X::kF16) {
      acc[ti][0] = fmaf(m0.x, p0 - 1024.0f * s0, fmaf(m0.y, s2, acc[ti][0]));
      acc[ti][1] = fmaf(m1.x, p2 - 1024.0f * s0, fmaf(m1.y, s2, acc[ti][1]));
    } else {
      acc[ti][0] = fmaf(m0.x, p0, fmaf(m0.y, s0, acc[ti][0]));
      acc[ti][1] = fmaf(m1.x, p2, fmaf(m1.y, s2, acc[ti][1]));
    }
  }
}

__device__ __forceinline__ void pair_tiles(const StackMatrix& m, int pair, int (&tiles)[2]) {
  tiles[0] = m.swiglu ? pair : 2 * pair;
  tiles[1] = m.swiglu ? pair + m.N / 32 : 2 * pair + 1;
}

// The warp's sums of tile pair `pair` added to out (f32 [N]) as 16-byte reductions
// (red.global.v4.f32.add, sm_90): lanes 0 and 16 take rows g .. g + 3 of each half tile from
// lanes 4, 8 and 12 below them, 8 reductions a pair instead of 32 scalar ones. Every matrix's
// flush but the cluster MLP's gate_up (flush_pair_local): as scalars they queued at L2 and
// held up each grid barrier's release (docs/performance.md, sessions 39 and 40).
__device__ __forceinline__ void flush_pair(const StackMatrix& m, float* out, int pair, const float (&acc)[2][2],
                                           int lane) {
  int tiles[2];
  pair_tiles(m, pair, tiles);
  const int g = lane >> 2;
#pragma unroll
  for (int ti = 0; ti < 2; ++ti) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {  // rows g (h 0) and g + 8 (h 1) of the tile
      const float v = acc[ti][h];
      const float v1 = __shfl_down_sync(0xffffffffu, v, 4), v2 = __shfl_down_sync(0xffffffffu, v, 8),
                  v3 = __shfl_down_sync(0xffffffffu, v, 12);
      if ((lane & 15) == 0)
        asm volatile("red.global.v4.f32.add [%0], {%1, %2, %3, %4};" ::"l"(out + tiles[ti] * 16 + 8 * h + g), "f"(v),
                     "f"(v1), "f"(v2), "f"(v3)
                     : "memory");
    }
  }
}

// The cluster MLP form's gate_up flush: the warp's sums of the CTA's tile pair lp (0 .. 3) into
// its shared sums gul (gate rows [0, 64), up rows [64, 128): 16 lp + row).
__device__ __forceinline__ void flush_pair_local(float* gul, int lp, const float (&acc)[2][2], int lane) {
  if ((lane & 3) != 0) return;
  const int g = lane >> 2;
#pragma unroll
  for (int ti = 0; ti < 2; ++ti) {
    atomicAdd(gul + ti * (kStackSliceCols / 2) + lp * 16 + g, acc[ti][0]);
    atomicAdd(gul + ti * (kStackSliceCols / 2) + lp * 16 + g + 8, acc[ti][1]);
  }
}

// 4 bf16 of p[i..i+3] (8-byte aligned) as floats.
__device__ __forceinline__ float4 load_bf16x4(const void* p, int i) {
  const uint2 v = __ldcg(reinterpret_cast<const uint2*>(static_cast<const bf16*>(p) + i));
  const __nv_bfloat162 a = *reinterpret_cast<const __nv_bfloat162*>(&v.x);
  const __nv_bfloat162 b = *reinterpret_cast<const __nv_bfloat162*>(&v.y);
  return make_float4(__low2float(a), __high2float(a), __low2float(b), __high2float(b));
}
__device__ __forceinline__ float4 load_bf16x4_shared(const void* p, int i) {
  const uint2 v = *reinterpret_cast<const uint2*>(static_cast<const bf16*>(p) + i);
  const __nv_bfloat162 a = *reinterpret_cast<const __nv_bfloat162*>(&v.x);
  const __nv_bfloat162 b = *reinterpret_cast<const __nv_bfloat162*>(&v.y);
  return make_float4(__low2float(a), __high2float(a), __low2float(b), __high2float(b));
}
__device__ __forceinline__ uint2 load_raw4(const void* p, int i) {
  return *reinterpret_cast<const uint2*>(static_cast<const bf16*>(p) + i);
}
// Two bf16 (a bf16x2 word) as two f16 (an f16x2 word) for an f16 input (SharedInput<true>):
// exact for 2^-17 <= |v| <= 65504 (f16's range; below it f16's subnormals keep what they can,
// ~6e-8 absolute); beyond 65504 it saturates (cvt's .satfinite) rather than becoming an
// infinity, and NaN stays NaN. The inputs staged so are a normed h and the attention's output,
// not the GLU (down_proj's input stays bf16). Three instructions a pair: the halves as floats,
// one cvt of both (PTX ISA: cvt.rn.satfinite.f16x2.f32 d, a, b puts a in d's upper half).
__device__ __forceinline__ uint32_t f16x2_of(uint32_t bf16x2) {
  const float lo = __uint_as_float(bf16x2 << 16), hi = __uint_as_float(bf16x2 & 0xFFFF0000u);
  uint32_t d;
  asm("cvt.rn.satfinite.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
}
// 8 bf16 (a uint4) as 8 f16 (f16x2_of).
__device__ __forceinline__ uint4 f16_of8(uint4 v) {
  return make_uint4(f16x2_of(v.x), f16x2_of(v.y), f16x2_of(v.z), f16x2_of(v.w));
}
// norm_apply of 4 values with the weights' 4 bf16 (raw), stored at d (8-byte aligned): as
// bf16, or with kF16 the same bf16 values as f16 (f16x2_of).
template <bool kF16>
__device__ __forceinline__ void norm4(const float4& h, float inv, uint2 wr, int kind, bf16* d) {
  const bf16* w = reinterpret_cast<const bf16*>(&wr);
  const __nv_bfloat162 v[2] = {__halves2bfloat162(norm_apply(h.x, inv, w[0], kind), norm_apply(h.y, inv, w[1], kind)),
                               __halves2bfloat162(norm_apply(h.z, inv, w[2], kind), norm_apply(h.w, inv, w[3], kind))};
  uint2 o = *reinterpret_cast<const uint2*>(v);
  if constexpr (kF16) o = make_uint2(f16x2_of(o.x), f16x2_of(o.y));
  *reinterpret_cast<uint2*>(d) = o;
}
__device__ __forceinline__ float4 add_rounded(const float4& r, const float4& o) {
  // residual + bf16(o), rounded to bf16: the unfused norm kernel's residual add.
  return make_float4(bfr(r.x + bfr(o.x)), bfr(r.y + bfr(o.y)), bfr(r.z + bfr(o.z)), bfr(r.w + bfr(o.w)));
}


__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Matrix m of the step's sequence: layer m / 4's qkv, o, gate_up, down.
__device__ __forceinline__ const StackMatrix& stack_matrix(const DecodeStackArgs& a, int m) {
  const StackLayer& L = a.layer[m >> 2];
  switch (m & 3) {
    case 0: return L.qkv;
    case 1: return L.o;
    case 2: return L.gate_up;
    default: return L.down;
  }
}

// Matrix m's shape (N, K, groups, units, group_block, swiglu, meta_f16: the same in every
// layer, decode_stack_supports) without its image: layer 0's, at an offset in the kernel's
// parameters fixed by m & 3, rather than layer m / 4's, which indexes the ~15 KB of parameters
// with a register (for the phases' own reads; the ring cursor reads each layer's image).
__device__ __forceinline__ const StackMatrix& stack_shape(const DecodeStackArgs& a, int m) {
  return stack_matrix(a, m & 3);  // layer (m & 3) >> 2 = 0: a constant
}

// A streaming warp's walk through its units of every matrix of the launch (matrix m,
// unit i of the n of its range), in the order its ring takes them; src: the unit's
// image (stack_unit_slot: i W + gw in the full rows, then the packed last row). range: the
// warp's StackWarpRange of each of a layer's four matrices (m & 3).
struct UnitCursor {
  int m = 0, i = 0, n = 0;
  int last_step = 0;  // StackWarpRange::last_step of matrix m
  const uint8_t* src = nullptr;

  __device__ __forceinline__ void enter(const DecodeStackArgs& a, int mm, const StackWarpRange* range) {
    const StackWarpRange& r = range[mm & 3];
    m = mm;
    i = 0;
    n = r.n;
    last_step = r.last_step;
    src = static_cast<const uint8_t*>(stack_matrix(a, mm).image) + r.first;
  }
  // Past the matrices where the warp has no unit; M: the launch's matrices.
  __device__ __forceinline__ void skip_empty(const DecodeStackArgs& a, const StackWarpRange* range, int M) {
    while (i >= n && m < M) {
      if (++m < M) enter(a, m, range);
    }
  }
  __device__ __forceinline__ void start(const DecodeStackArgs& a, const StackWarpRange* range, int M) {
    enter(a, 0, range);
    skip_empty(a, range, M);
  }
  __device__ __forceinline__ bool done(int M) const { return m >= M; }
  // row_bytes: W unit bytes, the step from a full row to the next.
  __device__ __forceinline__ void advance(const DecodeStackArgs& a, const StackWarpRange* range, int M,
                                          int row_bytes) {
    if (++i < n) src += i == n - 1 ? last_step : row_bytes;  // the last may sit in the packed row
    skip_empty(a, range, M);
  }
};

// The row ring's producer (warp 0's lane 0 of each CTA): its walk through the CTA's rows of
// every matrix of the launch (matrix m, row i of it), the rows issued and the rows it has
// seen landed. In static shared memory, not registers: it lives through the attention.
struct RowProducer {
  int m, i;
  unsigned issued, landed;
};
static_assert(sizeof(RowProducer) == 16, "the static shared memory's budget");

// The kernel's static shared memory (the threads' cursors, the warps' ranges, the grid
// barrier's target, the row ring's barriers, producer and signals, the stage columns) fits the room
// cuda_decode_stack.h keeps for it.
static_assert(kStackWarps * 32 * static_cast<int>(sizeof(UnitCursor)) +
                      kStackWarps * 4 * static_cast<int>(sizeof(StackWarpRange)) +
                      8 + 2 * kStackMaxRingRows * 8 + static_cast<int>(sizeof(RowProducer)) + 12 + 16 <=
                  kStackStaticSmemBytes,
              "static shared memory");

// Producer: issues the CTA's next rows into the ring (R rows of kRowRingWarps UB bytes at ring,
// full / empty their barriers) while a slot is free (its last row released by the 15
// streaming warps: the empty barrier's phase) and fewer than P rows are issued and not seen
// landed (the full barriers' phases; P <= R, so a full barrier is never tested two phases
// behind). Returns without waiting, whether it issued a row; the caller polls it. Its
// matrices: m < M.
__device__ __forceinline__ bool pump_rows(RowProducer& p, const DecodeStackArgs& a, uint8_t* ring, uint64_t* full,
                                          uint64_t* empty, int W, int M, int UB, int R, int P) {
  // (P: the caller's, a.rows_in_flight or a.window_rows_in_flight as the crew is in a matrix or not.)
  unsigned issued = p.issued, landed = p.landed;
  while (landed < issued && mbar_test(full + landed % R, (landed / R) & 1u)) ++landed;
  int m = p.m, i = p.i;
  while (m < M && issued - landed < static_cast<unsigned>(P)) {
    const int slot = static_cast<int>(issued % R);
    if (issued >= static_cast<unsigned>(R) && !mbar_test(empty + slot, (issued / R - 1) & 1u)) break;
    const StackMatrix& mt = stack_matrix(a, m);
    const CtaRows r = cta_rows(mt.units, blockIdx.x, W, 0);
    const bool full_row = i < r.n;
    const uint32_t bytes = static_cast<uint32_t>((full_row ? kRowRingWarps : r.packed) * UB);
    const size_t first = full_row ? static_cast<size_t>(i) * W + blockIdx.x * kRowRingWarps : static_cast<size_t>(r.p0);
    mbar_expect_tx(full + slot, bytes);
    bulk_copy_to_shared(ring + static_cast<size_t>(slot) * kRowRingWarps * UB,
                        static_cast<const uint8_t*>(mt.image) + first * UB, bytes, full + slot);
    ++issued;
    // The next row: of this matrix, or the first of the next that has rows for this CTA.
    if (++i >= cta_row_count(r)) {
      i = 0;
      while (++m < M && cta_row_count(cta_rows(stack_matrix(a, m).units, blockIdx.x, W, 0)) == 0) {
      }
    }
  }
  const bool issued_any = issued != p.issued;
  p.m = m;
  p.i = i;
  p.issued = issued;
  p.landed = landed;
  return issued_any;
}

// f32 [n] back to zero, by every CTA's crew's share (grid-stride, float4s; n % 4 == 0).
template <class C>
__device__ __forceinline__ void zero_sums(float* p, int n) {
  for (int v = blockIdx.x * C::kCount + C::rank(); v < n / 4; v += gridDim.x * C::kCount)
    __stcg(reinterpret_cast<float4*>(p) + v, make_float4(0, 0, 0, 0));
}

// The residual h: bf16 [H] in shared memory (hs), every thread of the crew reading and writing
// only its own 4-value vectors i = 4 (rank + j C::kCount), so that no barrier orders them. Its values are
// bf16 (add_rounded rounds them), so the bf16 store loses nothing; in shared memory rather
// than 2 float4s a thread of registers, which the kernel, at its 128-register limit, spilled.
__device__ __forceinline__ float4 h_load(const bf16* hs, int i) { return load_bf16x4_shared(hs, i); }
__device__ __forceinline__ void h_store(bf16* hs, int i, const float4& v) {
  __nv_bfloat162 p[2] = {__floats2bfloat162_rn(v.x, v.y), __floats2bfloat162_rn(v.z, v.w)};
  *reinterpret_cast<uint2*>(hs + i) = *reinterpret_cast<const uint2*>(p);
}

// This thread's 4-value vectors of the norm weights w [H] (raw bf16), as stage_norm uses them.
// Loaded before the grid barrier that precedes the norm, so that their round trip (each
// layer's weights, not in L1) runs through the barrier instead of after the residual's.
template <class C>
__device__ __forceinline__ void load_norm_weights(const void* w, int H, uint2 (&wr)[C::kHVecs]) {
#pragma unroll
  for (int j = 0; j < C::kHVecs; ++j) {
    const int i = 4 * (C::rank() + j * C::kCount);
    wr[j] = i < H ? load_raw4(w, i) : make_uint2(0, 0);
  }
}

// x = norm(h) into xs (this thread's float4s of h, its vectors wr of the norm weights,
// load_norm_weights), as bf16 or with kF16 as f16 (norm4); ends with the crew's barrier.
template <class C, bool kF16>
__device__ __forceinline__ void stage_norm(const bf16* hs, const uint2 (&wr)[C::kHVecs], int H, float eps, int kind,
                                           bf16* xs, float* red) {
  float4 h[C::kHVecs];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < C::kHVecs; ++j) {
    const int i = 4 * (C::rank() + j * C::kCount);
    h[j] = i < H ? h_load(hs, i) : make_float4(0, 0, 0, 0);
    ss += h[j].x * h[j].x + h[j].y * h[j].y + h[j].z * h[j].z + h[j].w * h[j].w;
  }
  const float inv = rsqrtf(cta_sum<C>(ss, red) / static_cast<float>(H) + eps);
#pragma unroll
  for (int j = 0; j < C::kHVecs; ++j) {
    const int i = 4 * (C::rank() + j * C::kCount);
    if (i < H) norm4<kF16>(h[j], inv, wr[j], kind, xs + i);
  }
  C::sync();
}

// h = bf16(h + bf16(sums)) for this thread's float4s. Every load is issued before the first
// store: with a load and a store a vector, the second vector's load sat behind a branch after
// the first's store, a second L2 round trip after the barrier (the SASS of session 30's
// profile, call 2).
template <class C>
__device__ __forceinline__ void add_sums(bf16* hs, const float* sums, int H) {
  float4 s[C::kHVecs];
#pragma unroll
  for (int j = 0; j < C::kHVecs; ++j) {
    const int i = 4 * (C::rank() + j * C::kCount);
    s[j] = i < H ? __ldcg(reinterpret_cast<const float4*>(sums + i)) : make_float4(0, 0, 0, 0);
  }
#pragma unroll
  for (int j = 0; j < C::kHVecs; ++j) {
    const int i = 4 * (C::rank() + j * C::kCount);
    if (i < H) h_store(hs, i, add_rounded(h_load(hs, i), s[j]));
  }
}

// Key splits of the attention phase for nkeys keys: about 32 keys a split (a key a lane:
// shorter splits are no faster, session 23).
__device__ __forceinline__ int attention_splits(int nkeys) {
  return min(kStackMaxSplits, max(1, (nkeys + 31) / 32));
}

// The keys [k0, k1) of split s of S over nkeys keys. 32-bit: the kernel takes at most
// kStackMaxKeys keys in at most kStackMaxSplits splits (a 64-bit division is a called
// routine, on the path from the barrier after qkv to an attention item's first loads).
static_assert(static_cast<long long>(kStackMaxSplits) * (kStackMaxKeys + 1) < (1LL << 31), "split_keys's products");
__device__ __forceinline__ void split_keys(int s, int S, int nkeys, int& k0, int& k1) {
  k0 = s * nkeys / S;
  k1 = (s + 1) * nkeys / S;
}

// Shared memory of a warp's first chunk of 32 keys, loaded before the wait for qkv
// (cp.async): K rows, then V rows, each padded to 272 bytes (16-byte reads of 32 rows, and
// ldmatrix's 8 rows, without bank conflicts). A V row past the chunk's keys is zero
// (prefetch_chunk), so that the tensor-core P V (attend_staged_mma) adds 0 x 0 there.
constexpr int kKRowBytes = kStackHeadDim * 2 + 16;
constexpr int kVRowBytes = kKRowBytes;
constexpr int kStageBytes = 32 * kKRowBytes + 32 * kVRowBytes;
static_assert(kStageBytes == kStackStageBytes, "stack_smem_layout's stage");

// The paged cache row of key j of the sequence.
__device__ __forceinline__ int key_row(const DecodeStackArgs& a, int j) {
  return a.block_table[j / a.block_size] * a.block_size + j % a.block_size;
}

// The offset (elements) in a layer's K and V caches of kv head g's row of the lane's key
// in the first chunk (32 keys) of split s of S; false when the lane has none (past the
// split, or the new key at pos: not in the cache yet, the attention writes it itself).
__device__ __forceinline__ bool chunk_key_offset(const DecodeStackArgs& a, int g, int s, int S, int pos, int lane,
                                                 size_t* off) {
  int k0, k1;
  split_keys(s, S, pos + 1, k0, k1);
  const int j = k0 + lane;
  if (j >= min(k1, pos)) return false;
  *off = (static_cast<size_t>(key_row(a, j)) * a.kv_heads + g) * kStackHeadDim;
  return true;
}

// Warp: cp.async of the cached keys of the first chunk of item (g, s) into stage.
__device__ __forceinline__ void prefetch_chunk(const DecodeStackArgs& a, const StackLayer& L, int g, int s, int S,
                                               int pos, uint8_t* stage, int lane) {
  constexpr int D = kStackHeadDim;
  size_t off;
  uint8_t* vrow = stage + 32 * kKRowBytes + lane * kVRowBytes;
  if (chunk_key_offset(a, g, s, S, pos, lane, &off)) {
    const uint4* ks = reinterpret_cast<const uint4*>(static_cast<const bf16*>(L.k_cache) + off);
    const uint4* vs = reinterpret_cast<const uint4*>(static_cast<const bf16*>(L.v_cache) + off);
#pragma unroll
    for (int c = 0; c < D / 8; ++c) {
      cp_async16(stage + lane * kKRowBytes + 16 * c, ks + c);
      cp_async16(vrow + 16 * c, vs + c);
    }
  } else {  // no cached key (the new key's row is written by its item later, in this warp's order)
#pragma unroll
    for (int c = 0; c < D / 8; ++c) reinterpret_cast<uint4*>(vrow)[c] = make_uint4(0, 0, 0, 0);
  }
  cp_async_commit();
}

// Warp: the online softmax of the G q heads of kv head g (qs: their rotated q, [G][D]
// bf16) over the keys [k0, k1) in the caches, a key a lane, 32 at a time (the first 32 from
// stage when staged): each head's running max m, sum l and this lane's 4 dims of
// the weighted sum of V (dims 4 lane .. 4 lane + 3).
template <int G>
__device__ __forceinline__ void attend_keys(const DecodeStackArgs& a, const StackLayer& L, int g, int k0, int k1,
                                            const bf16* qs, const uint8_t* stage, bool staged, int lane,
                                            float (&m)[G], float (&l)[G], float (&acc)[G][4]) {
  constexpr int D = kStackHeadDim;
  constexpr int B = G > 4 ? 4 : 8;  // K vectors and V rows in flight a lane (registers)
  const int Hkv = a.kv_heads;
#pragma unroll
  for (int gi = 0; gi < G; ++gi) {
    m[gi] = -INFINITY;
    l[gi] = 0.0f;
    acc[gi][0] = acc[gi][1] = acc[gi][2] = acc[gi][3] = 0.0f;
  }
  for (int j0 = k0; j0 < k1; j0 += 32) {
    const int j = j0 + lane;
    const bool valid = j < k1;
    const bool from_stage = staged && j0 == k0;
    const int row = valid && !from_stage ? key_row(a, j) : 0;  // a staged chunk reads no cache row
    float sc[G];
#pragma unroll
    for (int gi = 0; gi < G; ++gi) sc[gi] = 0.0f;
    // The lane's key row (staged, or B of its 16-byte vectors in flight at a time).
    const uint4* kr = from_stage ? reinterpret_cast<const uint4*>(stage + lane * kKRowBytes)
                                 : reinterpret_cast<const uint4*>(static_cast<const bf16*>(L.k_cache) +
                                                                  (static_cast<size_t>(row) * Hkv + g) * D);
#pragma unroll
    for (int c0 = 0; c0 < D / 8; c0 += B) {
      Vec8 kv[B];
#pragma unroll
      for (int c = 0; c < B; ++c)
        kv[c].u = !valid ? make_uint4(0, 0, 0, 0) : from_stage ? kr[c0 + c] : __ldcg(kr + c0 + c);
#pragma unroll
      for (int c = 0; c < B; ++c) {
#pragma unroll
        for (int gi = 0; gi < G; ++gi) {
          Vec8 qv;
          qv.u = *reinterpret_cast<const uint4*>(qs + gi * D + (c0 + c) * 8);
#pragma unroll
          for (int e = 0; e < 8; ++e) sc[gi] = fmaf(__bfloat162float(qv.h[e]), __bfloat162float(kv[c].h[e]), sc[gi]);
        }
      }
    }
    float p[G];
#pragma unroll
    for (int gi = 0; gi < G; ++gi) {
      const float sv = valid ? sc[gi] * a.scale : -INFINITY;
      const float mnew = fmaxf(m[gi], warp_max(sv));
      p[gi] = valid ? __expf(sv - mnew) : 0.0f;
      const float corr = __expf(m[gi] - mnew);
      l[gi] = l[gi] * corr + warp_sum(p[gi]);
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[gi][e] *= corr;
      m[gi] = mnew;
    }
    // p . V: lane holds dims 4 lane .. 4 lane + 3; B keys' V vectors in flight at a time
    // (lanes past the chunk's keys have p = 0 and row 0).
    const int cnt = min(32, k1 - j0);
    for (int jb = 0; jb < cnt; jb += B) {
      float4 v[B];
#pragma unroll
      for (int u = 0; u < B; ++u) {
        const int jj = (jb + u) & 31;
        const int rj = __shfl_sync(0xffffffffu, row, jj);
        if (jb + u >= cnt) {  // past the chunk's keys (a staged row there holds stale bytes)
          v[u] = make_float4(0, 0, 0, 0);
        } else if (from_stage) {
          v[u] = load_bf16x4_shared(stage + 32 * kKRowBytes + jj * kVRowBytes, 4 * lane);
        } else {
          v[u] = load_bf16x4(static_cast<const bf16*>(L.v_cache) + (static_cast<size_t>(rj) * Hkv + g) * D, 4 * lane);
        }
      }
#pragma unroll
      for (int u = 0; u < B; ++u) {
#pragma unroll
        for (int gi = 0; gi < G; ++gi) {
          const float pj = __shfl_sync(0xffffffffu, p[gi], (jb + u) & 31);
          acc[gi][0] = fmaf(pj, v[u].x, acc[gi][0]);
          acc[gi][1] = fmaf(pj, v[u].y, acc[gi][1]);
          acc[gi][2] = fmaf(pj, v[u].z, acc[gi][2]);
          acc[gi][3] = fmaf(pj, v[u].w, acc[gi][3]);
        }
      }
    }
  }
}

// Warp: attend_keys's online softmax for a chunk of cnt <= 32 keys that is all in the stage
// (its rows past cnt: V zero, K anything), on the tensor cores (DecodeStackArgs::mma_keys),
// written as split s's partials: head gi's at out + gi * kStackMaxSplits * kStackPartFloats
// ([0] max, [1] sum, [4 + d] the weighted sum of V). S = Q K^T in m16n8k16 tiles of (q
// head, key) with the G heads as rows 0 .. G - 1 (the others zero) and 4 tiles of 8 keys;
// the scores' C fragments are P's A fragments (cuda_flash_common.cuh's header); P V in 16
// tiles of 8 dims, with p split into bf16 hi + lo so that p keeps ~16 of its bits (the
// CUDA-core path multiplies f32 p). About 100 mma and 32 ldmatrix where attend_keys runs
// ~1,500 dependent FMAs and 30 shuffles in one warp (its keys step: 6.3 us a layer on an
// H100, session 23).
template <int G>
__device__ __forceinline__ void attend_staged_mma(const bf16* qs, const uint8_t* stage, int cnt, float scale,
                                                  float* out, int lane) {
  static_assert(G >= 1 && G <= 8, "the q heads are the rows 0 .. 7 of the A tiles");
  constexpr int D = kStackHeadDim, KSteps = D / 16;
  const int g = lane >> 2, t = lane & 3;
  const bool head = g < G;  // this lane's C rows g hold q head g
  // S: key tile nt (keys 8 nt .. 8 nt + 7 as B's n); ldmatrix.x4 of 4 16-byte chunks of the 8
  // K rows (lane L: row L % 8 of chunk L / 8) gives b0, b1 of two k-steps. q is row g of A
  // (rows g + 8 zero): dims 16 kk + 2t (a0) and 16 kk + 8 + 2t (a2). Written a k-step of
  // all four tiles at a time, but ptxas still issues each tile's chain of 8 mmas in turn
  // (cuobjdump, session 32 call 1), as it did for the tile-after-tile loop before.
  const uint32_t kaddr = smem_u32(stage) + (lane & 7) * kKRowBytes + (lane >> 3) * 16;
  float sc[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
#pragma unroll
  for (int c = 0; c < KSteps / 2; ++c) {
    uint32_t kb[4][4], a[2][4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int kk = 2 * c + h;
      a[h][0] = head ? *reinterpret_cast<const uint32_t*>(qs + g * D + kk * 16 + 2 * t) : 0u;
      a[h][2] = head ? *reinterpret_cast<const uint32_t*>(qs + g * D + kk * 16 + 8 + 2 * t) : 0u;
      a[h][1] = a[h][3] = 0u;
    }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) ldmatrix_x4(kb[nt], kaddr + nt * 8 * kKRowBytes + c * 64);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) mma_bf16(sc[nt], a[0], kb[nt][0], kb[nt][1]);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) mma_bf16(sc[nt], a[1], kb[nt][2], kb[nt][3]);
  }
  // Softmax of row g: this lane's keys 8 nt + 2t + e, the row's 4 lanes by shuffles.
  float mx = -INFINITY;
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      sc[nt][e] = nt * 8 + 2 * t + e < cnt ? sc[nt][e] * scale : -INFINITY;
      mx = fmaxf(mx, sc[nt][e]);
    }
  }
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  float sum = 0.0f;
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      sc[nt][e] = __expf(sc[nt][e] - mx);  // 0 past cnt
      sum += sc[nt][e];
    }
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  // P's A fragments of k-step kk (keys 16 kk ..): a0 from tile 2 kk, a2 from tile 2 kk + 1.
  uint32_t ph[2][2], pl[2][2];
#pragma unroll
  for (int kk = 0; kk < 2; ++kk) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float p0 = sc[2 * kk + h][0], p1 = sc[2 * kk + h][1];
      ph[kk][h] = pack_bf16(p0, p1);
      const float2 back = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&ph[kk][h]));
      pl[kk][h] = pack_bf16(p0 - back.x, p1 - back.y);
    }
  }
  // P V: dim tiles 2 d2 and 2 d2 + 1; ldmatrix.x4.trans of V rows (lane L: key 16 kk + L % 8
  // + 8 ((L / 8) % 2), chunk 2 d2 + L / 16) gives b0, b1 of both tiles.
  const uint32_t vaddr = smem_u32(stage + 32 * kKRowBytes) + ((lane & 7) + ((lane >> 3) & 1) * 8) * kVRowBytes +
                         (lane >> 4) * 16;
  float* const og = out + static_cast<size_t>(head ? g : 0) * kStackMaxSplits * kStackPartFloats;
  // Two d2 at a time: four independent chains of 4 mmas (hi and lo of both k-steps), which
  // ptxas interleaves (cuobjdump, session 32 call 1); d2 after d2 there were two.
#pragma unroll
  for (int d2 = 0; d2 < D / 16; d2 += 2) {
    float o[4][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
#pragma unroll
    for (int kk = 0; kk < 2; ++kk) {
      uint32_t vb[2][4];
#pragma unroll
      for (int e = 0; e < 2; ++e) ldmatrix_x4_trans(vb[e], vaddr + kk * 16 * kVRowBytes + (d2 + e) * 32);
      const uint32_t ah[4] = {ph[kk][0], 0u, ph[kk][1], 0u};
      const uint32_t al[4] = {pl[kk][0], 0u, pl[kk][1], 0u};
#pragma unroll
      for (int e = 0; e < 4; ++e) mma_bf16(o[e], ah, vb[e >> 1][2 * (e & 1)], vb[e >> 1][2 * (e & 1) + 1]);
#pragma unroll
      for (int e = 0; e < 4; ++e) mma_bf16(o[e], al, vb[e >> 1][2 * (e & 1)], vb[e >> 1][2 * (e & 1) + 1]);
    }
    if (head) {
#pragma unroll
      for (int e = 0; e < 4; ++e)  // tile e: dims 16 (d2 + e / 2) + 8 (e % 2) ..
        *reinterpret_cast<float2*>(og + 4 + (d2 + (e >> 1)) * 16 + 8 * (e & 1) + 2 * t) = make_float2(o[e][0], o[e][1]);
    }
  }
  if (head && t == 0) {
    og[0] = mx;
    og[1] = sum;
  }
}

// One q head's 4 dims (4 ln .. 4 ln + 3) of the merged attention from the S splits' partials
// ph (f32 [kStackMaxSplits][kStackPartFloats]): attention_item's merge and the warp merge, a
// lane 4 dims. One pass, the running max rescaling the sums (stack_merge_softmax, as the
// online softmax): a split's loads do not wait for the max over all splits, so that four
// splits' loads are in flight together (one L2 round trip where the two passes took two).
__device__ __forceinline__ void merge_partials(const float* ph, int S, int ln, bf16* o) {
  float M = -INFINITY, den = 0.0f, num[4] = {0, 0, 0, 0};
#pragma unroll 4
  for (int t = 0; t < S; ++t) {
    const float* pt = ph + t * kStackPartFloats;
    const float4 at = __ldcg(reinterpret_cast<const float4*>(pt + 4 + 4 * ln));
    const float n2[4] = {at.x, at.y, at.z, at.w};
    stack_merge_softmax(M, den, num, __ldcg(pt), __ldcg(pt + 1), n2);
  }
  const float inv = 1.0f / den;
#pragma unroll
  for (int e = 0; e < 4; ++e) o[e] = __float2bfloat16(num[e] * inv);
}

// The barrier form's o_proj input with DecodeStackArgs::warp_merge: a unit's C = SU 64 columns
// of the attention (dims of one q head) merged by the warp itself from the splits' partials
// (merge_partials, a lane 4 dims) into its scratch buf [C]
// before the unit's mma read it; instead of every CTA merging all Hq heads after the barrier.
template <int SU>
struct MergedInput {
  static constexpr int kStaging = 1, C = SU * 64;
  static constexpr bool kF16 = false;
  const float* partials;  // f32 [Hq][kStackMaxSplits][kStackPartFloats]
  bf16* buf;
  int S;
  __device__ __forceinline__ void stage(int grp, int lane) const {
    const int head = grp * C / kStackHeadDim, d0 = grp * C % kStackHeadDim;
    if (lane < C / 4)
      merge_partials(partials + static_cast<size_t>(head) * kStackMaxSplits * kStackPartFloats, S, d0 / 4 + lane,
                        buf + 4 * lane);
    __syncwarp();
  }
  __device__ __forceinline__ uint4 operator()(int i) const {
    return *reinterpret_cast<const uint4*>(buf + (i & (C - 1)));  // i: in the staged group
  }
};

// Warp: kv head g over split s of S of the keys [0, pos] (pos: the new token, whose k
// and v this split stores when it holds it), for the G q heads of g; (max, sum, acc)
// of each into a.partials; the split that finishes last merges the S splits of its
// heads into attn_out (bf16, as the attention kernels write it), then adds 1 to
// `merged` when not null (the flags form's counter of kv head g). qs: the warp's
// [G][D] bf16 of rotated q; cs, sn: RoPE's cos and sin at pos of pairs lane and
// lane + 32; stage: the first chunk's keys when `staged` (prefetch_chunk).
//
// stage_merge (DecodeStackArgs::stage_merge): the partials only (no fence, no ticket, no
// merge: stage_merged_attention does it after the barrier). trace: when not null, the
// CTA's trace row, where lane 0 marks kTraceAttnQ, kTraceAttnKeys and kTraceAttnTicket.
template <int G>
__device__ void attention_item(const DecodeStackArgs& a, const StackLayer& L, const float* qkvsum, int g, int s, int S,
                               int pos, int slot, const float (&cs)[2], const float (&sn)[2], bf16* qs,
                               uint8_t* stage, bool staged, int* tickets, unsigned* merged, bool stage_merge,
                               unsigned long long* trace, int lane) {
  constexpr int D = kStackHeadDim, half = D / 2;
  const int Hq = a.q_heads, Hkv = a.kv_heads;
  const int nkeys = pos + 1;
  int k0, k1;
  split_keys(s, S, nkeys, k0, k1);
  // q's, and for the split with the new key k's and v's, sums of the lane's dims (i, i + half
  // for i = lane, lane + 32): every load issued before the first store, one L2 round trip.
  // (Rotating and storing as it loaded, the split with the new key waited for three: q's,
  // then k's and v's at each r behind the stores before them; the SASS of session 30's
  // profile, call 2.)
  const bool new_key = k1 == nkeys;
  float qv[G][2][2], kv[2][2] = {{0, 0}, {0, 0}}, vv[2][2] = {{0, 0}, {0, 0}};
#pragma unroll
  for (int gi = 0; gi < G; ++gi) {
    const float* x = qkvsum + (g * G + gi) * D;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      qv[gi][r][0] = __ldcg(x + lane + 32 * r);
      qv[gi][r][1] = __ldcg(x + lane + 32 * r + half);
    }
  }
  if (new_key) {
    const float* xk = qkvsum + (Hq + g) * D;
    const float* xv = qkvsum + (Hq + Hkv + g) * D;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      kv[r][0] = __ldcg(xk + lane + 32 * r);
      kv[r][1] = __ldcg(xk + lane + 32 * r + half);
      vv[r][0] = __ldcg(xv + lane + 32 * r);
      vv[r][1] = __ldcg(xv + lane + 32 * r + half);
    }
  }
  // RoPE (rope_kernel's: the projection's bf16, rotated in float, rounded).
#pragma unroll
  for (int gi = 0; gi < G; ++gi) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = lane + 32 * r;
      rope_rotate(bfr(qv[gi][r][0]), bfr(qv[gi][r][1]), cs[r], sn[r], &qs[gi * D + i], &qs[gi * D + i + half]);
    }
  }
  if (new_key) {  // the split with the new key stores it (and stages it, if it is in the first chunk)
    const size_t row = (static_cast<size_t>(slot) * Hkv + g) * D;
    bf16* kc = static_cast<bf16*>(L.k_cache) + row;
    bf16* vc = static_cast<bf16*>(L.v_cache) + row;
    const bool in_stage = staged && pos - k0 < 32;
    bf16* sk = reinterpret_cast<bf16*>(stage + (pos - k0) * kKRowBytes);
    bf16* sv = reinterpret_cast<bf16*>(stage + 32 * kKRowBytes + (pos - k0) * kVRowBytes);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = lane + 32 * r;
      bf16 ka, kb;
      rope_rotate(bfr(kv[r][0]), bfr(kv[r][1]), cs[r], sn[r], &ka, &kb);
      const bf16 va = __float2bfloat16(vv[r][0]), vb = __float2bfloat16(vv[r][1]);
      kc[i] = ka;
      kc[i + half] = kb;
      vc[i] = va;
      vc[i + half] = vb;
      if (in_stage) {
        sk[i] = ka;
        sk[i + half] = kb;
        sv[i] = va;
        sv[i + half] = vb;
      }
    }
  }
  if (staged) cp_async_wait<0>();
  __syncwarp();  // q and the staged keys in shared memory, the new k / v in global memory, for every lane
  if (trace != nullptr && lane == 0) trace[kTraceAttnQ] = global_ns();
  if (a.mma_keys && staged && k1 - k0 <= 32) {
    attend_staged_mma<G>(qs, stage, k1 - k0, a.scale,
                         a.partials + (static_cast<size_t>(g * G) * kStackMaxSplits + s) * kStackPartFloats, lane);
  } else {
    float m[G], l[G], acc[G][4];
    attend_keys<G>(a, L, g, k0, k1, qs, stage, staged, lane, m, l, acc);
#pragma unroll
    for (int gi = 0; gi < G; ++gi) {
      float* out = a.partials + (static_cast<size_t>(g * G + gi) * kStackMaxSplits + s) * kStackPartFloats;
      if (lane == 0) {
        out[0] = m[gi];
        out[1] = l[gi];
      }
      *reinterpret_cast<float4*>(out + 4 + 4 * lane) = make_float4(acc[gi][0], acc[gi][1], acc[gi][2], acc[gi][3]);
    }
  }
  if (trace != nullptr && lane == 0) trace[kTraceAttnKeys] = global_ns();
  if (stage_merge) return;
  // The last split of kv head g to finish merges its heads (the threadFenceReduction pattern).
  __threadfence();
  __syncwarp();
  int ticket = 0;
  if (lane == 0) ticket = atomicAdd(&tickets[g], 1);
  ticket = __shfl_sync(0xffffffffu, ticket, 0);
  if (trace != nullptr && lane == 0) trace[kTraceAttnTicket] = global_ns();
  if (ticket != S - 1) return;
  __threadfence();
  if (lane == 0) tickets[g] = 0;  // for the next layer (after barriers)
#pragma unroll  // the G heads' merges independent: their loads in flight together
  for (int gi = 0; gi < G; ++gi)
    merge_partials(a.partials + static_cast<size_t>(g * G + gi) * kStackMaxSplits * kStackPartFloats, S, lane,
                      static_cast<bf16*>(a.attn_out) + (g * G + gi) * D + 4 * lane);
  if (merged != nullptr) flag_add(merged, 1u, lane);  // the flags form: kv head g's heads are in attn_out
}

// CTA (DecodeStackArgs::stage_merge): o_proj's input xs ([Hq D]: bf16 values, stored
// as bf16 or with kF16 as f16, f16x2_of) merged from the splits'
// partials after the barrier that ends the attention, for the heads [h0, h1) that the CTA's
// o_proj units read (stack_cta_groups). kMergeWays threads a head's 8 dims, way w taking splits
// w, w + kMergeWays, .. (kStackMaxSplits / kMergeWays rounds), then the ways combined by
// shuffles within their aligned group of lanes (a thread walking all of a head's splits four at
// a time waited for a round trip every four: docs/performance.md, session 27). One round, a
// split a way: with 4 ways (4 rounds, 40 registers of loads) ptxas issued the last round's
// loads after the first round's arithmetic, a second L2 round trip past 12 splits (the SASS of
// session 30's profile, call 2). 2 heads a pass of the crew's 512 threads (480 with the row
// ring: a pass then ends inside a head, which the next takes up). A warp's lanes run together
// (the shuffles): a lane past h1 merges nothing and stores nothing.
constexpr int kMergeWays = kStackMaxSplits;
static_assert(kStackMaxSplits % kMergeWays == 0, "a way's splits");
template <class C, bool kF16>
__device__ __forceinline__ void stage_merged_attention(const float* partials, int h0, int h1, int S, bf16* xs) {
  constexpr int D = kStackHeadDim, kChunks = D / 8, kPer = kChunks * kMergeWays, kRounds = kStackMaxSplits / kMergeWays;
  const int lane = threadIdx.x & 31;
  for (int base = h0 * kPer + C::rank() - lane; base < h1 * kPer; base += C::kCount) {
    const int p = base + lane;
    const bool valid = p < h1 * kPer;
    const int head = p / kPer, chunk = p / kMergeWays % kChunks, way = p % kMergeWays;
    const float* ph = partials + static_cast<size_t>(head) * kStackMaxSplits * kStackPartFloats;
    float mt[kRounds], lt[kRounds];
    float4 a0[kRounds], a1[kRounds];
#pragma unroll
    for (int r = 0; r < kRounds; ++r) {
      const int t = way + kMergeWays * r;
      if (valid && t < S) {
        const float* pt = ph + t * kStackPartFloats;
        mt[r] = __ldcg(pt);
        lt[r] = __ldcg(pt + 1);
        a0[r] = __ldcg(reinterpret_cast<const float4*>(pt + 4 + 8 * chunk));
        a1[r] = __ldcg(reinterpret_cast<const float4*>(pt + 8 + 8 * chunk));
      } else {
        mt[r] = -INFINITY;
        lt[r] = 0.0f;
        a0[r] = a1[r] = make_float4(0, 0, 0, 0);
      }
    }
    float M = -INFINITY, den = 0.0f, num[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int r = 0; r < kRounds; ++r) {
      const float n2[8] = {a0[r].x, a0[r].y, a0[r].z, a0[r].w, a1[r].x, a1[r].y, a1[r].z, a1[r].w};
      stack_merge_softmax(M, den, num, mt[r], lt[r], n2);
    }
#pragma unroll
    for (int o = 1; o < kMergeWays; o <<= 1) {
      float n2[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) n2[e] = __shfl_xor_sync(0xffffffffu, num[e], o);
      const float m2 = __shfl_xor_sync(0xffffffffu, M, o), l2 = __shfl_xor_sync(0xffffffffu, den, o);
      stack_merge_softmax(M, den, num, m2, l2, n2);
    }
    if (valid && way == 0) {
      const float inv = 1.0f / den;
      __nv_bfloat162 v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) v[e] = __floats2bfloat162_rn(num[2 * e] * inv, num[2 * e + 1] * inv);
      uint4 o = *reinterpret_cast<const uint4*>(v);  // bf16, as attn_out holds it; f16 for an f16 input
      if constexpr (kF16) o = f16_of8(o);
      *reinterpret_cast<uint4*>(xs + head * D + 8 * chunk) = o;
    }
  }
}
// The columns [*c0, *c1) of matrix m's input that this CTA's units read (stack_cta_groups),
// for CTAs of cta_warps streaming warps.
__device__ __forceinline__ void cta_columns(const StackMatrix& m, int cta_warps, int* c0, int* c1) {
  int g0, g1;
  stack_cta_groups(m.units, m.N / 32, m.group_block, blockIdx.x, gridDim.x, cta_warps, &g0, &g1);
  const int cols = m.K / m.groups;
  *c0 = g0 * cols;
  *c1 = g1 * cols;
}

// Warp: the cached keys and values of the lanes' keys of split s of S (the new key at
// pos excepted) into L2 (prefetch.global.L2, no registers held), before the wait for
// qkv, for the CTA attention's warps that have no stage (attention_cta).
__device__ __forceinline__ void prefetch_chunk_l2(const DecodeStackArgs& a, const StackLayer& L, int g, int s, int S,
                                                  int pos, int lane) {
  size_t off;
  if (chunk_key_offset(a, g, s, S, pos, lane, &off)) {
    const bf16* k = static_cast<const bf16*>(L.k_cache) + off;
    const bf16* v = static_cast<const bf16*>(L.v_cache) + off;
    asm volatile("prefetch.global.L2 [%0];" ::"l"(k));       // D bf16 = 256 B: two 128-byte lines
    asm volatile("prefetch.global.L2 [%0];" ::"l"(k + 64));
    asm volatile("prefetch.global.L2 [%0];" ::"l"(v));
    asm volatile("prefetch.global.L2 [%0];" ::"l"(v + 64));
  }
}

// The CTA attention (DecodeStackArgs::cta_attention): CTA g (< Hkv), all its threads,
// takes kv head g over all nkeys = pos + 1 keys, in S = ceil(nkeys / 32) splits (at
// most kStackMaxKeys / 32 = 16: one a warp, a key a lane). First the CTA rotates the G
// heads' q into qs and stores the new key's k and v (into the stage too when warp 0's
// staged chunk holds it: split 0 is always staged, prefetch_chunk before the wait for qkv);
// warp w < S then runs split w (attend_keys; warp 0's from the stage), and the splits are merged in shared memory (scratch: f32
// [kStackWarps][G][2] of (max, sum), then [G][D] of the sum, added by shared atomics) into
// attn_out: no partials or tickets in global memory. cs, sn: as attention_item's.
// Not inlined: the serving form keeps its registers (inlined, every form spilled several
// times more, ptxas -v).
template <int G>
__device__ __noinline__ void attention_cta(const DecodeStackArgs& a, const StackLayer& L, const float* qkvsum, int g, int pos,
                              int slot, const float (&cs)[2], const float (&sn)[2], bf16* qs, uint8_t* stage,
                              float* scratch, int warp, int lane) {
  constexpr int D = kStackHeadDim, half = D / 2;
  const int Hq = a.q_heads, Hkv = a.kv_heads, nkeys = pos + 1, S = (nkeys + 31) / 32;
  float* ml = scratch;                         // [kStackWarps][G][2] (the layout's room)
  float* sum = scratch + kStackWarps * G * 2;  // [G][D]
  // Warps 0 .. 2G - 1: half r of the pairs of q head gi; warps 2G, 2G + 1: half r of k and v.
  if (warp < 2 * G) {
    const int gi = warp >> 1, r = warp & 1, i = lane + 32 * r;
    const float* x = qkvsum + (g * G + gi) * D;
    rope_rotate(bfr(__ldcg(x + i)), bfr(__ldcg(x + i + half)), cs[r], sn[r], &qs[gi * D + i], &qs[gi * D + i + half]);
  } else if (warp < 2 * G + 2) {
    const int r = warp - 2 * G, i = lane + 32 * r;
    const size_t row = (static_cast<size_t>(slot) * Hkv + g) * D;
    const float* xk = qkvsum + (Hq + g) * D;
    const float* xv = qkvsum + (Hq + Hkv + g) * D;
    bf16 ka, kb;
    rope_rotate(bfr(__ldcg(xk + i)), bfr(__ldcg(xk + i + half)), cs[r], sn[r], &ka, &kb);
    const bf16 va = __float2bfloat16(__ldcg(xv + i)), vb = __float2bfloat16(__ldcg(xv + i + half));
    bf16* kc = static_cast<bf16*>(L.k_cache) + row;
    bf16* vc = static_cast<bf16*>(L.v_cache) + row;
    kc[i] = ka;
    kc[i + half] = kb;
    vc[i] = va;
    vc[i + half] = vb;
    if (S == 1) {  // split 0 holds the new key, row pos of the stage (written by these warps, not warp 0)
      bf16* sk = reinterpret_cast<bf16*>(stage + pos * kKRowBytes);
      bf16* sv = reinterpret_cast<bf16*>(stage + 32 * kKRowBytes + pos * kVRowBytes);
      sk[i] = ka;
      sk[i + half] = kb;
      sv[i] = va;
      sv[i + half] = vb;
    }
  }
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) sum[i] = 0.0f;
  if (warp == 0) cp_async_wait<0>();
  __syncthreads();  // q, the new key (caches and stage), the staged chunk, the zeroed sum: for every thread
  float m[G], l[G], acc[G][4];
  if (warp < S) {
    int k0, k1;
    split_keys(warp, S, nkeys, k0, k1);
    attend_keys<G>(a, L, g, k0, k1, qs, stage, warp == 0, lane, m, l, acc);
    if (lane == 0) {
#pragma unroll
      for (int gi = 0; gi < G; ++gi) {
        ml[(warp * G + gi) * 2] = m[gi];
        ml[(warp * G + gi) * 2 + 1] = l[gi];
      }
    }
  }
  __syncthreads();
  if (warp < S) {
#pragma unroll
    for (int gi = 0; gi < G; ++gi) {
      float M = -INFINITY;
      for (int t = 0; t < S; ++t) M = fmaxf(M, ml[(t * G + gi) * 2]);
      float den = 0.0f;
      for (int t = 0; t < S; ++t) den = fmaf(__expf(ml[(t * G + gi) * 2] - M), ml[(t * G + gi) * 2 + 1], den);
      const float f = __expf(m[gi] - M) / den;
#pragma unroll
      for (int e = 0; e < 4; ++e) atomicAdd(&sum[gi * D + 4 * lane + e], acc[gi][e] * f);
    }
  }
  __syncthreads();
  bf16* o = static_cast<bf16*>(a.attn_out) + g * G * D;  // heads g G .. g G + G - 1
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) o[i] = __float2bfloat16(sum[i]);
}

// What a matrix does with the flags form's counters (the kernel's run_matrix).
enum : int { kRolePlain, kRoleQkv, kRoleO, kRoleGateUp, kRoleDown, kRoleSlice, kRoleSliceDown };
template <int R>
struct Role {
  static constexpr int value = R;
};

// kTrace: a.trace is set; kRowRing: a.row_ring; kFlags: a.flags (forms of their own, so that
// the default form carries none of their code or registers).
template <int SU, bool kBias, bool kTrace, bool kRowRing, bool kFlags>
__global__ void __launch_bounds__(stack_cta_warps(SU * 64, kRowRing) * 32, 1)
    decode_stack_kernel(const __grid_constant__ DecodeStackArgs a) {
  static_assert(!(kRowRing && kFlags), "the row ring runs the barrier form's phases");
  constexpr int kWarps = stack_cta_warps(SU * 64, kRowRing), kThreads = kWarps * 32;
  constexpr int kChains = stack_mma_chains(kWarps);  // compute_unit's mma chains a tile
  using C = Crew<kRowRing, kThreads>;
  // The streaming warps a CTA: warps first_sw .. kWarps - 1, as many as stack_stream_warps(SU *
  // 64, kRowRing, a.warp0_streams), whose rule this spells out (decode_stack_supports checks the images were
  // built for it); written so, since the helper's form changed the kernel's PTX.
  const int first_sw = kRowRing || !a.warp0_streams ? 1 : 0, cta_warps = kWarps - first_sw;
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr int UB = Unit<SU>::kBytes, D = kStackHeadDim;
  const int H = a.H, I = a.I, Hq = a.q_heads, Hkv = a.kv_heads, G = Hq / Hkv;
  const int QKV = (Hq + 2 * Hkv) * D;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  // The threads' cursors and the grid barrier's target in static shared memory
  // (kStackStaticSmemBytes; at addresses the compiler knows, which it keeps out of registers).
  __shared__ UnitCursor cursors[kThreads];
  __shared__ StackWarpRange ranges[kWarps][4];  // each streaming warp's of the four matrices (m & 3)
  __shared__ unsigned long long bar_target[1];  // grid_barrier's (the crew's first thread's)
  // The row ring (kRowRing): its rows' barriers (full: the row's bytes landed; empty: the
  // kRowRingWarps streaming warps done with it), its producer, and the signals between the crew
  // and warp 0: the crew's grid barriers passed (crew_phase: 8 l + k + 1 after barrier k of
  // layer l) and the layers whose attention warp 0 has done (attn_done).
  __shared__ uint64_t row_full[kStackMaxRingRows], row_empty[kStackMaxRingRows];
  __shared__ RowProducer producer;
  __shared__ unsigned crew_phase, attn_done, in_matrix;
  // The columns [c0, c1) of o_proj's and of down_proj's inputs that this CTA's units read
  // (cta_columns), worked out once a launch: at each layer their 32-bit divisions lay on the
  // path from the grid barrier to the o stage and the GLU.
  __shared__ int stage_cols[4];
  // The dynamic regions (stack_smem_layout); the streaming warps' input scratch is for
  // GluInput and MergedInput.
  const int scratch_bytes = stack_warp_scratch_bytes(kFlags, a.warp_merge);
  const StackSmemLayout lay = stack_smem_layout(H, I, Hq, Hkv, a.cta_attention, scratch_bytes);
  bf16* xs = reinterpret_cast<bf16*>(smem);                 // the matrix's input (and attention_cta's scratch)
  bf16* hs = reinterpret_cast<bf16*>(smem + lay.hs);        // [H] the residual
  float* red = reinterpret_cast<float*>(smem + lay.red);    // [32]
  bf16* qs = reinterpret_cast<bf16*>(smem + lay.qs);        // [G][D] warp 0's q
  uint8_t* stage = smem + lay.stage;                         // [kStageBytes] warp 0's first chunk
  // The cluster MLP form's: the CTA's gate_up sums [kStackSliceCols] and its cluster's GLU
  // [kStackSliceCols], in xs past gate_up's input (stack_cluster_mlp_fits leaves the room).
  float* gul = reinterpret_cast<float*>(xs + a.H);
  bf16* dx = xs + a.H + 2 * kStackSliceCols;
  // The warp's place among the CTA's streaming warps (0 for a warp 0 that does not stream).
  const int sw = max(warp - first_sw, 0);
  bf16* warp_scratch = reinterpret_cast<bf16*>(smem + lay.scratch + sw * scratch_bytes);
  // The warp's ring, or with kRowRing the CTA's (a.ring_depth rows of kRowRingWarps units).
  uint8_t* ring = smem + lay.ring + (kRowRing ? 0 : static_cast<size_t>(sw) * a.ring_depth * UB);
  const int W = gridDim.x * cta_warps, gw = blockIdx.x * cta_warps + sw;
  const bool streams = warp >= first_sw;  // warp 0 (unless warp0_streams): no units
  const uint32_t magic = opaque(0x43004300u);
  float* const qkvsum = a.sums;     // [QKV]
  float* const osum = qkvsum + QKV;  // [2][H]: buffer l & 1 in the flags form, else 0
  float* const gusum = osum + 2 * H; // [2 I]
  float* const dsum = gusum + 2 * I; // [2][H], as osum
  const int M = 4 * a.layers;

  // The ring's cursor through the warp's units of every matrix (weights only: nothing
  // the kernels before write, so it starts before the PDL wait). Each thread's copy of the
  // cursor lives in static shared memory (cursors[tid]: the lanes
  // of a warp hold equal copies and none reads another's): in registers it was live through
  // the whole kernel, and at the kernel's 128-register limit ptxas spilled it and each unit
  // reloaded it from local memory (SASS, session 24's call 2). With it, the residual and the
  // barrier's target in shared memory, most of the kernel's spills went (ptxas -v,
  // docs/performance.md, session 25).
  UnitCursor& ring_at = cursors[tid];
  int issue_slot = 0;  // the ring slot the next unit goes to
  auto issue = [&]() {
    if (!ring_at.done(M)) {
      const uint4* src = reinterpret_cast<const uint4*>(ring_at.src);
      uint4* dst = reinterpret_cast<uint4*>(ring + issue_slot * UB);
#pragma unroll
      for (int k = 0; k < Unit<SU>::kCodeVecs / 32; ++k) cp_async16(dst + lane + 32 * k, src + lane + 32 * k);
      if (lane < 8) cp_async16(dst + Unit<SU>::kCodeVecs + lane, src + Unit<SU>::kCodeVecs + lane);
      ring_at.advance(a, ranges[warp], M, W * UB);
    }
    cp_async_commit();  // an empty group past the end keeps the count
    if (++issue_slot == a.ring_depth) issue_slot = 0;
  };
  // The row ring's producer: fills the ring while a slot is free, up to a.rows_in_flight rows;
  // when it could issue nothing, it backs off a little (its polls take issue slots from the
  // streaming warps that share its scheduler).
  const int window_rows = a.window_rows_in_flight < 0 ? a.rows_in_flight : a.window_rows_in_flight;
  auto pump = [&]() {
    const int P = load_acquire_cta(&in_matrix) != 0 ? a.rows_in_flight : window_rows;
    if (!pump_rows(producer, a, ring, row_full, row_empty, W, M, UB, a.ring_depth, P)) __nanosleep(32);
  };
  // The warp's ranges of the four matrices, a lane each (weights only: before the PDL wait).
  if (streams && lane < 4) {
    const StackMatrix& mt = stack_matrix(a, lane);
    ranges[warp][lane] = a.cluster_mlp && lane >= 2
                             ? stack_cluster_range(lane == 3, mt.N / 32, mt.groups, mt.group_block, W, cta_warps, gw, UB)
                             : stack_warp_range(mt.units, mt.N / 32, mt.group_block, W, gw, UB);
  }
  __syncwarp();
  // (Read after the crew's barriers that end layer 0's qkv norm.)
  if (tid == C::kFirst) {
    cta_columns(a.layer[0].o, cta_warps, &stage_cols[0], &stage_cols[1]);
    cta_columns(a.layer[0].down, cta_warps, &stage_cols[2], &stage_cols[3]);
  }
  if constexpr (kRowRing) {
    if (tid == 0) {
      for (int r = 0; r < a.ring_depth; ++r) {
        mbar_init(row_full + r, 1);  // the producer's expect_tx; the bytes complete it
        mbar_init(row_empty + r, kRowRingWarps);
      }
      int m0 = 0;  // the first matrix with rows for this CTA
      while (m0 < M && cta_row_count(cta_rows(stack_matrix(a, m0).units, blockIdx.x, W, 0)) == 0) ++m0;
      producer = RowProducer{m0, 0, 0u, 0u};
      crew_phase = 0;
      attn_done = 0;
      in_matrix = 1;  // the first matrix's rows at the full rate
      mbar_init_fence();
    }
    __syncthreads();
    if (tid == 0) pump();
  } else if (streams) {
    ring_at.start(a, ranges[warp], M);
#pragma unroll 1
    for (int j = 0; j < a.ring_depth; ++j) issue();
  }
  pdl_launch_dependents();
  pdl_wait();

  const int pos = __ldcg(a.position);
  const int cache_slot = __ldcg(a.slot);  // the new token's cache row (read once, not at each layer's attention)
  // Key splits a kv head: attention_item's (~32 keys each, over the CTAs' warps 0), or
  // with cta_attention one a warp of CTA g (attention_cta).
  const int S = a.cta_attention ? (pos + 32) / 32 : attention_splits(pos + 1);
  // RoPE's cos and sin at pos of pairs lane and lane + 32, for every layer's q and k.
  float cs[2], sn[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) rope_cos_sin(pos, a.inv_freq[lane + 32 * r], &cs[r], &sn[r]);
  int* const tickets = a.barrier + kStackTicketsAt;  // [Hkv] arrivals of the attention splits
  // The flags form's counters (DecodeStackArgs::flags) and what each counts in a layer:
  // qkv_units, the units of kv head g's rows (its G q heads, k and v: D / 32 tile pairs
  // each); one merge of kv head g; glu_units, the units of gate_up's tile pairs that make
  // down_proj's column group c (its group / 16 gate tiles).
  unsigned* const qkv_flags = reinterpret_cast<unsigned*>(a.barrier + kStackQkvFlagsAt);
  unsigned* const attn_flags = reinterpret_cast<unsigned*>(a.barrier + kStackAttnFlagsAt);
  unsigned* const glu_flags = reinterpret_cast<unsigned*>(a.barrier + kStackGluFlagsAt);
  const int o_group = a.layer[0].o.K / a.layer[0].o.groups, down_group = I / a.layer[0].down.groups;
  const unsigned qkv_units = stack_qkv_flag_units(Hq, Hkv, a.layer[0].qkv.groups);
  const unsigned glu_units = stack_glu_flag_units(down_group, a.layer[0].gate_up.groups);
  unsigned long long* const bar_count = reinterpret_cast<unsigned long long*>(a.barrier);
  unsigned long long* const bar_base = reinterpret_cast<unsigned long long*>(a.barrier + 32);
  if (tid == C::kFirst) *bar_target = __ldcg(bar_base);
  // Layer l's trace row of this CTA (DecodeStackArgs::trace), or none.
  auto trace_row = [&](int l) {
    return kTrace ? a.trace + (static_cast<size_t>(l) * gridDim.x + blockIdx.x) * kStackTracePoints : nullptr;
  };
  auto mark = [&](int l, int point) {
    if (kTrace && tid == C::kFirst) trace_row(l)[point] = global_ns();
  };
  // The marks of streaming warp 1 (its lane 0, thread 32) in each matrix (kTraceQkvSetup ..).
  auto mark_warp1 = [&](int l, int point) {
    if (kTrace && tid == 32) trace_row(l)[point] = global_ns();
  };
  // Barrier k of layer l (0 .. 4; its trace points kTraceArrive0 + 2k and the next). With the
  // row ring, barrier 2 (after the attention) waits for warp 0's attention of layer l, and each
  // barrier tells warp 0 it has been passed.
  auto barrier = [&](int l, int k) {
    unsigned long long* t = kTrace ? trace_row(l) + kTraceArrive0 + 2 * k : nullptr;
    if constexpr (kRowRing) {
      grid_barrier<C>(bar_count, bar_target, t, k == 2 ? &attn_done : nullptr, static_cast<unsigned>(l + 1),
                      &crew_phase, static_cast<unsigned>(8 * l + k + 1), &in_matrix);
    } else {
      grid_barrier<C>(bar_count, bar_target, t);
    }
  };
  // Warp 0's first attention item (CTA c takes item c; with cta_attention, split 0 of
  // kv head c): its keys are loaded before the wait for qkv.
  const bool staged_item = warp == 0 && static_cast<int>(blockIdx.x) < (a.cta_attention ? Hkv : Hkv * S);
#pragma unroll  // the residual: this crew thread's float4s of it into hs
  for (int j = 0; j < C::kHVecs; ++j) {
    const int i = 4 * (C::rank() + j * C::kCount);
    if (i < H && tid >= C::kFirst)
      *reinterpret_cast<uint2*>(hs + i) = __ldcg(reinterpret_cast<const uint2*>(static_cast<const bf16*>(a.residual) + i));
  }
  int consume_slot = 0;  // the ring slot of the next unit to compute
  // The warp's units of matrix m, its sums added to out, its input read through x
  // (SharedInput, L2Input, GluInput). role (a Role): in the flags form, the counters its
  // tile pairs' flushes add to (kRoleQkv: kv head g's; kRoleGateUp: down's column
  // group's), or wait on before a unit (kRoleO: the attention of the unit's head;
  // kRoleDown: the GLU's column group), up to `target`; kRolePlain: neither; kRoleSlice: the
  // cluster MLP's gate_up, whose flushes go to the CTA's shared sums (flush_pair_local);
  // kRoleSliceDown: its down_proj.
  auto run_matrix = [&](int m, float* out, const auto& x, auto role, unsigned target) {
    constexpr int R = decltype(role)::value;
    if (!streams) return;
    const StackMatrix& mt = stack_shape(a, m);  // (its image is the ring cursor's business)
    if (kRowRing && tid == C::kFirst) store_release_cta(&in_matrix, 1);  // the window is over
    const StackWarpRange& range = ranges[warp][m & 3];
    const int n = range.n;
    const int gb = mt.group_block;  // the unit order (stack_unit_pair_group)
    const bool meta_f16 = mt.meta_f16;
    // The row ring: the CTA's rows before matrix m's (every layer's matrices have the same
    // units), this warp's place in the packed row, and whether the CTA has one.
    [[maybe_unused]] CtaRows rows;
    [[maybe_unused]] unsigned rr = 0;
    if constexpr (kRowRing) {
      const int per_layer = cta_row_count(cta_rows(a.layer[0].qkv.units, blockIdx.x, W, 0)) +
                            cta_row_count(cta_rows(a.layer[0].o.units, blockIdx.x, W, 0)) +
                            cta_row_count(cta_rows(a.layer[0].gate_up.units, blockIdx.x, W, 0)) +
                            cta_row_count(cta_rows(a.layer[0].down.units, blockIdx.x, W, 0));
      rr = static_cast<unsigned>((m >> 2) * per_layer);
      for (int j = 4 * (m >> 2); j < m; ++j) rr += cta_row_count(cta_rows(stack_shape(a, j).units, blockIdx.x, W, 0));
      rows = cta_rows(mt.units, blockIdx.x, W, gw);
    }
    [[maybe_unused]] const int rows_r = a.ring_depth;  // the row ring's rows
    int pair = range.pair, grp = range.grp;
    int gi = range.gi;              // grp's place in its block
    if (n > 0) mark_warp1(m >> 2, kTraceQkvSetup + (m & 3));
    float acc[2][2] = {{0, 0}, {0, 0}};
    int in_pair = 0;                // units of `pair` summed (producers)
    int pending = -1;               // the counter the units summed since the last flag_add go to
    unsigned pending_units = 0;
    int ready = -1;                 // the last counter seen at its target (consumers)
    auto flush = [&]() {
      if constexpr (R == kRoleSlice) {  // the cluster MLP's gate_up: into the CTA's sums
        flush_pair_local(gul, pair - static_cast<int>(blockIdx.x) * (kStackSliceCols / 32), acc, lane);
      } else {
        flush_pair(mt, out, pair, acc, lane);
      }
      if constexpr (R == kRoleQkv || R == kRoleGateUp) {
        const int f = R == kRoleQkv ? stack_qkv_flag(pair, Hq, Hkv) : stack_glu_flag(pair, down_group);
        if (f != pending) {
          if (pending >= 0)
            flag_add((R == kRoleQkv ? qkv_flags : glu_flags) + pending * kStackFlagStride, pending_units, lane);
          pending = f;
          pending_units = 0;
        }
        pending_units += static_cast<unsigned>(in_pair);
        in_pair = 0;
      }
    };
#pragma unroll 1
    for (int k = 0; k < n; ++k) {
      if constexpr (R == kRoleO || R == kRoleDown) {
        const int f = R == kRoleO ? stack_o_flag(grp, o_group, Hq, Hkv) : grp;
        if (f != ready) {
          flag_wait((R == kRoleO ? attn_flags : glu_flags) + f * kStackFlagStride, target, lane);
          ready = f;
        }
      }
      if constexpr (std::decay_t<decltype(x)>::kStaging == 1) x.stage(grp, lane);
      if constexpr (kRowRing) {  // unit k: its row's place, or its place in the packed row
        const int slot = static_cast<int>(rr % rows_r);
        mbar_wait(row_full + slot, (rr / rows_r) & 1u);
        if (k == 0) mark_warp1(m >> 2, kTraceQkvUnit + (m & 3));
        compute_unit<SU, kBias, kChains>(ring + (static_cast<size_t>(slot) * kRowRingWarps + (k < rows.n ? warp - 1 : rows.pos)) * UB,
                                x, grp, acc, lane, magic, meta_f16);
        __syncwarp();
        if (lane == 0) mbar_arrive(row_empty + slot);
        ++rr;
      } else {
        ring_wait(a.ring_depth);
        if (k == 0) mark_warp1(m >> 2, kTraceQkvUnit + (m & 3));
        __syncwarp();
        compute_unit<SU, kBias, kChains>(ring + consume_slot * UB, x, grp, acc, lane, magic, meta_f16);
        __syncwarp();
        issue();
        if (++consume_slot == a.ring_depth) consume_slot = 0;
      }
      if constexpr (R == kRoleQkv || R == kRoleGateUp) ++in_pair;
      if (gi == gb - 1) {  // the tile pair's last group of the block: its sums out
        flush();
        acc[0][0] = acc[0][1] = acc[1][0] = acc[1][1] = 0.0f;
      }
      stack_next_unit(mt.N / 32, gb, &pair, &grp, &gi);
    }
    if (n > 0) mark_warp1(m >> 2, kTraceQkvLast + (m & 3));
    if (n > 0 && gi != 0) flush();
    if constexpr (kRowRing) {
      // A packed row without a unit of this warp: released once it has landed (so that this
      // arrival counts toward its phase, not the slot's last).
      if (rows.packed > 0 && n == rows.n) {
        const int slot = static_cast<int>(rr % rows_r);
        mbar_wait(row_full + slot, (rr / rows_r) & 1u);
        if (lane == 0) mbar_arrive(row_empty + slot);
      }
    }
    if constexpr (R == kRoleQkv || R == kRoleGateUp) {
      if (pending >= 0)
        flag_add((R == kRoleQkv ? qkv_flags : glu_flags) + pending * kStackFlagStride, pending_units, lane);
    }
  };
  // The matrices' staged inputs: f16 for qkv, o and gate_up (a normed h, the attention's
  // output: compute_unit's f16 codes take a quarter fewer instructions a unit), bf16 for
  // down_proj's GLU (whose values may pass f16's 65504) and for the final norm's output.
  const SharedInput<true> staged_f16{xs};
  const SharedInput<false> staged_x{xs};
  constexpr bool flags = kFlags;
  // The barrier form's o_proj input merged by each warp (DecodeStackArgs::warp_merge); the
  // attention items then leave their partials to the merge, as with stage_merge.
  const bool warp_merge = a.warp_merge && !flags && !a.cta_attention;
  const bool stage_merge = (a.stage_merge || warp_merge) && !flags && !a.cta_attention;
  // Warp 0's attention items of layer l (kv head, split), spread over the CTAs' warps 0.
  auto attention_items = [&](int l, const StackLayer& L) {
    for (int item = warp == 0 && !a.cta_attention ? static_cast<int>(blockIdx.x) : Hkv * S; item < Hkv * S;
         item += static_cast<int>(gridDim.x)) {
      const int g = item / S, s = item % S;
      const bool staged = staged_item && item == static_cast<int>(blockIdx.x);
      unsigned* const merged = flags ? attn_flags + g * kStackFlagStride : nullptr;
      unsigned long long* const item_trace = kTrace ? trace_row(l) : nullptr;
      if (flags) flag_wait(qkv_flags + g * kStackFlagStride, static_cast<unsigned>(l + 1) * qkv_units, lane);
      switch (G) {  // the q heads of a kv head as a constant: their sums stay in registers
        case 1: attention_item<1>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
        case 2: attention_item<2>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
        case 3: attention_item<3>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
        case 4: attention_item<4>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
        case 5: attention_item<5>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
        case 6: attention_item<6>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
        case 7: attention_item<7>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
        default: attention_item<8>(a, L, qkvsum, g, s, S, pos, cache_slot, cs, sn, qs, stage, staged, tickets, merged, stage_merge, item_trace, lane); break;
      }
    }
  };

  if constexpr (kRowRing) {
    if (warp == 0) {
      // Warp 0: per layer, its item's first keys into the stage, the ring filled until the
      // crew has passed the barrier after qkv (qkv's sums complete), the attention, and the
      // crew told; then the ring filled to its last row. It takes no part in the crew's work.
#pragma unroll 1
      for (int l = 0; l < a.layers; ++l) {
        const StackLayer& L = a.layer[l];
        if (staged_item) prefetch_chunk(a, L, blockIdx.x / S, blockIdx.x % S, S, pos, stage, lane);
        if (lane == 0)
          while (load_acquire_cta(&crew_phase) < static_cast<unsigned>(8 * l + 2)) pump();
        __syncwarp();
        attention_items(l, L);
        if (kTrace && lane == 0) trace_row(l)[kTraceAttentionDone] = global_ns();
        __syncwarp();  // every lane's partials and cache stores before lane 0's release
        if (lane == 0) store_release_cta(&attn_done, static_cast<unsigned>(l + 1));
      }
      if (lane == 0)
        while (producer.m < M) pump();
      cp_async_wait<0>();
      return;
    }
  }

#pragma unroll 1
  for (int l = 0; l < a.layers; ++l) {
    const StackLayer& L = a.layer[l];
    // o's and down's sums: this layer's buffer and the last layer's (the flags form
    // alternates them, so that each is zeroed with a grid barrier between its last read and
    // its next write; the other form has the barriers and uses buffer 0).
    float* const o_out = osum + (flags ? l & 1 : 0) * H;
    float* const d_out = dsum + (flags ? l & 1 : 0) * H;
    float* const o_last = osum + (flags ? (l + 1) & 1 : 0) * H;
    float* const d_last = dsum + (flags ? (l + 1) & 1 : 0) * H;
    const unsigned layer_n = static_cast<unsigned>(l + 1);
    mark(l, kTraceLayerStart);
    // qkv: x = norm(h, input_norm), h first taking the last layer's down_proj.
    uint2 norm_w[C::kHVecs];
    load_norm_weights<C>(L.input_norm_w, H, norm_w);
    if (l > 0) {
      barrier(l, 0);
      add_sums<C>(hs, d_last, H);
      if (a.cluster_mlp) {
        zero_sums<C>(osum, H);  // read after barrier 3 (the form has no barrier 4)
      } else {
        zero_sums<C>(gusum, 2 * I);  // read by every CTA before the barrier
      }
      if (flags) zero_sums<C>(o_last, H);
    }
    stage_norm<C, true>(hs, norm_w, H, a.eps, a.norm_kind, xs, red);
    mark(l, kTraceQkvStaged);
    if (flags) {
      run_matrix(4 * l, qkvsum, staged_f16, Role<kRoleQkv>{}, 0u);
    } else {
      run_matrix(4 * l, qkvsum, staged_f16, Role<kRolePlain>{}, 0u);
    }
    if constexpr (!kRowRing) {  // (the row ring: warp 0 prefetches its keys itself)
      if (a.cta_attention) {
        if (staged_item) prefetch_chunk(a, L, blockIdx.x, 0, S, pos, stage, lane);
        if (warp > 0 && warp < S && static_cast<int>(blockIdx.x) < Hkv) prefetch_chunk_l2(a, L, blockIdx.x, warp, S, pos, lane);
      } else if (staged_item) {
        prefetch_chunk(a, L, blockIdx.x / S, blockIdx.x % S, S, pos, stage, lane);
      }
    }
    if (!flags) {
      barrier(l, 1);
      zero_sums<C>(dsum, H);
    }
    // Attention: items (kv head, split) spread over the CTAs' warps 0, or a kv head a CTA.
    if (!kRowRing && a.cta_attention && static_cast<int>(blockIdx.x) < Hkv) {
      float* scratch = reinterpret_cast<float*>(xs);  // xs is free until o_proj's input
      if (flags) {  // kv head g's qkv rows summed (and the CTA's warps done with xs)
        if (warp == 0) flag_wait(qkv_flags + blockIdx.x * kStackFlagStride, layer_n * qkv_units, lane);
        __syncthreads();
      }
      switch (G) {
        case 1: attention_cta<1>(a, L, qkvsum, blockIdx.x, pos, cache_slot, cs, sn, qs, stage, scratch, warp, lane); break;
        case 2: attention_cta<2>(a, L, qkvsum, blockIdx.x, pos, cache_slot, cs, sn, qs, stage, scratch, warp, lane); break;
        case 3: attention_cta<3>(a, L, qkvsum, blockIdx.x, pos, cache_slot, cs, sn, qs, stage, scratch, warp, lane); break;
        default: attention_cta<4>(a, L, qkvsum, blockIdx.x, pos, cache_slot, cs, sn, qs, stage, scratch, warp, lane); break;
      }
      if (flags) {  // every thread's attn_out stores, then the head's count (a release, as flag_add's)
        __syncthreads();
        if (tid == 0)
          asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(attn_flags + blockIdx.x * kStackFlagStride)
                       : "memory");
      }
    }
    if constexpr (!kRowRing) {
      attention_items(l, L);
      mark(l, kTraceAttentionDone);
    }
    if (flags) {
      // o_proj: each unit waits for its head's merged attention and reads it from L2.
      run_matrix(4 * l + 1, o_out, L2Input{a.attn_out}, Role<kRoleO>{}, layer_n);
    } else {
      barrier(l, 2);
      zero_sums<C>(qkvsum, QKV);
      if (warp_merge) {  // each warp merges its own units' heads
        mark(l, kTraceOStaged);
        run_matrix(4 * l + 1, o_out, MergedInput<SU>{a.partials, warp_scratch, S}, Role<kRolePlain>{}, 0u);
      } else {
        const int c0 = stage_cols[0], c1 = stage_cols[1];  // the columns of o_proj's input this CTA's units read
        if (stage_merge) {
          stage_merged_attention<C, true>(a.partials, c0 / D, (c1 + D - 1) / D, S, xs);
        } else {  // o_proj's input: the merged attention, as f16.
          for (int v = c0 / 8 + C::rank(); v < c1 / 8; v += C::kCount)
            reinterpret_cast<uint4*>(xs)[v] = f16_of8(__ldcg(reinterpret_cast<const uint4*>(a.attn_out) + v));
        }
        C::sync();
        mark(l, kTraceOStaged);
        run_matrix(4 * l + 1, o_out, staged_f16, Role<kRolePlain>{}, 0u);
      }
    }
    load_norm_weights<C>(L.mlp_norm_w, H, norm_w);
    barrier(l, 3);
    add_sums<C>(hs, o_out, H);
    // The cluster MLP's sums back to zero (xs past H was the o stage's or the CTA attention's),
    // before stage_norm's barrier and gate_up's flushes.
    if (a.cluster_mlp && C::rank() >= 0 && C::rank() < kStackSliceCols) gul[C::rank()] = 0.0f;
    if (flags) {
      zero_sums<C>(qkvsum, QKV);           // the attention read it before the barrier
      if (l > 0) zero_sums<C>(d_last, H);  // read after barrier 0
    }
    stage_norm<C, true>(hs, norm_w, H, a.eps, a.norm_kind, xs, red);
    mark(l, kTraceGateUpStaged);
    if (flags) {
      run_matrix(4 * l + 2, gusum, staged_f16, Role<kRoleGateUp>{}, 0u);
      // down_proj: each unit waits for its column group of gate_up and makes its GLU itself.
      run_matrix(4 * l + 3, d_out, GluInput<SU>{gusum, warp_scratch, I, a.activation}, Role<kRoleDown>{},
                 layer_n * glu_units);
      continue;
    }
    if (a.cluster_mlp) {
      run_matrix(4 * l + 2, gusum, staged_f16, Role<kRoleSlice>{}, 0u);
      // The CTA's GLU of its half of its cluster's slice (gul: every warp's gate_up sums) into
      // both CTAs' dx (this one's at 64 h, its partner's through DSMEM); the cluster barrier then
      // orders the partner's stores before this CTA's down_proj reads. (The partner writes
      // this CTA's dx only after barrier 3, when nothing else of xs past H is in use here.)
      // (Traced as barrier 4: its arrival after the CTA's sync, its exit after the cluster's.)
      C::sync();
      mark(l, kTraceArrive0 + 8);
      const int r = C::rank(), h = static_cast<int>(blockIdx.x & 1), half = kStackSliceCols / 2;
      if (r >= 0 && r < half / 2) {
        const float g0 = gul[2 * r], g1 = gul[2 * r + 1], u0 = gul[half + 2 * r], u1 = gul[half + 2 * r + 1];
        const __nv_bfloat162 v = __halves2bfloat162(glu_bf16(g0, u0, a.activation), glu_bf16(g1, u1, a.activation));
        const uint32_t bits = *reinterpret_cast<const uint32_t*>(&v);
        uint32_t* const mine = reinterpret_cast<uint32_t*>(dx + half * h + 2 * r);
        *mine = bits;
        st_cluster_u32(cluster_smem_addr(mine, h ^ 1), bits);
      }
      cluster_arrive_release();
      cluster_wait_acquire();
      mark(l, kTraceArrive0 + 9);
      mark(l, kTraceDownStaged);
      // down_proj's units read the slice's columns [kStackSliceCols k, + kStackSliceCols) of
      // its input: dx as that stretch of it.
      const SharedInput<false> slice_x{dx - kStackSliceCols * static_cast<int>(blockIdx.x >> 1)};
      run_matrix(4 * l + 3, d_out, slice_x, Role<kRoleSliceDown>{}, 0u);
      continue;
    }
    run_matrix(4 * l + 2, gusum, staged_f16, Role<kRolePlain>{}, 0u);
    barrier(l, 4);
    zero_sums<C>(osum, H);
    {
      // x = bf16(bf16(f(bf16 g)) * bf16 u), as the GEMV's GLU epilogue rounds it, over the
      // columns [c0, c1) that this CTA's down_proj units read; 4 float4s of g and u a thread at
      // a time (the 3B shape's all), not C::kGluVecs (the registers' peak).
      const int c0 = stage_cols[2], c1 = stage_cols[3];
      constexpr int kChunk = 4;
      const int r = C::rank();
#pragma unroll 1
      for (int j0 = 0; j0 < C::kGluVecs && c0 + 4 * (r + j0 * C::kCount) < c1; j0 += kChunk) {
        float4 gv[kChunk], uv[kChunk];
#pragma unroll
        for (int j = 0; j < kChunk; ++j) {
          const int i = c0 + 4 * (r + (j0 + j) * C::kCount);
          gv[j] = i < c1 ? __ldcg(reinterpret_cast<const float4*>(gusum + i)) : make_float4(0, 0, 0, 0);
          uv[j] = i < c1 ? __ldcg(reinterpret_cast<const float4*>(gusum + I + i)) : make_float4(0, 0, 0, 0);
        }
#pragma unroll
        for (int j = 0; j < kChunk; ++j) {
          const int i = c0 + 4 * (r + (j0 + j) * C::kCount);
          if (i < c1) {
            const float g4[4] = {gv[j].x, gv[j].y, gv[j].z, gv[j].w}, u4[4] = {uv[j].x, uv[j].y, uv[j].z, uv[j].w};
            const __nv_bfloat162 v[2] = {__halves2bfloat162(glu_bf16(g4[0], u4[0], a.activation), glu_bf16(g4[1], u4[1], a.activation)),
                                         __halves2bfloat162(glu_bf16(g4[2], u4[2], a.activation), glu_bf16(g4[3], u4[3], a.activation))};
            *reinterpret_cast<uint2*>(xs + i) = *reinterpret_cast<const uint2*>(v);
          }
        }
      }
      C::sync();
    }
    mark(l, kTraceDownStaged);
    run_matrix(4 * l + 3, d_out, staged_x, Role<kRolePlain>{}, 0u);
  }
  cp_async_wait<0>();
  grid_barrier<C>(bar_count, bar_target, kTrace ? trace_row(a.layers - 1) + kTraceFinalArrive : nullptr);
  if (a.cluster_mlp) {
    zero_sums<C>(osum, H);  // read after the last barrier 3
  } else {
    zero_sums<C>(gusum, 2 * I);
  }
  if (flags) zero_sums<C>(osum + ((a.layers - 1) & 1) * H, H);  // read after the last barrier 3
  if (blockIdx.x == 0) {
    if (tid == C::kFirst) *bar_base = *bar_target;  // every CTA has arrived: the next launch's base
    if (flags) {  // every CTA is past its last wait: the counters back to zero for the next launch
      for (int i = C::rank(); i < kStackFlags; i += C::kCount) __stcg(a.barrier + kStackQkvFlagsAt + i * kStackFlagStride, 0);
    }
    // residual = h + bf16(down sums); normed = norm(residual, final_norm); the sums back to zero.
    float* const d_final = dsum + (flags ? (a.layers - 1) & 1 : 0) * H;
#pragma unroll
    for (int j = 0; j < C::kHVecs; ++j) {
      const int i = 4 * (C::rank() + j * C::kCount);
      if (i < H) {
        float4* dp = reinterpret_cast<float4*>(d_final + i);
        h_store(hs, i, add_rounded(h_load(hs, i), __ldcg(dp)));
        __stcg(dp, make_float4(0, 0, 0, 0));
        *reinterpret_cast<uint2*>(static_cast<bf16*>(a.residual) + i) = *reinterpret_cast<const uint2*>(hs + i);
      }
    }
    uint2 final_w[C::kHVecs];
    load_norm_weights<C>(a.final_norm_w, H, final_w);
    stage_norm<C, false>(hs, final_w, H, a.eps, a.norm_kind, xs, red);
    for (int v = C::rank(); v < H / 8; v += C::kCount)
      reinterpret_cast<uint4*>(a.normed)[v] = reinterpret_cast<const uint4*>(xs)[v];
  }
}

template <int SU, bool kBias, bool kTrace, bool kRowRing, bool kFlags>
void configure_form() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(decode_stack_kernel<SU, kBias, kTrace, kRowRing, kFlags>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(kStackSmemLimit) - kStackStaticSmemBytes));
}
template <int SU, bool kBias, bool kFlags>
void configure_one() {
  configure_form<SU, kBias, false, false, kFlags>();
  configure_form<SU, kBias, true, false, kFlags>();
  if constexpr (!kFlags) {  // the row ring: the barrier form only
    configure_form<SU, kBias, false, true, kFlags>();
    configure_form<SU, kBias, true, true, kFlags>();
  }
}
// The shared-memory limit of every form of this kFlags.
template <bool kFlags>
void configure_forms() {
  configure_one<1, false, kFlags>();
  configure_one<1, true, kFlags>();
  configure_one<2, false, kFlags>();
  configure_one<2, true, kFlags>();
}

template <int SU, bool kBias, bool kFlags>
void launch_one(const cudaLaunchConfig_t& cfg, const DecodeStackArgs& a) {
  const bool trace = a.trace != nullptr;
  if constexpr (!kFlags) {
    if (a.row_ring) {
      if (trace) {
        KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, decode_stack_kernel<SU, kBias, true, true, kFlags>, a));
      } else {
        KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, decode_stack_kernel<SU, kBias, false, true, kFlags>, a));
      }
      return;
    }
  }
  if (trace) {
    KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, decode_stack_kernel<SU, kBias, true, false, kFlags>, a));
  } else {
    KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, decode_stack_kernel<SU, kBias, false, false, kFlags>, a));
  }
}
// The form of a's group size (64 or 128 columns: units of 1 or 2 steps), biases, trace and
// row ring, with this kFlags (decode_stack_supports(a) holds).
template <bool kFlags>
void launch_form(const cudaLaunchConfig_t& cfg, const DecodeStackArgs& a) {
  const StackMatrix& o = a.layer[0].o;
  if (o.K / o.groups == 128) {
    if (a.bias) {
      launch_one<2, true, kFlags>(cfg, a);
    } else {
      launch_one<2, false, kFlags>(cfg, a);
    }
  } else if (a.bias) {
    launch_one<1, true, kFlags>(cfg, a);
  } else {
    launch_one<1, false, kFlags>(cfg, a);
  }
}

}  // namespace

// The flags forms' entry points (cuda_decode_stack_flags.cu).
void configure_decode_stack_flags_forms();
void launch_decode_stack_flags_form(const cudaLaunchConfig_t& cfg, const DecodeStackArgs& a);

}  // namespace kr::cuda
