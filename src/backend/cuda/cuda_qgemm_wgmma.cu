// The 4-bit x bf16 GEMM of 9 rows or more on wgmma (cuda_qgemm_wgmma.h says what it
// computes and why).
//
// wgmma with A from registers (PTX ISA, "wgmma.mma_async", the form `d, a,
// b-desc, scale-d, imm-scale-a, imm-scale-b, imm-trans-b`): warp q of a warpgroup
// holds rows 16q .. 16q + 15 of the 64 x 16 A in the fragment layout of
// mma.m16n8k16 (a0a1: row g, k 2t, 2t + 1; a2a3: row g + 8; a4a5: row g, k 2t + 8,
// 2t + 9; a6a7: row g + 8). A = the weight rows, B = the tokens: D is the
// transposed output tile (rows x tokens), as in the FP8 wgmma GEMM.
//
// The k order is the columns' own: B (x) is staged as it lies, a 128-byte row (64
// columns) per token in the 128-byte-swizzled K-major layout (descriptor as
// cuda_fp8_gemm_wgmma.cu: SBO 1024, swizzle mode 1; k16 tile s of a 64-column step
// is bytes 32s .. 32s + 31 of each row), copied in 16-byte chunks. The repacked
// codes (qgemm_layout.h) put columns 8t .. 8t + 7 of a 32-column chunk in lane
// (g, t); k16 tile 2c + i wants columns 16i + 2t, 16i + 2t + 1 (and + 8) of chunk c
// in lane (g, t), which lanes (g, 2i) and (g, 2i + 1) hold as their pair t: four
// shuffles per k16 tile bring them (an earlier form staged x in the layout's
// permuted order by 4-byte copies instead: as fast at 64 tokens, slower at 16).
//
// A CTA: 2 warpgroups, 8 warps; it owns 4 tile pairs (tile_pair: the epilogue's
// pairing) and warp w computes tile w / 4 of pair w % 4, so warpgroup h holds
// tile h of the 4 pairs. Its K slice (S slices of a row block are a thread-block
// cluster, summed through distributed shared memory in rank order, each rank its
// own range of the tokens: cluster_sum_tokens) runs in stages of kSub steps of 64
// columns. Two CTAs share an SM (at most
// 128 registers a thread and 113 KB of shared memory each), so that one CTA's
// dependent chains (shuffles, dequantization, wgmma waits) overlap the other's:
//  - two rings in shared memory, filled by cp.async: the 8 warps' weights (each
//    lane's 16-byte word of its tile per step), kAheadW steps in flight, and x,
//    kAheadX steps in flight (6 at 64 tokens, 2 at 128, where a step's x is 16 KB);
//    an x slot is refilled two steps after it was read (one step's wgmma group
//    stays in flight); the weights of the first steps are requested before
//    griddepcontrol.wait, x after;
//  - the meta words of the slice's groups for the 8 tiles are copied into shared
//    memory before the wait, and decoded per warp when a group starts;
//  - per stage a warp reads its weight words, dequantizes (a_fragment's
//    arithmetic: (q - z) s or q s + b rounded to bf16, as kV1 / kV2) 16 A registers
//    per step, issues 4 wgmma m64nNk16 per step (N = 64 tokens, or 128 for a pass
//    of 65..128), commits and waits for the previous stage's group (its A
//    registers are then free; two sets alternate).
// More than 128 tokens run in passes of 128 (launch_qgemm_wgmma), each reading the
// whole weight (3B AWQ decode on an H200: batch 64 / 128 22.3k / 30.4k tok/s, two
// passes at 160 24.2k; docs/performance.md).
// Where the time goes (docs/performance.md): at one CTA an SM, Nsight Compute saw
// few issue slots busy and most stalls fixed-latency waits, hence the second CTA.
// The per-step instruction count, not the bytes, sets the loop's time (~0.7 us a
// step before the per-thread values were kept in registers and the dequantization
// took one lop3 a pair); what is left a step is mostly the 16 A registers' shuffle,
// shift, lop3, sub and mul.
// Learned from (ideas, not code): vLLM's Machete and Marlin (dequantized weights
// as register operands of the tensor-core MMA), CUTLASS's register-sourced
// wgmma (the A fragment layout), DeepGEMM (descriptor iteration).
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_cluster.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_cp_async.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_qgemm_device.cuh"
#include "backend/cuda/cuda_qgemm_wgmma.h"
#include "backend/cuda/cuda_wgmma.cuh"

