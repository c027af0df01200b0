// Quantized-weight kernels (see cuda_qgemm.h for what each computes and
// qgemm_layout.h for the weight layout and the k order inside an mma tile).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_cluster.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_cp_async.cuh"
#include "backend/cuda/cuda_fp8_act.cuh"
#include "backend/cuda/cuda_gemv1.h"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_qgemm.h"
#include "backend/cuda/cuda_qgemm_device.cuh"
#include "backend/cuda/cuda_qgemm_wgmma.h"

namespace kr::cuda {

namespace {

constexpr int kThreads = 128;  // 4 warps
constexpr int kWarps = kThreads / 32;

// Brings a line into this SM's L1 (no register): the meta words of a batch are
// requested with its weights and read from L1 when the chunk is computed.
__device__ __forceinline__ void prefetch_l1(const void* p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }

// 1 / rms of a bf16 row of K (K % 8 == 0) for RMSNorm, summed by one warp in a
// fixed order (lane-strided 8-element vectors, then warp_sum); every lane gets it.
// row == nullptr (a padding token): the sum of nothing.
__device__ __forceinline__ float warp_inv_rms(const bf16* row, int K, float eps, int lane) {
  float ss = 0.0f;
  if (row != nullptr) {
    const uint4* v8 = reinterpret_cast<const uint4*>(row);
    for (int v = lane; v < K / 8; v += 32) {
      Vec8 xv;
      xv.u = __ldcg(v8 + v);
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += bf(xv.h[e]) * bf(xv.h[e]);
    }
  }
  ss = warp_sum(ss);
  return rsqrtf(ss / static_cast<float>(K) + eps);
}

// Split-K: this block's sums fin[32 * kCols] go to its slot of the partials; the
// block that arrives last at the tile pair's counter sums every split's partials in
// split order (deterministic) into fin and returns true; the others return false.
template <int kNThreads, int kCols>
__device__ bool merge_splits(const QGemmArgs& a, size_t slot, int split, int splits, float* fin) {
  __shared__ int last_block;
  float* mine = a.partials + (slot * splits + split) * (32 * kCols);
  for (int e = threadIdx.x; e < 32 * kCols; e += kNThreads) __stcg(mine + e, fin[e]);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last_block = atomicAdd(a.counters + slot, 1) == splits - 1;
  __syncthreads();
  if (!last_block) return false;
  __threadfence();
  const float* all = a.partials + slot * splits * (32 * kCols);
  for (int e = threadIdx.x; e < 32 * kCols; e += kNThreads) {
    float s = 0.0f;
    for (int sp = 0; sp < splits; ++sp) s += __ldcg(all + static_cast<size_t>(sp) * (32 * kCols) + e);
    fin[e] = s;
  }
  if (threadIdx.x == 0) a.counters[slot] = 0;  // ready for the next launch
  __syncthreads();
  return true;
}

// One block: tiles `tiles` x tokens [t0, t0 + 8 NB) x steps [s_begin, s_end).
template <QCode C, bool kBias, int NB, bool kNorm, QEpilogue E>
__global__ void __launch_bounds__(kThreads, NB == 1 ? 4 : 3) qgemm_kernel(const QWeight w, const QGemmArgs a, const int splits) {
  using Kd = Kind<C>;
  constexpr bool kFold = NB == 1;
  // Steps in flight per warp: 128 bytes of weights per lane and tile pair at NB = 1.
  constexpr int U = (NB == 1 ? 4 : 2) / Kd::kWVecs;
  constexpr int kCols = 8 * NB;  // token columns of the block
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  // Token tiles vary fastest: the blocks that read the same weights run together (L2).
  const int ttile = blockIdx.x, split = blockIdx.y, pair = blockIdx.z;
  const int t0 = ttile * kCols;
  const int T = a.T, K = w.K;
  int tiles[2];
  tile_pair<E>(w, a, pair, tiles);
  const int per = (w.steps + splits - 1) / splits;
  const int s_begin = split * per, s_end = min(w.steps, s_begin + per);

  __shared__ float red[kWarps][32 * kCols];
  __shared__ float inv_rms[kCols];

  // ---- weights of the first batch: requested before waiting on the previous kernel ----
  uint4 wv[U][2][Kd::kWVecs];
  auto load_batch = [&](int st0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int st = st0 + u * kWarps;
#pragma unroll
      for (int ti = 0; ti < 2; ++ti) {
        if (st < s_end) {
          if constexpr (C == QCode::kFp8) {
            const uint8_t* base = static_cast<const uint8_t*>(w.codes) +
                                  (static_cast<size_t>(tiles[ti]) * 16 + g) * w.Kp + static_cast<size_t>(st) * 64 + 16 * t;
            const uint4* p0 = reinterpret_cast<const uint4*>(base);
            const uint4* p1 = reinterpret_cast<const uint4*>(base + static_cast<size_t>(8) * w.Kp);
            wv[u][ti][0] = NB == 1 ? __ldcs(p0) : __ldg(p0);
            wv[u][ti][Kd::kWVecs - 1] = NB == 1 ? __ldcs(p1) : __ldg(p1);
          } else {
            const uint4* p = static_cast<const uint4*>(w.codes) + q_word_index(tiles[ti], w.steps, st, lane);
            wv[u][ti][0] = NB == 1 ? __ldcs(p) : __ldg(p);
          }
#pragma unroll
          for (int c = 0; c < Kd::kChunks; ++c)  // the 16 meta words (64 bytes) of each chunk's group
            prefetch_l1(w.meta + q_meta_index(tiles[ti], w.groups, (st * Kd::kStep + c * Kd::kChunk) / w.group, 0));
        } else {
#pragma unroll
          for (int v = 0; v < Kd::kWVecs; ++v) wv[u][ti][v] = make_uint4(0, 0, 0, 0);
        }
      }
    }
  };
  load_batch(s_begin + warp);
  pdl_launch_dependents();
  pdl_wait();

  const bf16* x = static_cast<const bf16*>(a.x);
  // ---- RMSNorm prologue: 1 / rms of every token row of the block ----
  if constexpr (kNorm) {
    for (int c = warp; c < kCols; c += kWarps) {
      const int tok = t0 + c;
      const float inv = warp_inv_rms(tok < T ? x + static_cast<size_t>(tok) * K : nullptr, K, a.eps, lane);
      if (lane == 0) inv_rms[c] = inv;
    }
    __syncthreads();
  }

