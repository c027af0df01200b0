// Paged causal attention, one kernel for prefill, chunked prefill and decode,
// with an optional sliding window (keys (p - window, p] of a query at p; a tile
// starts at its first token's window) and an optional soft-cap of the scaled
// scores (softcap * tanh(s / softcap), before the mask and the softmax).
//
// A block takes one tile (up to kRows query rows = tile tokens × the q heads of
// one kv head, so each K/V tile read from the cache serves the whole GQA group)
// and walks its keys in tiles of kKeys: K/V go to shared memory as float,
// scores Q·Kᵀ, an online softmax per row, then P·V into register accumulators.
// Decode steps have few rows per tile; there the keys are split over
// blockIdx.z (flash-decoding) and the splits are merged by log-sum-exp inside
// the same kernel: the last split block of a (tile, kv head) to finish merges
// them (merge_splits).
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kRows = 64;     // query rows per tile
constexpr int kKeys = 32;     // keys per inner tile (= warp size: one lane per key in the softmax)
constexpr int kThreads = 128;

// ROWS: shared-memory rows for Q. kRows for prefill tiles; a small variant for
// decode-only steps (one token per tile, rows = GQA group) that needs a quarter of
// the shared memory, so more blocks fit on an SM.
template <int D, int ROWS>
struct Smem {
  // Row strides in floats. K rows: 16-byte aligned (float4 stores and score reads)
  // yet spread over banks: 8 consecutive keys start 4 banks apart (D + 4 ≡ 4 mod 32,
  // or 20 for D = 16). Q rows: the prefill score loop reads 4 rows 4 apart, which
  // stay conflict-free only with an odd stride; decode tiles (all lanes of a warp
  // read one Q row) take the aligned stride to read float4.
  static constexpr int kKStride = D + 4;
  static constexpr int kQStride = ROWS <= 16 ? D + 4 : D + 1;
  static constexpr int kQ = ROWS * kQStride;
  static constexpr int kK = kKeys * kKStride;
  static constexpr int kV = kKeys * D;
  static constexpr int kP = ROWS * kKeys;
  static constexpr size_t bytes = sizeof(float) * (kQ + kK + kV + kP + 4 * ROWS);
};

// Split arrival counters, one per (tile, kv head) of a split launch: the block
// that brings a counter to num_splits merges and puts it back to 0, so every
// launch (and every CUDA-graph replay) starts from zeros. Launches of one
// backend are stream-ordered (a kernel touches the counters only after
// pdl_wait), so they never share a counter concurrently. 16 KiB of device memory.
constexpr int kMaxSplitCounters = 4096;
__device__ int g_split_counters[kMaxSplitCounters] = {0};