namespace kr::cuda {

namespace {

constexpr int kWarps = 8;  // 2 warpgroups
constexpr int kThreads = kWarps * 32;
constexpr int kPairs = 4;       // tile pairs of a CTA
constexpr int kSub = 1;         // weight steps (64 columns each) of a ring stage
constexpr int kRowBytes = 128;  // one token's 64 bf16 columns of a step
constexpr int kWStageBytes = kWarps * 32 * 16;  // the 8 warps' weight words of a step
constexpr int kMaxCluster = 8;
constexpr int kCtasPerSm = 2;
constexpr int kMaxSmem = 228 * 1024 / kCtasPerSm - 1024;  // per CTA: an SM's 228 KB, 1 KB of it reserved per CTA

// Two rings in shared memory, both filled by cp.async: the weights of kAheadW
// steps are in flight (kAheadW + 1 slots: a slot is free once its thread has read
// its own word), x of kAheadX steps (kAheadX + 2 slots: one read, one in a wgmma
// group). x of a step is NTOK rows of 128 bytes (8 or 16 KB) and a step's weights
// 4 KB, so at 128 tokens x runs fewer steps ahead: the rings of both passes fit
// the shared memory of two CTAs an SM.
constexpr int kAheadW = 6;
constexpr int kSlotsW = kAheadW + 1;
template <int NTOK>
constexpr int kAheadX = NTOK == 64 ? 6 : 2;
template <int NTOK>
constexpr int kSlotsX = kAheadX<NTOK> + 2;
static_assert(kAheadW >= kAheadX<64> && kAheadW >= kAheadX<128>, "a step's weights are requested no later than its x");

// A slot of the x ring: kSub blocks of NTOK rows of 128 bytes (swizzled,
// 1024-aligned); of the weight ring: kSub blocks of [warp][lane] uint4. The x ring
// starts the shared memory, the weight ring follows it.
template <int NTOK>
constexpr int kXStageBytes = NTOK * kRowBytes;
template <int NTOK>
constexpr int kXSlotBytes = kSub * kXStageBytes<NTOK>;  // a multiple of 1024
constexpr int kWSlotBytes = kSub * kWStageBytes;
template <int NTOK>
constexpr int kRingBytes = kSlotsX<NTOK> * kXSlotBytes<NTOK> + kSlotsW * kWSlotBytes;

// D (64 x NTOK f32, transposed tile) += A (64 x 16 bf16, registers) · B (NTOK x 16 bf16, K-major)^T.
template <int NTOK>
__device__ __forceinline__ void wgmma_rs(float (&d)[NTOK / 2], const uint32_t (&a)[4], uint64_t db);

template <>
__device__ __forceinline__ void wgmma_rs<64>(float (&d)[32], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

template <>
__device__ __forceinline__ void wgmma_rs<128>(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

// Bytes of shared memory: 1024 of alignment slack, the ring, the meta of ng groups
// for the 8 tiles; the sums [kPairs][NTOK][kTokFloats] f32 (token-major: a token's
// 32 rows, then 4 floats of padding, so that both the accumulator stores and the
// epilogue's row reads are free of bank conflicts) alias the ring after the loop.
constexpr int kTokFloats = 32 + 4;
template <int NTOK>
constexpr int fin_bytes() {
  return kPairs * NTOK * kTokFloats * 4;
}
template <int NTOK>
int smem_bytes(int ng) {
  return 1024 + kRingBytes<NTOK> + kWarps * ng * 16 * 4;
}
static_assert(fin_bytes<64>() <= kRingBytes<64> && fin_bytes<128>() <= kRingBytes<128>, "the sums alias the rings");

// CTA: tile pairs [kPairs blockIdx.y, + kPairs) x K slice blockIdx.x (its rank in
// the cluster of S = gridDim.x); steps [rank per, + per) of the weight.
template <bool kBias, int NTOK, QEpilogue E>
__global__ void __launch_bounds__(kThreads, kCtasPerSm)
    qgemm_wgmma_kernel(const QWeight w, const QGemmArgs a, const int per) {
  constexpr QCode C = QCode::kU4;
  constexpr int kAcc = NTOK / 2;
  constexpr int kPairFloats = NTOK * kTokFloats;
  extern __shared__ uint8_t dsmem[];
  const uint32_t raw = smem_u32(dsmem);
  const uint32_t base = (raw + 1023u) & ~1023u;  // the swizzle follows address bits 4-9
  uint8_t* const gbase = dsmem + (base - raw);
  uint32_t* const meta_s = reinterpret_cast<uint32_t*>(gbase + kRingBytes<NTOK>);  // [8 tiles][ng][16]
  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int wg = warp >> 2, wq = warp & 3;
  const int rank = static_cast<int>(blockIdx.x), S = static_cast<int>(gridDim.x);
  const int pair0 = static_cast<int>(blockIdx.y) * kPairs;
  const int pairs = E == QEpilogue::kPlain ? w.Np / 32 : w.N / 32;
  const int T = a.T, K = w.K;
  const int s_begin = min(w.steps, rank * per), s_end = min(w.steps, s_begin + per);
  const int nst = s_end - s_begin;  // 0 for a trailing rank past K
  int tl[2] = {0, 0};
  if (pair0 + wq < pairs) tile_pair<E>(w, a, pair0 + wq, tl);
  const int tile = tl[wg];  // (tile 0 for a pair past the end: read, never stored)

  auto x_slot_addr = [&](int slot) { return base + static_cast<uint32_t>(slot * kXSlotBytes<NTOK>); };
  const int nstages = (nst + kSub - 1) / kSub;
  // ---- the weights of the first kAheadW stages, before waiting on the previous kernel ----
  // Lane's word of step s_begin + j: wsrc + 32 j; into sub-step q of weight slot `slot`
  // at w_dst0 + slot kWSlotBytes + q kWStageBytes (read back by the same thread only).
  const uint4* const wsrc = opaque(static_cast<const uint4*>(w.codes) + q_word_index(tile, w.steps, s_begin, lane));
  const uint32_t w_dst0 = opaque(base + static_cast<uint32_t>(kSlotsX<NTOK> * kXSlotBytes<NTOK> + 16 * tid));
  auto issue_w = [&](int p, int slot) {  // the weights of stage p into weight slot `slot`
#pragma unroll
    for (int q = 0; q < kSub; ++q)
      if (p * kSub + q < nst)
        cp_async16_l2(w_dst0 + static_cast<uint32_t>(slot * kWSlotBytes + q * kWStageBytes), wsrc + 32 * (p * kSub + q),
                      16);
  };
#pragma unroll
  for (int p = 0; p < kAheadW; ++p) issue_w(p, p);

  // ---- the meta of the slice's groups for the 8 tiles into shared memory ----
  const int g_lo = s_begin * 64 / w.group;
  const int ng = nst > 0 ? (s_end * 64 - 1) / w.group - g_lo + 1 : 0;  // <= launch_t's ng_max
  for (int e = tid; e < kWarps * ng * 4; e += kThreads) {
    const int wt = e / (ng * 4), rest = e % (ng * 4), gl = rest / 4, q = rest % 4;
    int ptl[2] = {0, 0};
    if (pair0 + (wt & 3) < pairs) tile_pair<E>(w, a, pair0 + (wt & 3), ptl);
    const uint32_t* src = w.meta + q_meta_index(ptl[wt >> 2], w.groups, g_lo + gl, 0) + 4 * q;
    cp_async16_l2(smem_u32(meta_s + (wt * ng + gl) * 16 + 4 * q), src, 16);
  }
  pdl_wait();

  // ---- x stages: thread (row r0 = tid / 8, 16-byte chunk xc = tid % 8) copies chunk xc
  // of rows r0 + 32 j, swizzled (chunk xc of row r at xc ^ (r % 8), and r % 8 = r0 % 8
  // for every j). Few values live across the loop (a row pointer and a shared-memory
  // offset): at <= 128 registers a thread, more were recomputed from the thread index
  // at every step (~30 instructions a copy). ----
  static_assert(NTOK % 32 == 0 && kThreads == 256, "32 rows of 8 chunks a copy round");
  constexpr int kXCopies = NTOK / 32;
  const bf16* x = static_cast<const bf16*>(a.x);
  const int r0 = tid >> 3, xc = tid & 7;
  const bf16* const x_row0 = opaque(x + static_cast<size_t>(r0) * K + 8 * xc);  // row r0, chunk xc of column 0
  const uint32_t x_off0 = opaque(static_cast<uint32_t>(r0 * kRowBytes + ((xc ^ (r0 & 7)) << 4)));
  // The x columns of stage p into ring slot `slot`; zeros for rows past T and for a
  // sub-step past the slice (its wgmma runs on zero A and B: no branch around a wgmma).
  auto issue_x = [&](int p, int slot) {
    if (p >= nstages) return;
#pragma unroll
    for (int q = 0; q < kSub; ++q) {
      const int col = (s_begin + p * kSub + q) * 64;
      const bool k_ok = p * kSub + q < nst && col + 8 * xc < K;
      const uint32_t dst = x_slot_addr(slot) + q * kXStageBytes<NTOK> + x_off0;
#pragma unroll
      for (int j = 0; j < kXCopies; ++j) {
        const bool ok = k_ok && r0 + 32 * j < T;
        cp_async16_l2(dst + j * 32 * kRowBytes,
                      ok ? static_cast<const void*>(x_row0 + static_cast<size_t>(32 * j) * K + col)
                         : static_cast<const void*>(x),
                      ok ? 16 : 0);
      }
    }
  };
  // Group 0 holds the meta, the first weights and x of stage 0; one group per
  // stage, empty ones included.
#pragma unroll
  for (int p = 0; p < kAheadX<NTOK>; ++p) {
    issue_x(p, p);
    cp_async_commit();
  }

  float acc[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) acc[i] = 0.0f;
  uint32_t af[2][kSub][4][4];  // two sets (stages alternate) x sub-steps x 4 k16 tiles x the A registers
  RowMeta m{};
  const uint64_t db0 = sw128_desc(x_slot_addr(0));
  const uint32_t* meta_w = meta_s + warp * ng * 16;
  // The group of the next 32-column chunk, counted (no division in the loop: a
  // runtime division by w.group there was a long dependent chain of ~25
  // instructions per chunk): slice-local index, its chunks still to come (the slice
  // may start inside a group), and whether its meta is still to decode.
  const uint32_t magic = opaque(0x43004300u);  // in a register: a lop3 takes one immediate (u4_pair_r)
  const uint32_t t_shift = opaque(4u * static_cast<uint32_t>(t));
  int quad_lane[4];  // lane (g, k) for k = 0..3
#pragma unroll
  for (int k = 0; k < 4; ++k) quad_lane[k] = static_cast<int>(opaque(static_cast<uint32_t>((lane & ~3) | k)));
  const int cpg = w.group / 32;
  int grp = 0, grp_left = cpg - (2 * s_begin) % cpg;
  bool grp_new = true;
  for (int b = 0; b < nstages; b += 2) {
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int p = b + u;
      if (p < nstages) {  // CTA-uniform
        // Group j holds x of stage j (and the weights of earlier-or-equal stages: kAheadW >= kAheadX).
        cp_async_wait<kAheadX<NTOK> - 1>();  // this thread's copies of stage p have landed
        fence_proxy_async();
        __syncthreads();  // stage p complete; every warp's stage p - 2 wgmma done: its x slot is free
        issue_w(p + kAheadW, (p + kAheadW) % kSlotsW);  // the slot of stage p + kAheadW - kSlotsW, read before
        issue_x(p + kAheadX<NTOK>, (p + kAheadX<NTOK>) % kSlotsX<NTOK>);
        cp_async_commit();
        const int slot_w = p % kSlotsW, slot_x = p % kSlotsX<NTOK>;
#pragma unroll
        for (int q = 0; q < kSub; ++q) {
          const int i = p * kSub + q;
          if (i >= nst) {  // CTA-uniform: zeros (the last stage's sub-steps past the slice)
#pragma unroll
            for (int s4 = 0; s4 < 4; ++s4)
#pragma unroll
              for (int r = 0; r < 4; ++r) af[u][q][s4][r] = 0u;
          } else {
            uint4 wv;  // this thread's own word of the stage (its cp.async has landed)
            asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                         : "=r"(wv.x), "=r"(wv.y), "=r"(wv.z), "=r"(wv.w)
                         : "r"(w_dst0 + static_cast<uint32_t>(slot_w * kWSlotBytes + q * kWStageBytes)));
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              if (grp_new) {  // warp-uniform: the chunk starts a group (or the slice)
                const uint32_t* ms = meta_w + grp * 16;
                m = decode_meta<C, kBias>(ms[g], ms[g + 8], w.meta_f16);
                grp_new = false;
              }
              if (--grp_left == 0) {  // the chunk ends its group
                ++grp;
                grp_left = cpg;
                grp_new = true;
              }
              // k16 tile 2c + ii is columns 32c + 16ii .. + 15 in order: the codes of
              // columns 2t, 2t + 1 are lane (g, 2ii)'s pair t, of 2t + 8, 2t + 9 lane (g, 2ii + 1)'s.
              const uint32_t rg = word_of(wv, 2 * c), rg8 = word_of(wv, 2 * c + 1);
#pragma unroll
              for (int ii = 0; ii < 2; ++ii) {
                const int src0 = quad_lane[2 * ii], src1 = quad_lane[2 * ii + 1];
                const uint32_t g0 = __shfl_sync(0xffffffffu, rg, src0), g1 = __shfl_sync(0xffffffffu, rg, src1);
                const uint32_t h0 = __shfl_sync(0xffffffffu, rg8, src0), h1 = __shfl_sync(0xffffffffu, rg8, src1);
                uint32_t(&A)[4] = af[u][q][2 * c + ii];
                A[0] = finish_pair<false, kBias>(u4_pair_r(g0, t_shift, m.sub[0], magic), m, 0);
                A[1] = finish_pair<false, kBias>(u4_pair_r(h0, t_shift, m.sub[1], magic), m, 1);
                A[2] = finish_pair<false, kBias>(u4_pair_r(g1, t_shift, m.sub[0], magic), m, 0);
                A[3] = finish_pair<false, kBias>(u4_pair_r(h1, t_shift, m.sub[1], magic), m, 1);
              }
            }
          }
        }
        const uint64_t slot = static_cast<uint64_t>((slot_x * kXSlotBytes<NTOK>) >> 4);
        fence_regs(acc);
        wgmma_fence();
#pragma unroll
        for (int q = 0; q < kSub; ++q)
#pragma unroll
          for (int s4 = 0; s4 < 4; ++s4)
            wgmma_rs<NTOK>(acc, af[u][q][s4], db0 + slot + static_cast<uint64_t>((q * kXStageBytes<NTOK>) >> 4) + 2 * s4);
        wgmma_commit();
        wgmma_wait<1>();
        fence_regs(acc);
      }
    }
  }
  wgmma_wait<0>();
  fence_regs(acc);
  cp_async_wait<0>();
  // Dependents are signalled here, not at the start: the kernels after this one
  // (the norm, flash decode, launched with PDL after it: CudaOptions::
  // pdl_after_late_signal) then become resident as its blocks finish, instead of
  // waiting resident through the loop in SM slots its own blocks could use.
  pdl_launch_dependents();
  __syncthreads();  // the ring is free