  float acc[2][NB][4];
#pragma unroll
  for (int ti = 0; ti < 2; ++ti)
#pragma unroll
    for (int j = 0; j < NB; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[ti][j][e] = 0.0f;

  // Token row of this lane's B columns in n8 tile j (clamped: columns past T are discarded).
  int xrow[NB];
#pragma unroll
  for (int j = 0; j < NB; ++j) xrow[j] = min(t0 + 8 * j + g, T - 1);

  for (int st0 = s_begin + warp; st0 < s_end; st0 += U * kWarps) {
    if (st0 != s_begin + warp) load_batch(st0);
    // ---- activations of the batch: the lane's slice of each chunk, per token tile ----
    uint4 xv[U][Kd::kChunks][NB][Kd::kXVecs];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int c = 0; c < Kd::kChunks; ++c)
#pragma unroll
        for (int j = 0; j < NB; ++j)
#pragma unroll
          for (int v = 0; v < Kd::kXVecs; ++v) {
            const int st = st0 + u * kWarps;
            const int col = st * Kd::kStep + c * Kd::kChunk + t * (Kd::kChunk / 4) + 8 * v;
            uint4 r = make_uint4(0, 0, 0, 0);
            // Through L2 (__ldcg): the previous kernel wrote x.
            if (st < s_end && col < K) r = __ldcg(reinterpret_cast<const uint4*>(x + static_cast<size_t>(xrow[j]) * K + col));
            if constexpr (kNorm) {
              if (st < s_end && col < K) {
                Vec8 xr, nw;
                xr.u = r;
                nw.u = __ldg(reinterpret_cast<const uint4*>(static_cast<const bf16*>(a.norm_w) + col));
                const float inv = inv_rms[8 * j + g];
#pragma unroll
                for (int e = 0; e < 8; ++e) xr.h[e] = norm_apply(bf(xr.h[e]), inv, nw.h[e], a.norm_kind);
                r = xr.u;
                if (pair == 0 && t0 + 8 * j + g < T)
                  *reinterpret_cast<uint4*>(static_cast<bf16*>(a.normed) + static_cast<size_t>(t0 + 8 * j + g) * K + col) = r;
              }
            }
            xv[u][c][j][v] = r;
          }
    // ---- the batch's mma tiles ----
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int st = st0 + u * kWarps;
      if (st >= s_end) break;
#pragma unroll
      for (int c = 0; c < Kd::kChunks; ++c) {
        const int kc = st * Kd::kStep + c * Kd::kChunk;
        const int grp = kc / w.group;
        // MLX: Σ x over the chunk for this lane's accumulator columns 2t, 2t+1 of each token tile.
        float sx[NB][2];
        if constexpr (kFold && kBias) {
#pragma unroll
          for (int j = 0; j < NB; ++j) {
            float s = 0.0f;
#pragma unroll
            for (int v = 0; v < Kd::kXVecs; ++v) {
              Vec8 xr;
              xr.u = xv[u][c][j][v];
#pragma unroll
              for (int e = 0; e < 8; ++e) s += bf(xr.h[e]);
            }
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);  // the chunk's sum for token g of the tile
            sx[j][0] = __shfl_sync(0xffffffffu, s, (2 * t) * 4);
            sx[j][1] = __shfl_sync(0xffffffffu, s, (2 * t + 1) * 4);
          }
        }
#pragma unroll
        for (int ti = 0; ti < 2; ++ti) {
          const uint32_t* meta = w.meta + q_meta_index(tiles[ti], w.groups, grp, 0);
          const RowMeta m = decode_meta<C, kBias>(__ldg(meta + g), __ldg(meta + g + 8), w.meta_f16);
          float part[NB][4];
#pragma unroll
          for (int j = 0; j < NB; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) part[j][e] = 0.0f;
#pragma unroll
          for (int i = 0; i < Kd::kMmaPerChunk; ++i) {
            uint32_t rg, rg8;
            tile_row_words<C>(wv[u][ti], c, i, rg, rg8);
            uint32_t af[4];
            a_fragment<C, kFold, kBias>(af, rg, rg8, i, m);
#pragma unroll
            for (int j = 0; j < NB; ++j) {
              // Positions 4i..4i+3 of the lane's slice: words 2i and 2i+1 of its x vectors.
              const uint4& x0 = xv[u][c][j][(2 * i) / 4];
              const uint32_t b0 = word_of(x0, (2 * i) % 4), b1 = word_of(x0, (2 * i + 1) % 4);
              mma_bf16(kFold ? part[j] : acc[ti][j], af, b0, b1);
            }
          }
          if constexpr (kFold) {
#pragma unroll
            for (int j = 0; j < NB; ++j) {
              acc[ti][j][0] = fmaf(m.s[0], part[j][0], acc[ti][j][0]);
              acc[ti][j][1] = fmaf(m.s[0], part[j][1], acc[ti][j][1]);
              acc[ti][j][2] = fmaf(m.s[1], part[j][2], acc[ti][j][2]);
              acc[ti][j][3] = fmaf(m.s[1], part[j][3], acc[ti][j][3]);
              if constexpr (kBias) {
                acc[ti][j][0] = fmaf(m.b[0], sx[j][0], acc[ti][j][0]);
                acc[ti][j][1] = fmaf(m.b[0], sx[j][1], acc[ti][j][1]);
                acc[ti][j][2] = fmaf(m.b[1], sx[j][0], acc[ti][j][2]);
                acc[ti][j][3] = fmaf(m.b[1], sx[j][1], acc[ti][j][3]);
              }
            }
          }
        }
      }
    }
  }

  // ---- sum over the warps: red[warp][row * kCols + col], rows 0..15 tile 0, 16..31 tile 1 ----
#pragma unroll
  for (int ti = 0; ti < 2; ++ti)
#pragma unroll
    for (int j = 0; j < NB; ++j) {
      const int row = ti * 16 + g, col = 8 * j + 2 * t;
      red[warp][row * kCols + col] = acc[ti][j][0];
      red[warp][row * kCols + col + 1] = acc[ti][j][1];
      red[warp][(row + 8) * kCols + col] = acc[ti][j][2];
      red[warp][(row + 8) * kCols + col + 1] = acc[ti][j][3];
    }
  __syncthreads();
  float* fin = red[0];
  for (int e = threadIdx.x; e < 32 * kCols; e += kThreads) {
    float s = 0.0f;
#pragma unroll
    for (int wp = 0; wp < kWarps; ++wp) s += red[wp][e];
    fin[e] = s;
  }
  __syncthreads();

  // ---- split-K: the last block of this tile pair sums every split's partials, in order ----
  if (splits > 1 && !merge_splits<kThreads, kCols>(a, static_cast<size_t>(pair) * gridDim.x + ttile, split, splits, fin))
    return;
  qgemm_epilogue<E, kThreads, kCols>(w, a, tiles, t0, fin);
}

// ---- helpers of the streaming T <= 8 kernel (below) ----