// Row r of (tile blockIdx.x, kv head g): final bf16 output from the num_splits
// normalised partials o_s and their (max m_s, sum l_s): out = Σ w_s o_s / Σ w_s,
// w_s = l_s exp(m_s - max_s m_s). One warp per row; lane j of each 32-split chunk
// computes split j's weight and shuffles it to the others. Partials were written by other blocks of this grid:
// __ldcg reads them from L2 (never a stale L1 line).
template <int D>
__device__ void merge_splits(const AttnArgs& a, const AttnTile& tile, int g, int R, int group) {
  constexpr int DV = (D + 31) / 32;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int S = a.num_splits;
  for (int r = warp; r < R; r += kThreads / 32) {
    const size_t base = ((static_cast<size_t>(blockIdx.x) * a.kv_heads + g) * R + r) * S;
    const float* ml = a.partial_ml + base * 2;  // [S, 2]: max, sum
    const float* po = a.partial_out + base * D;  // [S, D]
    // (max, sum) of split lane (the first 32 splits) stay in registers: no second
    // L2 round trip for the common case S ≤ 32.
    float m0 = -INFINITY, l0 = 0.0f;
    if (lane < S) {
      m0 = __ldcg(ml + 2 * lane);
      l0 = __ldcg(ml + 2 * lane + 1);
    }
    float m = l0 > 0.0f ? m0 : -INFINITY;
    for (int s = lane + 32; s < S; s += 32) {
      const float l = __ldcg(ml + 2 * s + 1);
      if (l > 0.0f) m = fmaxf(m, __ldcg(ml + 2 * s));
    }
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float den = 0.0f;
    float num[DV];
#pragma unroll
    for (int k = 0; k < DV; ++k) num[k] = 0.0f;
    for (int s0 = 0; s0 < S; s0 += 32) {
      float ms = m0, ls = l0;  // split s0 + lane
      if (s0 > 0) {
        ms = -INFINITY;
        ls = 0.0f;
        if (s0 + lane < S) {
          ms = __ldcg(ml + 2 * (s0 + lane));
          ls = __ldcg(ml + 2 * (s0 + lane) + 1);
        }
      }
      // Weight 0 for an empty split (and m is finite whenever some l > 0).
      const float w = ls > 0.0f ? ls * __expf(ms - m) : 0.0f;
      den += w;
      const int n = min(32, S - s0);  // warp-uniform
#pragma unroll 4
      for (int j = 0; j < n; ++j) {
        const float wj = __shfl_sync(0xffffffffu, w, j);
        const float* p = po + static_cast<size_t>(s0 + j) * D;
#pragma unroll
        for (int k = 0; k < DV; ++k)
          if (lane + 32 * k < D) num[k] = fmaf(wj, __ldcg(p + lane + 32 * k), num[k]);
      }
    }
    for (int o = 16; o > 0; o >>= 1) den += __shfl_xor_sync(0xffffffffu, den, o);
    const float inv = den > 0.0f ? 1.0f / den : 0.0f;
    const int token = tile.first + r / group, h = g * group + r % group;
    bf16* out = static_cast<bf16*>(a.out) + static_cast<size_t>(token) * a.q_heads * D + h * D;
#pragma unroll
    for (int k = 0; k < DV; ++k)
      if (lane + 32 * k < D) out[lane + 32 * k] = __float2bfloat16(num[k] * inv);
  }
}