  // ---- the sums, token-major: fin[pair wq][token][row (tile wg: 0..15, 16..31)] ----
  float* fin_all = reinterpret_cast<float*>(gbase);
  {
    float* fin = fin_all + wq * kPairFloats;
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int row = wg * 16 + g + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + 2 * t + (i & 1);
      fin[col * kTokFloats + row] = acc[i];
    }
  }
  // ---- the cluster's K slices: rank r sums, then stores, its range of the real tokens ----
  const int real = min(T, NTOK), per_rank = (real + S - 1) / S;
  const int c0 = min(real, rank * per_rank), c1 = min(real, c0 + per_rank);
  cluster_sum_tokens<kThreads, kPairs, kPairFloats, kTokFloats, kMaxCluster>(fin_all, rank, S, c0, c1);
  if (c1 > c0)
    for (int p = 0; p < kPairs && pair0 + p < pairs; ++p) {
      int ptl[2];
      tile_pair<E>(w, a, pair0 + p, ptl);
      qgemm_epilogue<E, kThreads, NTOK, 1, kTokFloats>(w, a, ptl, c0, fin_all + p * kPairFloats + c0 * kTokFloats,
                                                      c1 - c0);
    }
}

// How many clusters of s CTAs (s = 1 .. kMaxCluster) the GPU holds at once, one
// CTA an SM (kMaxSmem of shared memory allowed), queried once per kernel.
template <bool kBias, int NTOK, QEpilogue E>
const int* configure() {
  static int clusters[kMaxCluster + 1] = {};  // one backend thread: no race
  static bool configured = false;
  if (!configured) {
    auto* kernel = qgemm_wgmma_kernel<kBias, NTOK, E>;
    KR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
    query_max_active_clusters(kernel, kThreads, kMaxSmem, kMaxCluster, clusters);
    configured = true;
  }
  return clusters;
}