__device__ __forceinline__ void cp_async16(void* smem_dst, const void* src, bool valid) {
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// ---- the streaming T <= 8 kernel (QGemvPath::kStream) ----
//
// Same weight layout and mma tiles as qgemm_kernel<NB = 1>. What kept that kernel
// far below the bf16 GEMV's bytes per second (measurements: docs/performance.md):
// it loads a batch of U steps, waits for all of it, computes it, then loads the
// next, so a warp has nothing in flight while it computes; it decodes the meta of
// every 32-column chunk again (two dependent __ldg and ~30 instructions per chunk
// and tile); and it merges its K splits through global memory (partials,
// __threadfence, an atomic and a re-read: three L2 round trips after the last
// weight arrives). This kernel:
//  - stages x (the block's K range, T rows; RMS-normalised when kNorm) and the meta
//    of the block's groups once in shared memory (cp.async), the meta decoded once
//    per block to f32 (s, beta): a fold is two 8-byte shared loads and FMAs;
//  - lets integer codes enter the mma without their zero point: 4-bit as 128 + q
//    (one LOP3 per pair, bf16 exact), 8-bit as q; a second mma with an all-ones A
//    gives Σx over the same columns, and a group folds as acc += s * Σ(code · x) +
//    beta * Σx with beta = -s (128 + z) (4-bit zero points), b - 128 s (4-bit MLX
//    biases), -s z or b (8-bit); FP8 folds s * Σ(v · x); once per group, not per
//    32-column chunk;
//  - runs blocks of 4 warps, up to 4 per SM (128 registers, no spills), so that one
//    wave holds the 3B shapes' grids and the next kernel's blocks can become
//    resident while this one drains;
//  - cuts K into S slices (S = 1, 2, 4, 8: the most that keep the grid in one wave);
//    the S slices of a tile pair are a thread-block cluster and rank 0 sums them
//    from distributed shared memory in rank order (deterministic; no global
//    partials, fences or atomics);
//  - keeps a ring of steps of weights in flight per warp (8 steps of 4-bit or 8-bit
//    codes, 4 of FP8), refilled as it computes, and requests the ring and the
//    block's meta (cp.async) before griddepcontrol.wait, so that under PDL the
//    weight reads overlap the previous kernel's tail.
// An earlier kernel with this arithmetic in blocks of 8 warps that split K only for
// few tile pairs (two blocks per SM, gate_up in two waves) was slower end to end and
// is gone (docs/performance.md).
// Learned from (ideas, not code): TensorRT-LLM's weightOnlyBatchedGemv (kernel.h: a
// CTA owns a few output columns over all of K, its threads strided along K, the
// CTA's group scales and zeros staged in shared memory), Marlin and vLLM's AWQ
// kernels (4-bit codes OR-ed into the mantissa of a magic constant: u4_pair_plus128),
// and the CUDA programming guide's distributed shared memory examples (cluster
// reductions).
constexpr int kStreamWarps = 4;
constexpr int kStreamThreads = kStreamWarps * 32;
constexpr int kStreamMaxSmem = 96 * 1024;
constexpr int kStreamMaxCluster = 8;  // portable cluster size

template <QCode C>
struct StreamDepth {
  static constexpr int kDepth = C == QCode::kFp8 ? 4 : 8;  // steps of weights in flight per warp (64 registers)
};

// Host-computed shape of one launch (plan_qstream).
struct QStreamPlan {
  int S = 1;             // K slices per tile pair = the cluster's size (grid x)
  int per = 0;           // steps per slice
  int x_stride = 0;      // bf16 elements per staged x row
  int meta_raw_off = 0;  // bytes: raw meta words [2][ng][16]
  int meta_off = 0;      // bytes: decoded (s, beta) [ng][2][16]
  int red_off = 0;       // bytes: the warps' sums [kStreamWarps][256] f32
  int recv_off = 0;      // bytes: rank 0 receives every rank's sums [S][256] f32 (S > 1)
  int smem = 0;          // bytes in all
};

// One block: tile pair blockIdx.y x K slice blockIdx.x (its rank in the cluster).
template <QCode C, bool kBias, bool kNorm, QEpilogue E>
__global__ void __launch_bounds__(kStreamThreads, 4)
    qgemv_stream_kernel(const QWeight w, const QGemmArgs a, const QStreamPlan p) {
  using Kd = Kind<C>;
  constexpr int D = StreamDepth<C>::kDepth;
  constexpr bool kOnes = C != QCode::kFp8;  // integer codes need Σx
  extern __shared__ uint4 smem_u4[];
  char* smem = reinterpret_cast<char*>(smem_u4);
  __shared__ float inv_rms[kQGemvMaxTokens];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int rank = blockIdx.x, pair = blockIdx.y, S = p.S;
  // This block has started: the other ranks may write into its shared memory once
  // they have waited on this phase (before the merge).
  if (S > 1) cluster_arrive_relaxed();
  const int T = a.T, K = w.K;
  int tiles[2];
  tile_pair<E>(w, a, pair, tiles);
  const int s_begin = min(w.steps, rank * p.per), s_end = min(w.steps, s_begin + p.per);
  const int nsteps = s_end - s_begin;  // 0 for a trailing rank past K
  const int ws = s_begin + (nsteps * warp) / kStreamWarps, we = s_begin + (nsteps * (warp + 1)) / kStreamWarps;

  // ---- the first D steps of weights (all of them where the warp has <= D): before waiting ----
  uint4 wv[D][2][Kd::kWVecs];
  // Integer codes: the lane's word of step 0 of each tile (opaque(): kept in registers,
  // not recomputed at every step); step st is 32 st words on.
  const uint4* const wq0 = opaque(static_cast<const uint4*>(w.codes) + q_word_index(tiles[0], w.steps, 0, lane));
  const uint4* const wq1 = opaque(static_cast<const uint4*>(w.codes) + q_word_index(tiles[1], w.steps, 0, lane));
  auto load_step = [&](uint4 (&slot)[2][Kd::kWVecs], int st) {
#pragma unroll
    for (int ti = 0; ti < 2; ++ti) {
      if constexpr (C == QCode::kFp8) {
        const uint8_t* base = static_cast<const uint8_t*>(w.codes) +
                              (static_cast<size_t>(tiles[ti]) * 16 + g) * w.Kp + static_cast<size_t>(st) * 64 + 16 * t;
        slot[ti][0] = ld_stream(base);
        slot[ti][Kd::kWVecs - 1] = ld_stream(base + static_cast<size_t>(8) * w.Kp);
      } else {
        slot[ti][0] = ld_stream((ti == 0 ? wq0 : wq1) + 32 * st);
      }
    }
  };
#pragma unroll
  for (int u = 0; u < D; ++u)
    if (ws + u < we) load_step(wv[u], ws + u);

  // ---- the meta of the slice's groups, raw, into shared memory ----
  const int k_lo = s_begin * Kd::kStep, k_hi = s_end * Kd::kStep;  // the slice's columns (k_hi <= Kp)
  const int g_lo = k_lo / w.group, ng = nsteps > 0 ? (k_hi - 1) / w.group - g_lo + 1 : 0;
  uint32_t* meta_raw = reinterpret_cast<uint32_t*>(smem + p.meta_raw_off);  // [2][ng][16]
  float2* meta_sb = reinterpret_cast<float2*>(smem + p.meta_off);           // [ng][2][16]
  for (int e = threadIdx.x; e < 2 * ng * 4; e += kStreamThreads) {
    const int ti = e / (ng * 4), rest = e % (ng * 4);
    const uint4* src = reinterpret_cast<const uint4*>(w.meta + q_meta_index(tiles[ti], w.groups, g_lo, 0)) + rest;
    cp_async16(meta_raw + (ti * ng + rest / 4) * 16 + (rest % 4) * 4, src, true);
  }
  pdl_launch_dependents();
  pdl_wait();

  // ---- x[:, k_lo:k_hi) into shared memory (zeros past K); 1 / rms of each token ----
  const bf16* x = static_cast<const bf16*>(a.x);
  bf16* xs = reinterpret_cast<bf16*>(smem);  // [T][x_stride]
  const int row_vecs = (k_hi - k_lo) / 8;
  for (int e = threadIdx.x; e < T * row_vecs; e += kStreamThreads) {
    const int tok = e / row_vecs, v = e % row_vecs, col = k_lo + 8 * v;
    cp_async16(xs + static_cast<size_t>(tok) * p.x_stride + 8 * v, x + static_cast<size_t>(tok) * K + (col < K ? col : 0),
               col < K);
  }
  if constexpr (kNorm) {
    for (int c = warp; c < T; c += kStreamWarps) {  // as the other kernels: the same sums in the same order
      const float inv = warp_inv_rms(x + static_cast<size_t>(c) * K, K, a.eps, lane);
      if (lane == 0) inv_rms[c] = inv;
    }
  }
  cp_async_wait_all();
  __syncthreads();
  for (int e = threadIdx.x; e < 2 * ng * 16; e += kStreamThreads) {
    const int ti = e / (ng * 16), gl = (e / 16) % ng, r = e % 16;
    meta_sb[(gl * 2 + ti) * 16 + r] = decode_fold_meta<C, kBias>(meta_raw[e], w.meta_f16);
  }
  if constexpr (kNorm) {
    for (int e = threadIdx.x; e < T * row_vecs; e += kStreamThreads) {
      const int tok = e / row_vecs, v = e % row_vecs, col = k_lo + 8 * v;
      if (col >= K) continue;
      uint4* sp = reinterpret_cast<uint4*>(xs + static_cast<size_t>(tok) * p.x_stride + 8 * v);
      Vec8 xr, nw;
      xr.u = *sp;
      nw.u = __ldg(reinterpret_cast<const uint4*>(static_cast<const bf16*>(a.norm_w) + col));
#pragma unroll
      for (int i = 0; i < 8; ++i) xr.h[i] = norm_apply(bf(xr.h[i]), inv_rms[tok], nw.h[i], a.norm_kind);
      *sp = xr.u;
      if (pair == 0) *reinterpret_cast<uint4*>(static_cast<bf16*>(a.normed) + static_cast<size_t>(tok) * K + col) = xr.u;
    }
  }
  __syncthreads();

  // ---- the warp's steps: compute step st from its ring slot, then refill the slot with st + D ----
  float acc[2][4], part[2][4], psum[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    acc[0][e] = acc[1][e] = part[0][e] = part[1][e] = psum[e] = 0.0f;
  }
  // The lane's B slice (token min(g, T - 1): columns past T are discarded) at column col: xs[xbase + col].
  const int xbase = min(g, T - 1) * p.x_stride + t * (Kd::kChunk / 4) - k_lo;
  constexpr uint32_t kOnesBf2 = 0x3F803F80u;  // bf16x2 (1, 1)
  const uint32_t ones[4] = {kOnesBf2, kOnesBf2, kOnesBf2, kOnesBf2};
  const uint32_t magic = opaque(0x43004300u);     // in a register (u4_pair_plus128_r)
  const int cpg = w.group / Kd::kChunk;           // chunks per group
  int grp = ws * Kd::kChunks / cpg - g_lo;        // the group being accumulated (slice-local)
  int left = cpg - (ws * Kd::kChunks) % cpg;      // its chunks still to come
  auto fold = [&]() {
    const float2* ms = meta_sb + grp * 32;
#pragma unroll
    for (int ti = 0; ti < 2; ++ti) {
      const float2 m0 = ms[ti * 16 + g], m1 = ms[ti * 16 + g + 8];
      acc[ti][0] = fmaf(m0.x, part[ti][0], acc[ti][0]);
      acc[ti][1] = fmaf(m0.x, part[ti][1], acc[ti][1]);
      acc[ti][2] = fmaf(m1.x, part[ti][2], acc[ti][2]);
      acc[ti][3] = fmaf(m1.x, part[ti][3], acc[ti][3]);
      if constexpr (kOnes) {
        acc[ti][0] = fmaf(m0.y, psum[0], acc[ti][0]);
        acc[ti][1] = fmaf(m0.y, psum[1], acc[ti][1]);
        acc[ti][2] = fmaf(m1.y, psum[0], acc[ti][2]);
        acc[ti][3] = fmaf(m1.y, psum[1], acc[ti][3]);
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) part[ti][e] = 0.0f;
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) psum[e] = 0.0f;
  };
  for (int base = ws; base < we; base += D) {
#pragma unroll
    for (int u = 0; u < D; ++u) {
      const int st = base + u;
      if (st < we) {
#pragma unroll
        for (int c = 0; c < Kd::kChunks; ++c) {
          const int col = st * Kd::kStep + c * Kd::kChunk;
          uint4 xv[Kd::kXVecs];
#pragma unroll
          for (int v = 0; v < Kd::kXVecs; ++v) xv[v] = *reinterpret_cast<const uint4*>(xs + xbase + col + 8 * v);
#pragma unroll
          for (int i = 0; i < Kd::kMmaPerChunk; ++i) {
            // Positions 4i..4i+3 of the lane's slice: words 2i and 2i+1 of its x vectors.
            const uint4& x0 = xv[(2 * i) / 4];
            const uint32_t b0 = word_of(x0, (2 * i) % 4), b1 = word_of(x0, (2 * i + 1) % 4);
#pragma unroll
            for (int ti = 0; ti < 2; ++ti) {
              uint32_t rg, rg8;
              tile_row_words<C>(wv[u][ti], c, i, rg, rg8);
              uint32_t af[4];
              a_fragment_raw<C>(af, rg, rg8, i, magic);
              mma_bf16(part[ti], af, b0, b1);
            }
            if constexpr (kOnes) mma_bf16(psum, ones, b0, b1);
          }
          if (--left == 0) {
            fold();
            ++grp;
            left = cpg;
          } else if (st == we - 1 && c == Kd::kChunks - 1) {
            fold();  // the warp's run ends inside this group
          }
        }
        if (st + D < we) load_step(wv[u], st + D);
      }
    }
  }

  // ---- sum over the warps, in warp order: fin[row * 8 + col], rows 0..15 tile 0, 16..31 tile 1 ----
  float* red = reinterpret_cast<float*>(smem + p.red_off);  // [kStreamWarps][256]
#pragma unroll
  for (int ti = 0; ti < 2; ++ti) {
    const int row = ti * 16 + g, col = 2 * t;
    float* r = red + warp * 256;
    r[row * 8 + col] = acc[ti][0];
    r[row * 8 + col + 1] = acc[ti][1];
    r[(row + 8) * 8 + col] = acc[ti][2];
    r[(row + 8) * 8 + col + 1] = acc[ti][3];
  }
  __syncthreads();
  float* fin = red;  // each thread reads and writes only its own elements
  for (int e = threadIdx.x; e < 256; e += kStreamThreads) {
    float s = 0.0f;
#pragma unroll
    for (int wp = 0; wp < kStreamWarps; ++wp) s += red[wp * 256 + e];
    fin[e] = s;
  }
  __syncthreads();

  // ---- the cluster's K slices, summed by rank 0 in rank order ----
  if (S > 1) {
    float* recv = reinterpret_cast<float*>(smem + p.recv_off);  // [S][256], in rank 0
    cluster_wait_acquire();  // every rank has started (its arrive at the top)
    const uint32_t dst = cluster_smem_addr(recv + rank * 256, 0);
    for (int e = threadIdx.x; e < 64; e += kStreamThreads)
      st_cluster_f32x4(dst + 16 * e, reinterpret_cast<const float4*>(fin)[e]);
    cluster_arrive_release();
    cluster_wait_acquire();  // rank 0 sees every slice; no rank reads another's memory after this
    if (rank != 0) return;
    for (int e = threadIdx.x; e < 256; e += kStreamThreads) {
      float s = 0.0f;
      for (int r = 0; r < S; ++r) s += recv[r * 256 + e];
      fin[e] = s;
    }
    __syncthreads();
  }
  qgemm_epilogue<E, kStreamThreads, 8>(w, a, tiles, 0, fin);
}

// The streaming kernel's K split and shared memory for T tokens (force_split > 0:
// that many slices, for measurements); false when no split keeps the shared
// memory within kStreamMaxSmem (the caller runs qgemm_kernel).
bool plan_qstream(const QWeight& w, const QGemmArgs& a, int pairs, int num_sms, int force_split, QStreamPlan* p) {
  const int step_cols = q_step_cols(w.code);
  auto fill = [&](int S) {
    p->S = S;
    p->per = (w.steps + S - 1) / S;
    const int ncols = p->per * step_cols;  // a multiple of 32: x rows of ncols * 2 bytes, 0 or 64 mod 128
    // Rows 64 bytes apart mod 128: the 8 rows' 64-byte lane slices of a chunk take 4 wavefronts.
    p->x_stride = ncols + ((ncols * 2) % 128 == 0 ? 32 : 0);
    const int ng = std::min(w.groups, (ncols + w.group - 1) / w.group + 1);
    int off = (a.T * p->x_stride * 2 + 15) / 16 * 16;
    p->meta_raw_off = off;
    off += 2 * ng * 16 * 4;
    p->meta_off = off;
    off += 2 * ng * 16 * 8;
    p->red_off = off;
    off += kStreamWarps * 256 * 4;
    p->recv_off = off;
    if (S > 1) off += S * 256 * 4;
    p->smem = off;
  };
  auto warp_steps = [&](int S) {
    const int per = (w.steps + S - 1) / S;
    return (per + kStreamWarps - 1) / kStreamWarps;
  };
  int S = 1;
  if (force_split > 0) {
    S = std::min(force_split, kStreamMaxCluster);
  } else {
    // Blocks one wave holds: 4 per SM (registers), fewer when shared memory says so.
    fill(1);
    const int per_sm = std::max(1, std::min(4, (228 * 1024) / (p->smem + 1024)));
    const int64_t slots = static_cast<int64_t>(per_sm) * num_sms;
    // The most slices whose grid still fits one wave, while every warp keeps a
    // step: on the H200 (4-bit, T = 1) the fastest of S = 1/2/4/8 per shape was 4
    // for 3072x3072 and 3072x8192, 2 for 5120x3072, 1 for 16384x3072, each the
    // largest one-wave S (kr-cuda-bench --gemv-bench; docs/performance.md). An
    // earlier rule (slices only while a warp's steps overflowed its ring) took 2 for
    // 3072x3072: 6.9 us against 5.1 at S = 4.
    while (S < kStreamMaxCluster && static_cast<int64_t>(pairs) * 2 * S <= slots && warp_steps(2 * S) >= 1) S *= 2;
  }
  fill(S);
  while (p->smem > kStreamMaxSmem && S < kStreamMaxCluster) fill(S *= 2);
  return p->smem <= kStreamMaxSmem;
}

template <QCode C, bool kBias, bool kNorm, QEpilogue E>
void launch_stream_t(const QWeight& w, const QGemmArgs& a, const QStreamPlan& p, int pairs, bool pdl,
                     cudaStream_t stream) {
  auto* kernel = qgemv_stream_kernel<C, kBias, kNorm, E>;
  static bool configured = false;  // one backend thread: no race
  if (!configured) {
    KR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kStreamMaxSmem));
    configured = true;
  }
  launch_cluster_x(pdl, p.S, kernel, dim3(static_cast<unsigned>(p.S), static_cast<unsigned>(pairs)),
                   dim3(kStreamThreads), static_cast<size_t>(p.smem), stream, w, a, p);
}