// KV: the cache element (KvBf16 or KvFp8, cuda_kv_fp8.cuh); e4m3 chunks are
// widened to bf16 on their way into shared memory (as float).
template <int D, int ROWS, typename KV>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(AttnArgs a) {
  // Decode variant: the 4 warps split the keys in P·V (few rows to split instead).
  constexpr bool kDecode = ROWS <= 16;
  constexpr int kAccRows = kDecode ? ROWS : 16;
  constexpr int kQS = Smem<D, ROWS>::kQStride, kKS = Smem<D, ROWS>::kKStride;
  static_assert(Smem<D, ROWS>::kQ % 4 == 0 && Smem<D, ROWS>::kK % 4 == 0, "Ks and Vs must be 16-byte aligned");
  extern __shared__ __align__(16) float smem[];
  float* Qs = smem;
  float* Ks = Qs + Smem<D, ROWS>::kQ;
  float* Vs = Ks + Smem<D, ROWS>::kK;
  float* Ps = Vs + Smem<D, ROWS>::kV;
  float* row_m = Ps + Smem<D, ROWS>::kP;
  float* row_l = row_m + ROWS;
  float* row_alpha = row_l + ROWS;
  int* row_pos = reinterpret_cast<int*>(row_alpha + ROWS);

  pdl_launch_dependents();
  pdl_wait();
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const AttnTile tile = a.tiles[blockIdx.x];
  const int g = blockIdx.y, split = blockIdx.z;
  const int group = a.q_heads / a.kv_heads;
  const int R = (kRows / group) * group < tile.count * group ? (kRows / group) * group : tile.count * group;
  const int width = (a.q_heads + 2 * a.kv_heads) * D;
  const int ctx = a.context_lens[tile.seq];

  // Q rows (scaled) and each row's causal limit.
  for (int i = tid; i < ROWS * (D / 8); i += kThreads) {
    const int r = i / (D / 8), c = i % (D / 8);
    float* dst = Qs + r * kQS + c * 8;
    if (r < R) {
      const int token = tile.first + r / group, h = g * group + r % group;
      union {
        uint4 u;
        bf16 h[8];
      } v;
      v.u = *reinterpret_cast<const uint4*>(static_cast<const bf16*>(a.qkv) + static_cast<size_t>(token) * width +
                                            h * D + c * 8);
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = __bfloat162float(v.h[e]) * a.scale;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = 0.0f;
    }
  }
  int kend = 0;  // keys [0, kend) are visible to some row of the tile
  if (tid < ROWS) {
    int pos = -1;
    if (tid < R) {
      pos = a.positions[tile.first + tid / group];
      if (pos >= ctx) pos = ctx - 1;
    }
    row_pos[tid] = pos;
    row_m[tid] = -INFINITY;
    row_l[tid] = 0.0f;
  }
  // The last token of a tile has the largest position (tokens of a sequence are in order).
  kend = a.positions[tile.first + tile.count - 1] + 1;
  if (kend > ctx) kend = ctx;
  int kbeg = 0, kstop = kend;
  if (a.num_splits > 1) {
    kbeg = split * a.split_keys;
    kstop = min(kend, kbeg + a.split_keys);
  }
  // Sliding window: no row of the tile sees a key before its first token's window.
  const int window = a.window > 0 ? a.window : (1 << 30);
  if (a.window > 0) kbeg = max(kbeg, a.positions[tile.first] - a.window + 1);

  constexpr int DV = (D + 31) / 32;  // output dims per lane
  float acc[kAccRows][DV];
#pragma unroll
  for (int i = 0; i < kAccRows; ++i)
#pragma unroll
    for (int k = 0; k < DV; ++k) acc[i][k] = 0.0f;

  const int32_t* table = a.block_tables + static_cast<size_t>(tile.seq) * a.max_blocks;
  const size_t kv_row = static_cast<size_t>(a.kv_heads) * D;
  // K/V tiles: each thread owns kIters 8-element chunks of a key tile. All loads of
  // a batch are issued before any shared store: the compiler cannot move a
  // generic global load above a shared store (they might alias), so a load-store
  // loop would pay the table + K/V latency once per chunk instead of per batch.
  // Decode blocks (few warps: the latency is exposed) stage the whole next tile in
  // registers while computing the current one, where it costs ≤ 32 registers.
  constexpr int kChunks = kKeys * (D / 8);
  constexpr int kIters = (kChunks + kThreads - 1) / kThreads;
  constexpr bool kPrefetch = kDecode && kIters <= 4;
  constexpr int kBatch = kPrefetch ? kIters : (kIters < 4 ? kIters : 4);
  static_assert(kIters % kBatch == 0, "batches must tile the chunks");
  union Chunk {
    uint4 u;
    bf16 h[8];
  };
  typename KV::Chunk kst[kBatch], vst[kBatch];  // as read: 8 bf16 or 8 e4m3
  // Loads chunks [b0, b0 + kBatch) of the key tile at kt into kst/vst (zeros past the split).
  auto load_chunks = [&](int kt, int b0) {
    const int nk = min(kKeys, kstop - kt);
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = tid + (b0 + b) * kThreads, key = i / (D / 8), c = i % (D / 8);
      kst[b] = zero_chunk<KV>();  // zeros: padding keys get K = V = 0
      vst[b] = zero_chunk<KV>();
      if (i < kChunks && key < nk) {
        const int j = kt + key;
        const size_t slot = static_cast<size_t>(table[j / a.block_size]) * a.block_size + j % a.block_size;
        const size_t off = slot * kv_row + static_cast<size_t>(g) * D + c * 8;
        kst[b] = load_chunk<KV>(a.k_cache, off);
        vst[b] = load_chunk<KV>(a.v_cache, off);
      }
    }
  };
  auto store_chunks = [&](int b0) {
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = tid + (b0 + b) * kThreads, key = i / (D / 8), c = i % (D / 8);
      if (i < kChunks) {
        float4* kd = reinterpret_cast<float4*>(Ks + key * kKS + c * 8);
        float4* vd = reinterpret_cast<float4*>(Vs + key * D + c * 8);
        Chunk kc, vc;
        kc.u = KV::widen(kst[b]);
        vc.u = KV::widen(vst[b]);
        kd[0] = make_float4(__bfloat162float(kc.h[0]), __bfloat162float(kc.h[1]), __bfloat162float(kc.h[2]),
                            __bfloat162float(kc.h[3]));
        kd[1] = make_float4(__bfloat162float(kc.h[4]), __bfloat162float(kc.h[5]), __bfloat162float(kc.h[6]),
                            __bfloat162float(kc.h[7]));
        vd[0] = make_float4(__bfloat162float(vc.h[0]), __bfloat162float(vc.h[1]), __bfloat162float(vc.h[2]),
                            __bfloat162float(vc.h[3]));
        vd[1] = make_float4(__bfloat162float(vc.h[4]), __bfloat162float(vc.h[5]), __bfloat162float(vc.h[6]),
                            __bfloat162float(vc.h[7]));
      }
    }
  };
  if (kPrefetch && kbeg < kstop) load_chunks(kbeg, 0);
  for (int kt = kbeg; kt < kstop; kt += kKeys) {
    const int nkeys = min(kKeys, kstop - kt);
    __syncthreads();  // previous tile's Ks/Vs/Ps fully used (and Q/row state written)
    if constexpr (kPrefetch) {
      store_chunks(0);
      if (kt + kKeys < kstop) load_chunks(kt + kKeys, 0);  // in flight during this tile's math
    } else {
#pragma unroll
      for (int b0 = 0; b0 < kIters; b0 += kBatch) {
        load_chunks(kt, b0);
        store_chunks(b0);
      }
    }
    __syncthreads();
    // Scores.
    if (!kDecode && R > 16) {
      // 4 rows × 4 keys per thread (keys strided by 8 so the padded rows of Ks spread over banks).
      const int rg = tid >> 3, kg = tid & 7;
      if (rg * 4 < R) {
        float s[4][4] = {};
        for (int d = 0; d < D; ++d) {
          float q[4], k[4];
#pragma unroll
          for (int i = 0; i < 4; ++i) q[i] = Qs[(rg * 4 + i) * kQS + d];
#pragma unroll
          for (int j = 0; j < 4; ++j) k[j] = Ks[(kg + 8 * j) * kKS + d];
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) s[i][j] = fmaf(q[i], k[j], s[i][j]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int r = rg * 4 + i;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int key = kg + 8 * j;
            const bool ok = key < nkeys && kt + key <= row_pos[r] && kt + key > row_pos[r] - window;
            float sc = s[i][j];
            if (a.softcap > 0.0f) sc = a.softcap * tanhf(sc / a.softcap);
            Ps[r * kKeys + key] = ok ? sc : -INFINITY;
          }
        }
      }
    } else {
      // Few rows (decode): one (row, key) pair per thread.
      for (int p = tid; p < R * kKeys; p += kThreads) {
        const int r = p / kKeys, key = p % kKeys;
        // float4 reads (Q: one row per warp, a broadcast); four partial sums give
        // independent FMA chains instead of one D-long chain.
        const float* q = Qs + r * kQS;
        const float4* k4 = reinterpret_cast<const float4*>(Ks + key * kKS);
        float s4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 8
        for (int d4 = 0; d4 < D / 4; ++d4) {
          const float4 kv = k4[d4];
          float4 qv;
          if constexpr (kQS % 4 == 0) {
            qv = reinterpret_cast<const float4*>(q)[d4];
          } else {
            qv = make_float4(q[4 * d4], q[4 * d4 + 1], q[4 * d4 + 2], q[4 * d4 + 3]);
          }
          s4[0] = fmaf(qv.x, kv.x, s4[0]);
          s4[1] = fmaf(qv.y, kv.y, s4[1]);
          s4[2] = fmaf(qv.z, kv.z, s4[2]);
          s4[3] = fmaf(qv.w, kv.w, s4[3]);
        }
        float s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
        if (a.softcap > 0.0f) s = a.softcap * tanhf(s / a.softcap);
        const bool ok = key < nkeys && kt + key <= row_pos[r] && kt + key > row_pos[r] - window;
        Ps[r * kKeys + key] = ok ? s : -INFINITY;
      }
    }
    __syncthreads();
    // Online softmax: one warp per row, one lane per key.
    for (int r = warp; r < R; r += kThreads / 32) {
      const float s = Ps[r * kKeys + lane];
      float mt = s;
      for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
      const float m_old = row_m[r];
      const float m_new = fmaxf(m_old, mt);
      float p = 0.0f, alpha = 1.0f;
      if (m_new != -INFINITY) {
        p = __expf(s - m_new);
        alpha = __expf(m_old - m_new);
      }
      Ps[r * kKeys + lane] = p;
      float sum = p;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) {
        row_l[r] = row_l[r] * alpha + sum;
        row_m[r] = m_new;
        row_alpha[r] = alpha;
      }
    }
    __syncthreads();
    if constexpr (kDecode) {
      // P·V: every warp takes all rows and every 4th key; lane owns dims lane + 32k.
#pragma unroll
      for (int i = 0; i < kAccRows; ++i) {
        if (i < R) {
          const float al = row_alpha[i];
#pragma unroll
          for (int k = 0; k < DV; ++k) acc[i][k] *= al;
        }
      }
      for (int key = warp; key < nkeys; key += kThreads / 32) {
        float v[DV];
#pragma unroll
        for (int k = 0; k < DV; ++k) v[k] = (lane + 32 * k < D) ? Vs[key * D + lane + 32 * k] : 0.0f;
#pragma unroll
        for (int i = 0; i < kAccRows; ++i) {
          if (i < R) {
            const float p = Ps[i * kKeys + key];
#pragma unroll
            for (int k = 0; k < DV; ++k) acc[i][k] = fmaf(p, v[k], acc[i][k]);
          }
        }
      }
    } else {
    // P·V: warp w owns rows [16w, 16w + 16), lane owns dims lane + 32k.
#pragma unroll
    for (int i = 0; i < kAccRows; ++i) {
      const int r = warp * 16 + i;
      if (r < R) {
        const float al = row_alpha[r];
#pragma unroll
        for (int k = 0; k < DV; ++k) acc[i][k] *= al;
      }
    }
    if (warp * 16 < R) {
      for (int key = 0; key < nkeys; ++key) {
        float v[DV];
#pragma unroll
        for (int k = 0; k < DV; ++k) v[k] = (lane + 32 * k < D) ? Vs[key * D + lane + 32 * k] : 0.0f;
#pragma unroll
        for (int i = 0; i < kAccRows; ++i) {
          const int r = warp * 16 + i;
          if (r < R) {
            const float p = Ps[r * kKeys + key];
#pragma unroll
            for (int k = 0; k < DV; ++k) acc[i][k] = fmaf(p, v[k], acc[i][k]);
          }
        }
      }
    }
    }
  }
  __syncthreads();
  if constexpr (kDecode) {
    // Sum the warps' partial rows (Ks is free now: 4 * ROWS * D floats fit in it);
    // then warp w writes rows w, w + 4, ... below.
    static_assert(Smem<D, ROWS>::kK >= (kThreads / 32) * ROWS * D, "reduction scratch must fit in Ks");
    float* red = Ks;
#pragma unroll
    for (int i = 0; i < kAccRows; ++i)
#pragma unroll
      for (int k = 0; k < DV; ++k)
        if (i < R && lane + 32 * k < D) red[(warp * ROWS + i) * D + lane + 32 * k] = acc[i][k];
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kAccRows; ++i)
#pragma unroll
      for (int k = 0; k < DV; ++k) {
        float sum = 0.0f;
        if (i < R && lane + 32 * k < D)
          for (int w = 0; w < kThreads / 32; ++w) sum += red[(w * ROWS + i) * D + lane + 32 * k];
        acc[i][k] = sum;
      }
  }
  // Results: normalised rows (and their max/sum when split).