// A launch's K slices and shared memory (plan_t); smem > kMaxSmem: the kernel does not take the shape.
struct Plan {
  int S = 1, per = 0, smem = 0;
};

template <bool kBias, int NTOK, QEpilogue E>
Plan plan_t(const QWeight& w, int pairs, int num_sms) {
  const int* clusters = configure<kBias, NTOK, E>();
  const int rowblocks = (pairs + kPairs - 1) / kPairs;
  // The most K slices (at most 8, each with a step) whose clusters all fit at once
  // (clusters sit within a GPC: the SM count alone overestimates) in kCtasPerSm CTAs
  // an SM (capping the grid at one CTA an SM instead was slower: docs/performance.md).
  int S = 1;
  for (int s = std::min(kMaxCluster, w.steps); s > 1; --s)
    if (clusters[s] >= rowblocks && s * rowblocks <= kCtasPerSm * num_sms) {
      S = s;
      break;
    }
  Plan p;
  p.S = S;
  p.per = (w.steps + S - 1) / S;
  const int ng_max = std::min(w.groups, (p.per * 64 + w.group - 1) / w.group + 1);
  p.smem = smem_bytes<NTOK>(ng_max);
  return p;
}

template <bool kBias, int NTOK, QEpilogue E>
void launch_t(const QWeight& w, const QGemmArgs& a, const Plan& p, int pairs, bool pdl, cudaStream_t stream) {
  const int rowblocks = (pairs + kPairs - 1) / kPairs;
  launch_cluster_x(pdl, p.S, qgemm_wgmma_kernel<kBias, NTOK, E>,
                   dim3(static_cast<unsigned>(p.S), static_cast<unsigned>(rowblocks)), dim3(kThreads),
                   static_cast<size_t>(p.smem), stream, w, a, p.per);
}