// Launches the streaming kernel; false (nothing launched) when plan_qstream finds no plan.
bool launch_qgemv_stream(const QWeight& w, const QGemmArgs& a, QEpilogue e, int num_sms, int force_split, bool pdl,
                         cudaStream_t stream) {
  const int pairs = e == QEpilogue::kPlain ? w.Np / 32 : w.N / 32;
  QStreamPlan p;
  if (!plan_qstream(w, a, pairs, num_sms, force_split, &p)) return false;
  with_epilogue(e, [&](auto ep) {
    with_code(w, [&](auto code, auto bias) {
      if (a.norm_w != nullptr) {
        launch_stream_t<code(), bias(), true, ep()>(w, a, p, pairs, pdl, stream);
      } else {
        launch_stream_t<code(), bias(), false, ep()>(w, a, p, pairs, pdl, stream);
      }
    });
  });
  return true;
}

// QGemvPath::kRow: an FP8 weight at T == 1 through launch_gemv1 (same fused
// prologue and epilogues); false (nothing launched) where it does not apply.
bool launch_qgemv_row(const QWeight& w, const QGemmArgs& a, QEpilogue e, bool tc, bool pdl, cudaStream_t stream) {
  if (w.code != QCode::kFp8 || a.T != 1 || w.perm != nullptr) return false;
  Gemv1Args g;
  g.x = a.x;
  g.w = w.codes;
  g.weight = Gemv1Weight::kFp8;
  g.w_scale = reinterpret_cast<const float*>(w.meta);  // FP8 meta words are f32 bits (qgemm_layout.h)
  g.w_ld = w.Kp;
  g.w_group = w.group;
  g.w_groups = w.groups;
  g.fp8_tc = tc;
  g.out = a.out;
  g.out_f32 = a.out_f32;
  g.N = w.N;
  g.K = w.K;
  g.norm_w = a.norm_w;
  g.eps = a.eps;
  g.norm_kind = a.norm_kind;
  g.normed = a.normed;
  g.act = a.act;
  g.activation = a.activation;
  g.bias = a.bias;
  g.positions = a.positions;
  g.slots = a.slots;
  g.inv_freq = a.inv_freq;
  g.k_cache = a.k_cache;
  g.v_cache = a.v_cache;
  g.kv_fp8 = a.kv_fp8;
  g.k_scale = a.k_scale;
  g.v_scale = a.v_scale;
  g.q_heads = a.q_heads;
  g.kv_heads = a.kv_heads;
  g.head_dim = a.head_dim;
  Gemv1Epilogue ge = Gemv1Epilogue::kPlain;
  switch (e) {
    case QEpilogue::kPlain: ge = Gemv1Epilogue::kPlain; break;
    case QEpilogue::kSwiglu: ge = Gemv1Epilogue::kSwiglu; break;
    case QEpilogue::kRope: ge = Gemv1Epilogue::kRope; break;
  }
  return launch_gemv1(g, ge, pdl, stream);
}