#pragma unroll
  for (int i = 0; i < kAccRows; ++i) {
    const int r = kDecode ? i : warp * 16 + i;
    if (r >= R || (kDecode && i % (kThreads / 32) != warp)) continue;
    const float l = row_l[r];
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    if constexpr (KV::kFp8) inv *= a.v_scale;  // V's scale, once per row (the split merge is linear)
    if (a.num_splits == 1) {
      const int token = tile.first + r / group, h = g * group + r % group;
      bf16* o = static_cast<bf16*>(a.out) + static_cast<size_t>(token) * a.q_heads * D + h * D;
#pragma unroll
      for (int k = 0; k < DV; ++k)
        if (lane + 32 * k < D) o[lane + 32 * k] = __float2bfloat16(acc[i][k] * inv);
    } else {
      const size_t p = ((static_cast<size_t>(blockIdx.x) * a.kv_heads + g) * R + r) * a.num_splits + split;
      float* o = a.partial_out + p * D;
#pragma unroll
      for (int k = 0; k < DV; ++k)
        if (lane + 32 * k < D) o[lane + 32 * k] = acc[i][k] * inv;
      if (lane == 0) {
        a.partial_ml[p * 2] = row_m[r];
        a.partial_ml[p * 2 + 1] = l;
      }
    }
  }
  if (a.num_splits > 1) {
    // Every block of the grid reaches this point (no early exit above; a split past
    // the context writes l = 0), so each counter sees exactly num_splits arrivals.
    // Release: the barrier orders every thread's partial stores before thread 0's
    // __threadfence, which is cumulative (it covers writes ordered before it, not
    // only its own) and orders them before its atomicAdd — the pattern of the
    // cooperative-groups grid sync. Acquire: the last arriver fences after the
    // atomic that observed every other block's increment (each made after that
    // block's release fence); the barrier orders the block's reads after that
    // fence, and __ldcg reads them from L2.
    __shared__ int is_last;
    __syncthreads();
    if (tid == 0) {
      int* counter = g_split_counters + blockIdx.x * a.kv_heads + g;
      __threadfence();
      const int arrived = atomicAdd(counter, 1);
      is_last = arrived == a.num_splits - 1;
      if (is_last) {
        atomicExch(counter, 0);  // all arrivals are in: ready for the next launch / graph replay
        __threadfence();
      }
    }
    __syncthreads();
    if (is_last) merge_splits<D>(a, tile, g, R, group);
  }
}