// The arguments of tokens [t0, t0 + n) of a: the same weight and caches, the rows'
// inputs, outputs and positions moved on by t0.
QGemmArgs token_rows(const QGemmArgs& a, const QWeight& w, QEpilogue e, int t0, int n) {
  QGemmArgs r = a;
  r.T = n;
  r.x = static_cast<const bf16*>(a.x) + static_cast<size_t>(t0) * w.K;
  r.out = static_cast<bf16*>(a.out) + static_cast<size_t>(t0) * w.N;  // bf16 only (launch_qgemm_wgmma)
  if (e == QEpilogue::kSwiglu) r.act = static_cast<bf16*>(a.act) + static_cast<size_t>(t0) * (w.N / 2);
  if (e == QEpilogue::kRope) {
    r.positions = a.positions + t0;
    r.slots = a.slots + t0;
  }
  return r;
}

}  // namespace

bool launch_qgemm_wgmma(const QWeight& w, const QGemmArgs& a, QEpilogue e, int num_sms, bool pdl,
                        cudaStream_t stream) {
  if (w.code != QCode::kU4 || a.T < kQWgmmaMinTokens || a.norm_w != nullptr || a.out_f32 || w.group % 32 != 0)
    return false;
  const int pairs = e == QEpilogue::kPlain ? w.Np / 32 : w.N / 32;
  bool launched = false;
  with_epilogue(e, [&](auto ep) {
    auto go = [&](auto bias) {
      // Passes of at most kQWgmmaPassTokens tokens, the last one's kernel of 64
      // tokens where it has no more; each pass reads the whole weight. The plans of
      // the kernels that run are checked before anything is enqueued.
      const int last = (a.T - 1) % kQWgmmaPassTokens + 1;  // tokens of the last pass
      Plan p64, p128;
      if (last <= 64) p64 = plan_t<bias(), 64, ep()>(w, pairs, num_sms);
      if (a.T > 64) p128 = plan_t<bias(), kQWgmmaPassTokens, ep()>(w, pairs, num_sms);
      if (p64.smem > kMaxSmem || p128.smem > kMaxSmem) return;
      for (int t0 = 0; t0 < a.T; t0 += kQWgmmaPassTokens) {
        const int n = std::min(kQWgmmaPassTokens, a.T - t0);
        const QGemmArgs r = token_rows(a, w, e, t0, n);
        if (n <= 64) {
          launch_t<bias(), 64, ep()>(w, r, p64, pairs, pdl, stream);
        } else {
          launch_t<bias(), kQWgmmaPassTokens, ep()>(w, r, p128, pairs, pdl, stream);
        }
      }
      launched = true;
    };
    if (w.has_bias) {
      go(std::true_type{});
    } else {
      go(std::false_type{});
    }
  });
  return launched;
}

}  // namespace kr::cuda