template <QCode C, bool kBias, int NB, bool kNorm, QEpilogue E>
void launch_t(const QWeight& w, const QGemmArgs& a, dim3 grid, int splits, bool pdl, cudaStream_t stream) {
  launch(pdl, qgemm_kernel<C, kBias, NB, kNorm, E>, grid, dim3(kThreads), 0, stream, w, a, splits);
}

template <QCode C, bool kBias, QEpilogue E>
void launch_nb(const QWeight& w, const QGemmArgs& a, dim3 grid, int splits, bool pdl, cudaStream_t stream) {
  if (a.T <= kQGemvMaxTokens) {
    if (a.norm_w != nullptr) {
      launch_t<C, kBias, 1, true, E>(w, a, grid, splits, pdl, stream);
    } else {
      launch_t<C, kBias, 1, false, E>(w, a, grid, splits, pdl, stream);
    }
  } else {
    launch_t<C, kBias, 4, false, E>(w, a, grid, splits, pdl, stream);
  }
}

// ---- the batched kernel of T > 8 (QGemmPath::kV2) ----
//
// qgemm_kernel's T > 8 shape owns two 16-row tiles x 32 tokens per block, so at a
// decode batch of 64 every weight is read and dequantized twice (two token tiles),
// and every block loads its activations from L2 again: pairs x T x K x 2 bytes
// (3B o_proj at T = 64: 38 MB of x against 4.7 MB of weights), with two steps of
// loads in flight per warp. This kernel follows Marlin's plan (IST-DASLab/marlin:
// weights dequantized in registers as mma operands, activations staged in shared
// memory by a cp.async pipeline, K split over blocks so that one wave fills the
// GPU; ideas, not code):
//  - a block of 8 warps owns 8 tile pairs (256 rows of W) and up to 64 tokens
//    (NT n8 tiles; T > 64: a grid dimension over token passes); warp w owns tile
//    pair w and every token of the pass, so each packed weight byte is read and
//    dequantized once per token pass, and the dequantized A fragment feeds NT
//    mma tiles (the old kernel: 4);
//  - x is staged per weight step (64 columns of 4-bit, 32 of 8-bit codes) in a
//    ring of kBStages shared-memory stages filled by cp.async (zeros past T and
//    K), each stage read by all 8 warps: x crosses L2 once per 256 rows, not per
//    32; a lane reads its B operands of a chunk as one 16-byte vector (the layout
//    of qgemm_layout.h), rows of 4-bit stages XOR-swizzled by chunk so that the
//    8 lanes of a quarter-warp hit distinct banks;
//  - the meta of the block's 16 tiles is copied with the x stage of the step
//    where a group starts (1 KB per group) and decoded by each warp once per group;
//  - each warp keeps a ring of kBDepth steps of its weights in flight in registers
//    (refilled as it computes); the ring is requested before griddepcontrol.wait;
//  - K is split into S <= 8 slices, a thread-block cluster; the slices are summed
//    through distributed shared memory (rank r sums the tile pairs p with p % S ==
//    r in rank order: deterministic, no global partials) and each rank runs the
//    epilogue (qgemm_epilogue, shared with the other kernels) of its pairs.
// Arithmetic as qgemm_kernel's T > 8 shape: (q - z) s or q s + b rounded to bf16
// (a_fragment), bf16 mma, f32 sums.
constexpr int kBWarps = 8;  // tile pairs of a block
constexpr int kBThreads = kBWarps * 32;
constexpr int kBStages = 4;  // x stages in flight (cp.async ring)
constexpr int kBDepth = 4;   // steps of weights in flight per warp (registers)
constexpr int kBMaxCluster = 8;

// Bytes of one shape's shared memory: the x ring [kBStages][8 NT][step] bf16, the meta
// ring [kBStages][chunks][16 tiles][16] words, aliased after the loop by the sums
// [kBWarps][32][8 NT + 1] f32 (rows padded: qgemm_epilogue reads columns).
template <QCode C, int NT>
constexpr int batched_smem_bytes() {
  constexpr int ring = kBStages * (8 * NT * Kind<C>::kStep * 2 + Kind<C>::kChunks * 2 * kBWarps * 16 * 4);
  constexpr int fin = kBWarps * 32 * (8 * NT + 1) * 4;
  return ring > fin ? ring : fin;
}