constexpr int kMaxSplits = 256;

template <int D, int ROWS>
void configure_rows() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<D, ROWS, KvBf16>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(Smem<D, ROWS>::bytes)));
  KR_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<D, ROWS, KvFp8>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(Smem<D, ROWS>::bytes)));
}

template <int D>
void configure_d() {
  configure_rows<D, 8>();
  configure_rows<D, kRows>();
}

template <int D, int ROWS>
void launch_rows(const AttnArgs& a, cudaStream_t stream) {
  const dim3 grid(a.num_tiles, a.kv_heads, a.num_splits);
  if (a.kv_fp8) {
    launch(false, paged_attention_kernel<D, ROWS, KvFp8>, grid, dim3(kThreads), Smem<D, ROWS>::bytes, stream, a);
  } else {
    launch(false, paged_attention_kernel<D, ROWS, KvBf16>, grid, dim3(kThreads), Smem<D, ROWS>::bytes, stream, a);
  }
}

template <int D>
void launch_d(const AttnArgs& a, cudaStream_t stream) {
  const int group = a.q_heads / a.kv_heads;
  if (a.decode_only && group <= 8) {
    launch_rows<D, 8>(a, stream);
  } else {
    launch_rows<D, kRows>(a, stream);
  }
}

}  // namespace

int attn_max_splits() { return kMaxSplits; }

int attn_max_split_groups() { return kMaxSplitCounters; }

void configure_attention_kernels() {
  configure_d<16>();
  configure_d<32>();
  configure_d<64>();
  configure_d<128>();
  configure_d<256>();
}

int attn_tile_tokens(int group) { return group >= kRows ? 1 : kRows / group; }

void launch_paged_attention(const AttnArgs& a, cudaStream_t stream) {
  if (a.num_tiles == 0) return;
  KR_CHECK(a.num_splits >= 1 && a.num_splits <= kMaxSplits);
  KR_CHECK(a.num_splits == 1 || static_cast<int64_t>(a.num_tiles) * a.kv_heads <= kMaxSplitCounters);
  switch (a.head_dim) {
    case 16: launch_d<16>(a, stream); break;
    case 32: launch_d<32>(a, stream); break;
    case 64: launch_d<64>(a, stream); break;
    case 128: launch_d<128>(a, stream); break;
    case 256: launch_d<256>(a, stream); break;
    default: break;
  }
}

}  // namespace kr::cuda