// One block: tile pairs [8 blockIdx.z, + 8) x tokens [64 blockIdx.y, + 8 NT) x K slice
// blockIdx.x (its rank in the cluster of S = gridDim.x).
template <QCode C, bool kBias, int NT, QEpilogue E>
__global__ void __launch_bounds__(kBThreads, 1)
    qgemm_batched_kernel(const QWeight w, const QGemmArgs a, const int per) {
  using Kd = Kind<C>;
  static_assert(C != QCode::kFp8, "integer codes only");
  constexpr int kCols = 8 * NT;                        // tokens of the pass
  constexpr int kXStage = kCols * Kd::kStep;           // bf16 per x stage
  constexpr int kMStage = Kd::kChunks * 2 * kBWarps * 16;  // meta words per stage
  extern __shared__ uint4 smem_u4[];
  bf16* xring = reinterpret_cast<bf16*>(smem_u4);
  uint32_t* mring = reinterpret_cast<uint32_t*>(xring + kBStages * kXStage);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int rank = blockIdx.x, S = gridDim.x, t0 = blockIdx.y * kCols, pair0 = blockIdx.z * kBWarps;
  const int T = a.T, K = w.K;
  const int pairs = E == QEpilogue::kPlain ? w.Np / 32 : w.N / 32;
  const int pair = pair0 + warp;
  const bool valid = pair < pairs;
  int tiles[2] = {0, 0};
  if (valid) tile_pair<E>(w, a, pair, tiles);
  const int s_begin = min(w.steps, rank * per), s_end = min(w.steps, s_begin + per);

  // ---- the warp's first kBDepth steps of weights: before waiting on the previous kernel ----
  uint4 wv[kBDepth][2][Kd::kWVecs];
  auto load_step = [&](uint4 (&slot)[2][Kd::kWVecs], int st) {
#pragma unroll
    for (int ti = 0; ti < 2; ++ti)
      slot[ti][0] = valid ? ld_stream(static_cast<const uint4*>(w.codes) + q_word_index(tiles[ti], w.steps, st, lane))
                       : make_uint4(0, 0, 0, 0);
  };
#pragma unroll
  for (int u = 0; u < kBDepth; ++u)
    if (s_begin + u < s_end) load_step(wv[u], s_begin + u);

  // Whether chunk kc (global index) starts a group for this block (its meta is copied then).
  static_assert(Kd::kChunk == 32, "ChunkGroups counts 32-column chunks");
  const ChunkGroups cg(w.group);
  auto group_start = [&](int kc) { return kc == s_begin * Kd::kChunks || cg.starts(kc); };
  // The meta of step st's group starts into ring slot `slot`: thread e copies 16 bytes
  // of (chunk e / 64, tile (e / 4) % 16, quarter e % 4).
  auto issue_meta = [&](int st, int slot) {
    const int e = threadIdx.x;
    if (e >= Kd::kChunks * 64) return;
    const int c = e / 64, tb = (e / 4) % 16, q = e % 4, kc = st * Kd::kChunks + c;
    const int p = pair0 + tb / 2;
    if (!group_start(kc) || p >= pairs) return;
    int tl[2];
    tile_pair<E>(w, a, p, tl);
    const uint32_t* src = w.meta + q_meta_index(tl[tb % 2], w.groups, cg.group(kc), 0) + 4 * q;
    cp_async16(mring + slot * kMStage + (c * 2 * kBWarps + tb) * 16 + 4 * q, src, true);
  };
  // x[t0 .. t0 + kCols, step st's columns] into ring slot `slot` (zeros past T and K),
  // at q_xstage_index (4-bit: the two chunks of a row swizzled by its parity).
  const bf16* x = static_cast<const bf16*>(a.x);
  auto issue_x = [&](int st, int slot) {
    constexpr int kRowVecs = Kd::kStep / 8;
    for (int e = threadIdx.x; e < kCols * kRowVecs; e += kBThreads) {
      const int r = e / kRowVecs, v = e % kRowVecs, tok = t0 + r, col = st * Kd::kStep + 8 * v;
      const bool ok = tok < T && col < K;
      cp_async16(xring + slot * kXStage + q_xstage_index(C, r, 8 * v), ok ? x + static_cast<size_t>(tok) * K + col : x,
                 ok);
    }
  };
  for (int i = 0; i < kBStages - 1; ++i)
    if (s_begin + i < s_end) issue_meta(s_begin + i, i);
  pdl_launch_dependents();
  pdl_wait();
  for (int i = 0; i < kBStages - 1; ++i) {
    if (s_begin + i < s_end) issue_x(s_begin + i, i);
    cp_async_commit();  // one group per stage, empty ones included: wait_group counts stay uniform
  }

  float acc[2][NT][4];
#pragma unroll
  for (int ti = 0; ti < 2; ++ti)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[ti][j][e] = 0.0f;
  RowMeta m[2];
  // ---- the steps: wait for stage st, refill the ring's oldest slot, compute, reload the weights ----
  for (int base = s_begin; base < s_end; base += kBDepth) {
#pragma unroll
    for (int u = 0; u < kBDepth; ++u) {
      const int st = base + u;
      if (st < s_end) {  // block-uniform
        cp_async_wait<kBStages - 2>();
        __syncthreads();  // stage st visible to all; every warp is done with step st - 1's slot
        const int nxt = st + kBStages - 1;
        if (nxt < s_end) {
          issue_meta(nxt, (nxt - s_begin) % kBStages);
          issue_x(nxt, (nxt - s_begin) % kBStages);
        }
        cp_async_commit();
        const int slot = (st - s_begin) % kBStages;
        const bf16* xs = xring + slot * kXStage;
#pragma unroll
        for (int c = 0; c < Kd::kChunks; ++c) {
          const int kc = st * Kd::kChunks + c;
          if (group_start(kc)) {  // warp-uniform: decode the rows g, g + 8 of both tiles once per group
            const uint32_t* ms = mring + slot * kMStage + (c * 2 * kBWarps + 2 * warp) * 16;
#pragma unroll
            for (int ti = 0; ti < 2; ++ti) m[ti] = decode_meta<C, kBias>(ms[ti * 16 + g], ms[ti * 16 + g + 8], w.meta_f16);
          }
          uint32_t af[2][Kd::kMmaPerChunk][4];
#pragma unroll
          for (int ti = 0; ti < 2; ++ti)
#pragma unroll
            for (int i = 0; i < Kd::kMmaPerChunk; ++i) {
              uint32_t rg, rg8;
              tile_row_words<C>(wv[u][ti], c, i, rg, rg8);
              a_fragment<C, false, kBias>(af[ti][i], rg, rg8, i, m[ti]);
            }
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            // Positions 4i..4i+3 of the lane's slice of token 8 j + g: words 2i, 2i + 1.
            const uint4 xv = *reinterpret_cast<const uint4*>(xs + q_xstage_index(C, 8 * j + g, 32 * c + 8 * t));
#pragma unroll
            for (int i = 0; i < Kd::kMmaPerChunk; ++i) {
              const uint32_t b0 = word_of(xv, 2 * i), b1 = word_of(xv, 2 * i + 1);
#pragma unroll
              for (int ti = 0; ti < 2; ++ti) mma_bf16(acc[ti][j], af[ti][i], b0, b1);
            }
          }
        }
        if (st + kBDepth < s_end) load_step(wv[u], st + kBDepth);
      }
    }
  }

  // ---- the warp's sums: fin[warp][row * kLd + col], rows 0..15 tile 0, 16..31 tile 1 ----
  constexpr int kLd = kCols + 1;
  constexpr int kPairFloats = 32 * kLd;
  cp_async_wait<0>();
  __syncthreads();  // the ring is free
  float* fin_all = reinterpret_cast<float*>(smem_u4);
  {
    float* fin = fin_all + warp * kPairFloats;
#pragma unroll
    for (int ti = 0; ti < 2; ++ti)
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int row = ti * 16 + g, col = 8 * j + 2 * t;
        fin[row * kLd + col] = acc[ti][j][0];
        fin[row * kLd + col + 1] = acc[ti][j][1];
        fin[(row + 8) * kLd + col] = acc[ti][j][2];
        fin[(row + 8) * kLd + col + 1] = acc[ti][j][3];
      }
  }
  // ---- the cluster's K slices: rank r sums tile pairs r, r + S, ... over the ranks in order ----
  cluster_sum_pairs<kBThreads, kBWarps, kPairFloats, kBMaxCluster>(fin_all, rank, S);
  for (int p = rank; p < kBWarps; p += S) {
    if (pair0 + p >= pairs) break;
    int tl[2];
    tile_pair<E>(w, a, pair0 + p, tl);
    qgemm_epilogue<E, kBThreads, kCols, kLd>(w, a, tl, t0, fin_all + p * kPairFloats);
  }
}

template <QCode C, bool kBias, int NT, QEpilogue E>
void launch_batched_t(const QWeight& w, const QGemmArgs& a, int pairs, int num_sms, bool pdl, cudaStream_t stream) {
  auto* kernel = qgemm_batched_kernel<C, kBias, NT, E>;
  constexpr int kSmem = batched_smem_bytes<C, NT>();
  // How many clusters of s blocks the GPU holds at once (s = 1..8), queried once.
  static int clusters[kBMaxCluster + 1] = {};  // one backend thread: no race
  static bool configured = false;
  if (!configured) {
    KR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    query_max_active_clusters(kernel, kBThreads, kSmem, kBMaxCluster, clusters);
    configured = true;
  }
  const int rowblocks = (pairs + kBWarps - 1) / kBWarps, passes = (a.T + 8 * NT - 1) / (8 * NT);
  const int64_t base = static_cast<int64_t>(rowblocks) * passes;
  // The most K slices (a cluster, at most 8, each slice with a step) whose clusters
  // all fit at once (one block per SM: 136-196 registers a thread, -Xptxas -v). The
  // SM count alone overestimates it: clusters are placed within a GPC, so on 132 SMs
  // only 17 clusters of 6 fit, and 20 row blocks x 6 slices ran in two waves (3B
  // qkv at 64 tokens, Nsight Compute, docs/performance.md).
  int S = 1;
  for (int s = std::min(kBMaxCluster, w.steps); s > 1; --s)
    if (static_cast<int64_t>(clusters[s]) >= base && static_cast<int64_t>(s) * base <= num_sms) {
      S = s;
      break;
    }
  const int per = (w.steps + S - 1) / S;
  launch_cluster_x(pdl, S, kernel,
                   dim3(static_cast<unsigned>(S), static_cast<unsigned>(passes), static_cast<unsigned>(rowblocks)),
                   dim3(kBThreads), static_cast<size_t>(kSmem), stream, w, a, per);
}

// Launches the batched kernel; false (nothing launched) for FP8 codes.
bool launch_qgemm_batched(const QWeight& w, const QGemmArgs& a, QEpilogue e, int num_sms, bool pdl,
                          cudaStream_t stream) {
  if (w.code == QCode::kFp8) return false;
  const int pairs = e == QEpilogue::kPlain ? w.Np / 32 : w.N / 32;
  with_epilogue(e, [&](auto ep) {
    with_code(w, [&](auto code, auto bias) {
      if constexpr (code() != QCode::kFp8) {
        if (a.T <= 32) {
          launch_batched_t<code(), bias(), 4, ep()>(w, a, pairs, num_sms, pdl, stream);
        } else {
          launch_batched_t<code(), bias(), 8, ep()>(w, a, pairs, num_sms, pdl, stream);
        }
      }
    });
  });
  return true;
}

// ---- dense dequantization, embedding rows, column gather, FP8 activation quantization ----

// The dequantized value of (row n, canonical column j), in f32 with one rounding
// per operation as QuantizedMatrix::dequantize (product, then sum).
__device__ __forceinline__ float q_value(const QWeight& w, int n, int j) {
  const int nt = n / 16, r = n % 16;
  const int grp = j / w.group;
  const uint32_t m = w.meta[q_meta_index(nt, w.groups, grp, r)];
  if (w.code == QCode::kFp8) {
    const uint8_t c = static_cast<const uint8_t*>(w.codes)[static_cast<size_t>(n) * w.Kp + j];
    const __half h = __half(__nv_cvt_fp8_to_halfraw(c, __NV_E4M3));
    return __fmul_rn(__half2float(h), __uint_as_float(m));
  }
  const QCodePos p = q_code_pos(w.code, w.steps, n, j);
  const uint32_t word = reinterpret_cast<const uint32_t*>(w.codes)[p.vec * 4 + p.word];
  const float q = static_cast<float>((word >> p.shift) & (w.code == QCode::kU4 ? 0xFu : 0xFFu));
  const float s = meta_float(m & 0xFFFFu, w.meta_f16);
  if (w.has_bias) return __fadd_rn(__fmul_rn(q, s), meta_float(m >> 16, w.meta_f16));
  return __fmul_rn(q - static_cast<float>(m >> 16), s);
}

// One thread per (row, 8 canonical columns); grid-stride.
__global__ void qdequant_kernel(const QWeight w, bf16* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t per_row = w.K / 8, total = static_cast<int64_t>(w.N) * per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int n = static_cast<int>(i / per_row), j0 = static_cast<int>(i % per_row) * 8;
    Vec8 v;
#pragma unroll
    for (int e = 0; e < 8; ++e) v.h[e] = to_bf(q_value(w, n, j0 + e));
    if (w.perm == nullptr) {
      *reinterpret_cast<uint4*>(out + static_cast<size_t>(n) * w.K + j0) = v.u;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) out[static_cast<size_t>(n) * w.K + w.perm[j0 + e]] = v.h[e];
    }
  }
}

// The same values as qdequant_kernel (q_value's arithmetic) for integer codes in
// the order they are stored: one thread per 16-byte code vector of (tile nt, step,
// lane (g, t)), read once and coalesced across the warp (qgemm_layout.h), holding
// rows 16 nt + g and 16 nt + g + 8 at the lane's 8 consecutive columns of each of
// the step's chunks: 4 (4-bit) or 2 (8-bit) 16-byte stores of bf16, four lanes
// covering 64 contiguous bytes of a row. qdequant_kernel read each code word 8
// times, one 4-byte load per element (its loads scattered over the tile).
// Without perm only (act-order scatters the columns: qdequant_kernel).
template <QCode C>
__global__ void qdequant_stored_kernel(const QWeight w, bf16* out) {
  static_assert(C != QCode::kFp8, "integer codes");
  constexpr int kChunksPerStep = C == QCode::kU4 ? 2 : 1;
  const int64_t vecs = static_cast<int64_t>(w.Np / kQTileRows) * w.steps * 32;
  const uint4* codes = static_cast<const uint4*>(w.codes);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < vecs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int lane = static_cast<int>(i % 32), g = lane / 4, t = lane % 4;
    const int64_t tile_step = i / 32;
    const int nt = static_cast<int>(tile_step / w.steps), step = static_cast<int>(tile_step % w.steps);
    const uint4 v = __ldg(codes + i);
    const uint32_t word[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int c = 0; c < kChunksPerStep; ++c) {
      const int col = (step * kChunksPerStep + c) * 32 + 8 * t;  // the lane's 8 columns of this chunk
      if (col >= w.K) continue;                                  // K % 8 == 0: whole vectors
      const int grp = col / w.group;
#pragma unroll
      for (int upper = 0; upper < 2; ++upper) {
        const int r = g + 8 * upper, n = nt * kQTileRows + r;
        if (n >= w.N) continue;
        const uint32_t m = __ldg(w.meta + q_meta_index(nt, w.groups, grp, r));
        const float s = meta_float(m & 0xFFFFu, w.meta_f16);
        const float hi = w.has_bias ? meta_float(m >> 16, w.meta_f16) : static_cast<float>(m >> 16);
        Vec8 o;
#pragma unroll
        for (int p = 0; p < 8; ++p) {
          uint32_t q;
          if constexpr (C == QCode::kU4) {
            q = (word[c * 2 + upper] >> (4 * u4_nibble(p))) & 0xFu;
          } else {
            q = (word[upper * 2 + p / 4] >> (8 * (p % 4))) & 0xFFu;
          }
          const float qf = static_cast<float>(q);
          o.h[p] = to_bf(w.has_bias ? __fadd_rn(__fmul_rn(qf, s), hi) : __fmul_rn(qf - hi, s));
        }
        *reinterpret_cast<uint4*>(out + static_cast<size_t>(n) * w.K + col) = o.u;
      }
    }
  }
}

__global__ void qembedding_kernel(const QWeight w, const int32_t* ids, float scale, bf16* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int tok = blockIdx.x, n = ids[tok];
  for (int j = threadIdx.x; j < w.K; j += blockDim.x) {
    const int col = w.perm == nullptr ? j : w.perm[j];
    bf16 v = to_bf(q_value(w, n, j));
    if (scale != 1.0f) v = to_bf(bf(v) * scale);  // as embedding_kernel: the bf16 row × the scale, rounded
    out[static_cast<size_t>(tok) * w.K + col] = v;
  }
}

__global__ void gather_cols_kernel(const bf16* x, const int32_t* perm, bf16* out, int K) {
  pdl_launch_dependents();
  pdl_wait();
  const size_t row = static_cast<size_t>(blockIdx.x) * K;
  for (int j = threadIdx.x; j < K; j += blockDim.x) out[row + j] = x[row + perm[j]];
}

// One block per row (fp8_quantize_row, cuda_fp8_act.cuh: the scheme every FP8 row writer shares).
__global__ void quantize_fp8_rows_kernel(const bf16* x, int K, bool static_input, float input_scale, float ub,
                                         uint8_t* xq, float* scales) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float warp_max[32];
  const size_t row = static_cast<size_t>(blockIdx.x) * K;
  fp8_quantize_row(x + row, K, static_input, input_scale, ub, xq + row, scales + blockIdx.x, warp_max);
}

}  // namespace

bool qgemm_supports(const QWeight& w, const QGemmArgs& a, QEpilogue e) {
  if (a.T <= 0 || w.K % 8 != 0) return false;
  if ((e == QEpilogue::kPlain ? w.Np : w.N) / 32 > 65535) return false;  // tile pairs: gridDim.z
  if (a.norm_w != nullptr && (a.T > kQGemvMaxTokens || a.normed == nullptr || w.perm != nullptr)) return false;
  if (a.out_f32 && e != QEpilogue::kPlain) return false;
  switch (e) {
    case QEpilogue::kPlain: return true;
    case QEpilogue::kSwiglu: return w.N % 32 == 0 && a.act != nullptr;  // I % 16 == 0
    case QEpilogue::kRope: {
      const int D = a.head_dim;
      return D > 0 && D % 32 == 0 && a.q_heads > 0 && a.kv_heads > 0 && w.N == (a.q_heads + 2 * a.kv_heads) * D &&
             a.positions != nullptr && a.slots != nullptr && a.inv_freq != nullptr && a.k_cache != nullptr &&
             a.v_cache != nullptr;
    }
  }
  return false;
}

bool launch_qgemm(const QWeight& w, const QGemmArgs& a, QEpilogue e, int num_sms, bool pdl, cudaStream_t stream,
                  QGemvPath gemv_path, int gemv_split, QGemmPath batched_path, bool* late_signal) {
  if (late_signal != nullptr) *late_signal = false;
  if (!qgemm_supports(w, a, e)) return false;
  const bool gemv = a.T <= kQGemvMaxTokens;
  if (!gemv && batched_path == QGemmPath::kWgmma && launch_qgemm_wgmma(w, a, e, num_sms, pdl, stream)) {
    if (late_signal != nullptr) *late_signal = true;  // qgemm_wgmma_kernel signals after its loop
    return true;
  }
  if (!gemv && batched_path != QGemmPath::kV1 && launch_qgemm_batched(w, a, e, num_sms, pdl, stream)) return true;
  if (gemv && gemv_path == QGemvPath::kStream && launch_qgemv_stream(w, a, e, num_sms, gemv_split, pdl, stream))
    return true;
  if (gemv && (gemv_path == QGemvPath::kRow || gemv_path == QGemvPath::kRowTc) &&
      launch_qgemv_row(w, a, e, gemv_path == QGemvPath::kRowTc, pdl, stream))
    return true;
  const int pairs = e == QEpilogue::kPlain ? w.Np / 32 : w.N / 32;
  const int cols = gemv ? 8 : 32;
  const int ttiles = (a.T + cols - 1) / cols;
  const int64_t base = static_cast<int64_t>(pairs) * ttiles;
  // Split K so that the grid fills the SMs in one wave (4 blocks of the T <= 8
  // kernel fit an SM, 3 of the T > 8 one: registers), each warp keeping at least
  // one step; more blocks than fit would leave a short second wave.
  const int64_t resident = static_cast<int64_t>(gemv ? 4 : 3) * num_sms;
  int splits = static_cast<int>(std::min<int64_t>(32, resident / base));
  splits = std::max(1, std::min(splits, w.steps / kWarps));
  if (splits > 1 && (base > a.counter_count ||
                     static_cast<size_t>(base) * splits * 32 * cols > a.partial_floats || a.partials == nullptr))
    splits = 1;
  const dim3 grid(static_cast<unsigned>(ttiles), static_cast<unsigned>(splits), static_cast<unsigned>(pairs));
  with_epilogue(e, [&](auto ep) {
    with_code(w, [&](auto code, auto bias) { launch_nb<code(), bias(), ep()>(w, a, grid, splits, pdl, stream); });
  });
  return true;
}

void launch_qdequant_dense(const QWeight& w, void* out, cudaStream_t stream) {
  if (w.code != QCode::kFp8 && w.perm == nullptr) {
    const int64_t vecs = static_cast<int64_t>(w.Np / kQTileRows) * w.steps * 32;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((vecs + 255) / 256, 132 * 16));
    auto* kernel = w.code == QCode::kU4 ? qdequant_stored_kernel<QCode::kU4> : qdequant_stored_kernel<QCode::kU8>;
    launch(false, kernel, dim3(blocks), dim3(256), 0, stream, w, static_cast<bf16*>(out));
    return;
  }
  const int64_t total = static_cast<int64_t>(w.N) * (w.K / 8);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 132 * 16));
  launch(false, qdequant_kernel, dim3(blocks), dim3(256), 0, stream, w, static_cast<bf16*>(out));
}

void launch_qembedding(const QWeight& w, const int32_t* ids, float scale, void* out, int T, cudaStream_t stream) {
  if (T == 0) return;
  launch(false, qembedding_kernel, dim3(T), dim3(256), 0, stream, w, ids, scale, static_cast<bf16*>(out));
}

void launch_gather_cols(const void* x, const int32_t* perm, void* out, int T, int K, cudaStream_t stream) {
  if (T == 0) return;
  launch(false, gather_cols_kernel, dim3(T), dim3(256), 0, stream, static_cast<const bf16*>(x), perm,
         static_cast<bf16*>(out), K);
}

void launch_quantize_fp8_rows(const void* x, int T, int K, bool static_input, float input_scale, float act_scale_ub,
                              void* xq, float* scales, cudaStream_t stream) {
  if (T == 0) return;
  launch(false, quantize_fp8_rows_kernel, dim3(T), dim3(256), 0, stream, static_cast<const bf16*>(x), K, static_input,
         input_scale, act_scale_ub, static_cast<uint8_t*>(xq), scales);
}

}  // namespace kr::cuda
