// Flash decode attention on tensor cores (the decode kernel of
// cuda_flash_attention.h; fragment layouts and helpers in cuda_flash_common.cuh).
//
// Block: one tile of at most 16 query rows (tokens × the q heads of kv head
// blockIdx.y; a decode step's tile is one token: its GQA group) against the
// keys of split blockIdx.z. The keys stream through a ring of kStages shared
// memory stages of 16 W keys (K and V together, cp.async, two stages in flight
// while one is computed); warp w of the block's W takes keys [16w, 16w + 16) of
// each stage with its own online softmax (one m16 tile: rows padded to 16,
// S = Q Kᵀ 16 × 16, O += P V 16 × D), and the W warps' states are merged in
// shared memory at the end. Two block shapes (FlashAttnArgs::decode_warps, the
// split policy's choice): W = 4, 64-key stages, two blocks an SM at D = 128; and
// W = 2, 32-key stages in half the shared memory, four blocks an SM: the same
// warps and bytes in flight an SM in blocks half as large, so that a batch's
// (token, kv head) pairs that would take two waves of the first take one of the
// second (64 sequences x 8 kv heads = 512 blocks on 132 SMs). Under PDL a block
// requests its first stages of older keys before waiting on the kernel before it
// (that kernel stores only the step's own keys), Q and its own keys after. Decode
// is bound by the K/V bytes, not the math, so every stage is masked (causal limit,
// window, keys without a slot) without a fast path. With out_fp8 (FlashAttnArgs),
// the last block of each tile over its kv heads also writes the FP8 rows of the
// tile's tokens for o_proj (decode_fp8_rows_tail).
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_flash_attention.h"
#include "backend/cuda/cuda_flash_common.cuh"
#include "backend/cuda/cuda_flash_host.h"
#include "backend/cuda/cuda_fp8_act.cuh"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {
namespace {

using namespace flash;

// kFp8: an FP8 cache. Its stages hold e4m3 bytes in swizzled rows (half the
// bytes of a bf16 stage, so twice the stages in the same shared memory: as many
// bytes in flight), and each warp widens its fragments in registers as it loads
// them (ldmatrix on the bytes: K as stored with Q's dims permuted to match, V
// transposed in 16-bit pairs, so each n8 tile of O holds every other dim).
// W: warps a block (4 or 2).
template <int D, bool kFp8 = false, int W = 4>
struct DecodeShape {
  static_assert(W == 2 || W == 4, "blocks of 2 or 4 warps");
  static constexpr int kWarps = W;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRows = kFlashDecodeRows;
  static constexpr int kKeys = 16 * W;  // keys per stage: 16 per warp
  // D = 128: 100 KB either way at W = 4 (two blocks per SM), 52 KB at W = 2 (four).
  static constexpr int kStages = kFp8 ? 6 : 3;
  static constexpr int kStageElems = 2 * kKeys * D;  // K then V
  static constexpr size_t kElemBytes = kFp8 ? 1 : sizeof(bf16);
  static constexpr size_t kStageBytes = kElemBytes * kStageElems;
  static constexpr size_t kSmem = sizeof(bf16) * kRows * D + kStages * kStageBytes + sizeof(int) * kRows;
  // The end-of-loop scratch (warp partial rows, then the split merge's weights)
  // reuses the stages.
  static constexpr size_t kScratchFloats = kStages * kStageBytes / sizeof(float);
  static_assert(kScratchFloats >= static_cast<size_t>(kWarps) * kRows * (D + 2) + kWarps * kRows,
                "warp merge scratch must fit in the stages");
  static_assert(kFlashSplitGranule % kKeys == 0, "split boundaries must fall on stages");
  // flash_decode_max_splits reads the bf16 W = 4 shape's scratch: every other one must hold as many weights.
  static_assert((!kFp8 && W == 4) || kScratchFloats >= static_cast<size_t>(kRows) * kFlashMaxSplits,
                "the scratch must hold the merge weights of the most splits");
};

constexpr int kMaxCounters = kFlashMaxSplitPairs;
__device__ int g_decode_counters[kMaxCounters];
// Arrivals of a tile's kv heads for out_fp8 (one per tile; back to 0 after each use).
__device__ int g_decode_fp8_counters[kFlashMaxFp8Tiles];

// out_fp8's tail, called by every block of a launch once its rows of out are final
// (the merging block of a split (tile, kv head), every block without splits):
// the last of a tile's kv_heads blocks to arrive (arrive_last: its barrier and
// fences order the other blocks' stores of out before its __ldcg loads) quantizes
// the whole rows [Hq * D] of the tile's tokens, as launch_quantize_fp8_rows would.
// The counter goes back to 0, so every launch and graph replay starts from zeros.
// scratch: 32 floats of shared memory free after arrive_last's first barrier.
__device__ __forceinline__ void decode_fp8_rows_tail(const FlashAttnArgs& a, int tile_idx, const AttnTile& tile,
                                                     float* scratch) {
  if (!arrive_last(&g_decode_fp8_counters[tile_idx], a.kv_heads)) return;
  const int K = a.q_heads * a.head_dim;
  const Fp8RowsOut& q = a.out_fp8;
  for (int t = tile.first; t < tile.first + tile.count; ++t) {
    const size_t row = static_cast<size_t>(t) * K;
    fp8_quantize_row<true>(static_cast<const bf16*>(a.out) + row, K, q.static_input, q.input_scale, q.act_scale_ub,
                           static_cast<uint8_t*>(q.codes) + row, q.scales + t, scratch);
  }
}

template <int D, typename KV, int W>
__global__ void __launch_bounds__(DecodeShape<D, KV::kFp8, W>::kThreads)
    flash_decode_kernel(const FlashAttnArgs a) {
  using Sh = DecodeShape<D, KV::kFp8, W>;
  constexpr int kRows = Sh::kRows, kKeys = Sh::kKeys, kStages = Sh::kStages, kThreads = Sh::kThreads;
  constexpr int kWarps = Sh::kWarps;
  constexpr int kDT = D / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);  // [16, D]
  unsigned char* stages = smem + sizeof(bf16) * kRows * D;  // kStages × (K [64, D], V [64, D]) of KV
  int* s_pos = reinterpret_cast<int*>(stages + kStages * Sh::kStageBytes);  // [16]
  // cp.async of a stage's K and V tiles (bf16 swizzled, or e4m3 rows), its keys in [kfrom, kto) only.
  auto load_stage = [&](const KvSource& src, int st, int kt, int kend, int kfrom = INT_MIN, int kto = INT_MAX) {
    unsigned char* kb = stages + st * Sh::kStageBytes;
    if constexpr (KV::kFp8) {
      load_kv_tile_fp8<D, kKeys, kThreads, true, true, /*kSwz=*/true>(src, kb, kb + kKeys * D, kt, kend, nullptr,
                                                                        kfrom, kto);
    } else {
      bf16* k = reinterpret_cast<bf16*>(kb);
      load_kv_tile<D, kKeys, kThreads, true, true>(src, k, k + kKeys * D, kt, kend, nullptr, kfrom, kto);
    }
  };

  // Before waiting on the kernel before this one (PDL): the step's metadata (the
  // host wrote it) and the first stages' keys before the tile's first query
  // position (earlier steps wrote them; no kernel of this step writes them, as in
  // cuda_decode_attention.cu). Q and the tile's own keys (the q/k/v kernel just
  // stored them) after it.
  pdl_launch_dependents();
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int tile_idx = blockIdx.x;
  const AttnTile tile = a.tiles[tile_idx];
  const int g = blockIdx.y, split = blockIdx.z;
  const int group = a.q_heads / a.kv_heads;
  const int R = min(tile.count * group, kRows);
  const int ctx = a.context_lens[tile.seq];

  if (tid < kRows) s_pos[tid] = row_position(a, tile.first, tid, R, group, ctx);
  __syncthreads();
  int lo = INT_MAX, hi = -1;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int p = s_pos[r];
    if (p >= 0) {
      lo = min(lo, p);
      hi = max(hi, p);
    }
  }
  int kbeg = 0, kend = hi + 1;
  if (a.window > 0 && hi >= 0) kbeg = max(0, lo - a.window + 1) / kKeys * kKeys;
  if (a.num_splits > 1 && kend > kbeg) {
    // Run `split` of num_splits equal runs of whole granules from kbeg (see FlashAttnArgs).
    constexpr int G = kFlashSplitGranule;
    const int per = ((kend - kbeg + G - 1) / G + a.num_splits - 1) / a.num_splits * G;
    kbeg += split * per;
    kend = min(kend, kbeg + per);
  }
  const int n = kend > kbeg ? (kend - kbeg + kKeys - 1) / kKeys : 0;

  const KvSource src{reinterpret_cast<const bf16*>(static_cast<const unsigned char*>(a.k_cache) + g * D * KV::kBytes),
                     reinterpret_cast<const bf16*>(static_cast<const unsigned char*>(a.v_cache) + g * D * KV::kBytes),
                     a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks,
                     static_cast<int64_t>(a.kv_heads) * D,
                     a.max_blocks,
                     a.num_blocks,
                     __ffs(a.block_size) - 1};
  const int kpre = min(kend, lo);  // keys [kbeg, kpre): older than every query row of the tile
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < n) load_stage(src, st, kbeg + st * kKeys, kend, INT_MIN, kpre);
    cp_async_commit();
  }
  pdl_wait();
  load_q_tile<D, kRows, kThreads>(a, qs, tile.first, R, group, g);
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    const int kt = kbeg + st * kKeys;
    if (st < n && kt + kKeys > kpre) load_stage(src, st, kt, kend, kpre, INT_MAX);  // and the zeros past kend
  }
  cp_async_commit();
  // Q and the first stages complete (the loop's waits count from here: the groups
  // it commits are the only ones in flight).
  cp_async_wait<0>();
  if constexpr (KV::kFp8) {
    // Q's dims within each 16 permuted to the K fragments' order: an ldmatrix of
    // e4m3 key rows gives lane (gq, tq) dims 4tq..4tq+3 of key gq, which the mma
    // takes as k = 2tq, 2tq+1, 2tq+8, 2tq+9; so Q's bf16 pairs (p0 … p7) of 16
    // dims are stored as (p0, p2, p4, p6, p1, p3, p5, p7). Each thread permutes
    // whole 16-dim groups; the loop's first barrier publishes them.
    __syncthreads();
    for (int u = tid; u < kRows * (D / 16); u += kThreads) {
      const int r = u / (D / 16), c16 = u % (D / 16);
      uint4* x0 = reinterpret_cast<uint4*>(qs + swz<D>(r, 2 * c16));
      uint4* x1 = reinterpret_cast<uint4*>(qs + swz<D>(r, 2 * c16 + 1));
      const uint4 a0 = *x0, a1 = *x1;
      *x0 = make_uint4(a0.x, a0.z, a1.x, a1.z);
      *x1 = make_uint4(a0.y, a0.w, a1.y, a1.w);
    }
  }

  const int p_row[2] = {s_pos[gq], s_pos[gq + 8]};
  int w_lo[2] = {0, 0};
  if (a.window > 0) {
    w_lo[0] = p_row[0] - a.window + 1;
    w_lo[1] = p_row[1] - a.window + 1;
  }
  const bool capped = a.softcap > 0.0f;
  const float c = capped ? a.softcap * kLog2e : a.scale * kLog2e;
  const float pre = capped ? a.scale / a.softcap : 0.0f;
  float o[kDT][4];
#pragma unroll
  for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[dt][e] = 0.0f;
  // fp8: this lane's row of ldmatrix in a stage (matrices: keys 0-7, 8-15 of the
  // warp's 16, then the same keys of the next 16-dim chunk).
  [[maybe_unused]] const int fkey = warp * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int it = 0; it < n; ++it) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // stage it visible to all; stage it - 1 free
    {
      const int nx = it + kStages - 1;
      if (nx < n) load_stage(src, nx % kStages, kbeg + nx * kKeys, kend);
      cp_async_commit();
    }
    const int kt = kbeg + it * kKeys;
    const unsigned char* stage = stages + (it % kStages) * Sh::kStageBytes;
    float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
    if constexpr (KV::kFp8) {
#pragma unroll
      for (int kk = 0; kk < D / 16; kk += 2) {
        uint32_t kw[4];
        ldmatrix_x4(kw, smem_u32(stage + fkey * D + fp8_swz_chunk<D>(fkey, kk + (lane >> 4)) * 16));
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          uint32_t qa[4], b0[2], b1[2];
          ldmatrix_x4(qa, smem_u32(qs + swz<D>(lane & 15, 2 * (kk + h) + (lane >> 4))));
          e4m3x4_to_bf16x4(kw[2 * h], b0[0], b0[1]);      // keys 0-7
          e4m3x4_to_bf16x4(kw[2 * h + 1], b1[0], b1[1]);  // keys 8-15
          mma_bf16(s[0], qa, b0[0], b0[1]);
          mma_bf16(s[1], qa, b1[0], b1[1]);
        }
      }
    } else {
      // This warp's keys [16 warp, 16 warp + 16) of the stage.
      const bf16* ks = reinterpret_cast<const bf16*>(stage);
      const int wr0 = warp * 16;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[4], kb[4];
        ldmatrix_x4(qa, smem_u32(qs + swz<D>(lane & 15, 2 * kk + (lane >> 4))));
        ldmatrix_x4(kb, smem_u32(ks + swz<D>(wr0 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1))));
        mma_bf16(s[0], qa, kb[0], kb[1]);
        mma_bf16(s[1], qa, kb[2], kb[3]);
      }
    }
    // Keys of this lane: j0 + {0, 1, 8, 9}. With blocks of >= 16 keys all 16 keys
    // of the warp share one block (stages start on multiples of 16 W).
    const int j0 = kt + warp * 16 + 2 * tq;
    bool has_slot[2][2];
    if (a.block_size >= 16) {
      const bool ok = kv_slot(src.table, src.max_blocks, src.num_blocks, src.block_shift, kt + warp * 16) >= 0;
      has_slot[0][0] = has_slot[0][1] = has_slot[1][0] = has_slot[1][1] = ok;
    } else {
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          has_slot[nt][e] = kv_slot(src.table, src.max_blocks, src.num_blocks, src.block_shift, j0 + 8 * nt + e) >= 0;
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = j0 + 8 * nt + e;
          float x = s[nt][2 * h + e];
          if (capped) x = tanh_accurate(x * pre);
          const bool ok = has_slot[nt][e] && j <= p_row[h] && j >= w_lo[h];
          s[nt][2 * h + e] = ok ? x : -INFINITY;
        }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = fmaxf(fmaxf(s[0][2 * h], s[0][2 * h + 1]), fmaxf(s[1][2 * h], s[1][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx * c);
      const float base = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(m[h] - base);
      m[h] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float p = exp2f(fmaf(s[nt][2 * h + e], c, -base));
          s[nt][2 * h + e] = p;
          sum += p;
        }
      l[h] = l[h] * alpha + sum;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        o[dt][2 * h] *= alpha;
        o[dt][2 * h + 1] *= alpha;
      }
    }
    uint32_t pa[4];
    pa[0] = pack_bf16(s[0][0], s[0][1]);
    pa[1] = pack_bf16(s[0][2], s[0][3]);
    pa[2] = pack_bf16(s[1][0], s[1][1]);
    pa[3] = pack_bf16(s[1][2], s[1][3]);
    if constexpr (KV::kFp8) {
      // ldmatrix.trans of e4m3 rows in 16-bit pairs: lane (gq, tq) gets keys 2tq,
      // 2tq + 1 at dims 2gq, 2gq + 1 of a 16-dim chunk; bytes 0, 2 are the B
      // fragment of an n8 tile of the chunk's even dims, bytes 1, 3 of its odd ones.
      const unsigned char* vb8 = stage + kKeys * D;
#pragma unroll
      for (int dc = 0; dc < D / 16; dc += 2) {
        uint32_t vw[4];
        ldmatrix_x4_trans(vw, smem_u32(vb8 + fkey * D + fp8_swz_chunk<D>(fkey, dc + (lane >> 4)) * 16));
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint32_t v0 = vw[2 * h], v1 = vw[2 * h + 1];  // keys 0-7, 8-15
          mma_bf16(o[2 * (dc + h)], pa, e4m3x2_bits_to_bf16x2(__byte_perm(v0, 0u, 0x2404)),
                   e4m3x2_bits_to_bf16x2(__byte_perm(v1, 0u, 0x2404)));
          mma_bf16(o[2 * (dc + h) + 1], pa, e4m3x2_bits_to_bf16x2(__byte_perm(v0, 0u, 0x3414)),
                   e4m3x2_bits_to_bf16x2(__byte_perm(v1, 0u, 0x3414)));
        }
      }
    } else {
      const bf16* vs = reinterpret_cast<const bf16*>(stage) + kKeys * D;
      const int wr0 = warp * 16;
#pragma unroll
      for (int dn = 0; dn < D / 16; ++dn) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, smem_u32(vs + swz<D>(wr0 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dn + (lane >> 4))));
        mma_bf16(o[2 * dn], pa, vb[0], vb[1]);
        mma_bf16(o[2 * dn + 1], pa, vb[2], vb[3]);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with the stages: they become scratch

  // The four warps' (m, l, O) → one state per row.
  float* red_o = reinterpret_cast<float*>(stages);     // [kWarps, 16, D] unnormalised
  float* red_m = red_o + kWarps * kRows * D;           // [kWarps, 16]
  float* red_l = red_m + kWarps * kRows;               // [kWarps, 16]
  float* red_w = red_l + kWarps * kRows;               // [kWarps, 16]: weight of warp w in row r
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    const int r = gq + 8 * h;
    if constexpr (KV::kFp8) {  // tiles 2c, 2c + 1: the even and odd dims of chunk c; this lane's: 16c + 4tq + 0..3
#pragma unroll
      for (int c16 = 0; c16 < D / 16; ++c16)
        *reinterpret_cast<float4*>(red_o + (warp * kRows + r) * D + c16 * 16 + 4 * tq) =
            make_float4(o[2 * c16][2 * h], o[2 * c16 + 1][2 * h], o[2 * c16][2 * h + 1], o[2 * c16 + 1][2 * h + 1]);
    } else {
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt)
        *reinterpret_cast<float2*>(red_o + (warp * kRows + r) * D + dt * 8 + 2 * tq) =
            make_float2(o[dt][2 * h], o[dt][2 * h + 1]);
    }
    if (tq == 0) {
      red_m[warp * kRows + r] = m[h];
      red_l[warp * kRows + r] = l[h];
    }
  }
  __syncthreads();
  __shared__ float row_m[kRows], row_l[kRows];
  if (tid < kRows) {
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
      if (red_l[w * kRows + tid] > 0.0f) mx = fmaxf(mx, red_m[w * kRows + tid]);
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float lw = red_l[w * kRows + tid];
      const float wt = lw > 0.0f ? exp2f(red_m[w * kRows + tid] - mx) : 0.0f;
      red_w[w * kRows + tid] = wt;
      sum += lw * wt;
    }
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    if constexpr (KV::kFp8) inv *= a.v_scale;  // V's scale, once per row (the split merge is linear)
#pragma unroll
    for (int w = 0; w < kWarps; ++w) red_w[w * kRows + tid] *= inv;  // O = Σ_w wt_w O_w / Σ_w wt_w l_w
    row_m[tid] = mx;
    row_l[tid] = sum;
  }
  __syncthreads();

  if (a.num_splits == 1) {
    bf16* out = static_cast<bf16*>(a.out);
    for (int e = tid; e < R * (D / 8); e += kThreads) {
      const int r = e / (D / 8), d = 8 * (e % (D / 8));
      float v[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float wt = red_w[w * kRows + r];
        const float4 x0 = *reinterpret_cast<const float4*>(red_o + (w * kRows + r) * D + d);
        const float4 x1 = *reinterpret_cast<const float4*>(red_o + (w * kRows + r) * D + d + 4);
        fma8(v, wt, x0, x1);
      }
      uint4 pk;
      pk.x = pack_bf16(v[0], v[1]);
      pk.y = pack_bf16(v[2], v[3]);
      pk.z = pack_bf16(v[4], v[5]);
      pk.w = pack_bf16(v[6], v[7]);
      const int64_t row = static_cast<int64_t>(tile.first + r / group) * a.q_heads + g * group + r % group;
      *reinterpret_cast<uint4*>(out + row * D + d) = pk;
    }
    if (a.out_fp8.codes != nullptr) decode_fp8_rows_tail(a, tile_idx, tile, reinterpret_cast<float*>(stages));
    return;
  }
  // Split: this block's normalised rows and (max, sum) → partials; the last block merges.
  for (int e = tid; e < R * (D / 4); e += kThreads) {
    const int r = e / (D / 4), d = 4 * (e % (D / 4));
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float wt = red_w[w * kRows + r];
      const float4 x = *reinterpret_cast<const float4*>(red_o + (w * kRows + r) * D + d);
      v.x = fmaf(wt, x.x, v.x);
      v.y = fmaf(wt, x.y, v.y);
      v.z = fmaf(wt, x.z, v.z);
      v.w = fmaf(wt, x.w, v.w);
    }
    *reinterpret_cast<float4*>(a.partial_out + partial_index(a, tile_idx, g, kRows, r, split) * D + d) = v;
  }
  if (tid < R) {
    const size_t pi = partial_index(a, tile_idx, g, kRows, tid, split);
    a.partial_ml[pi * 2] = row_m[tid];
    a.partial_ml[pi * 2 + 1] = row_l[tid];
  }
  if (!arrive_last(&g_decode_counters[tile_idx * a.kv_heads + g], a.num_splits)) return;
  merge_splits<D, kThreads>(a, tile_idx, g, kRows, R, tile.first, group, reinterpret_cast<float*>(stages));
  if (a.out_fp8.codes != nullptr) decode_fp8_rows_tail(a, tile_idx, tile, reinterpret_cast<float*>(stages));
}

// Every instance (bf16 and FP8 cache, both block shapes) at once: the backend
// configures up front, outside any step-graph capture.
template <int D, typename KV, int W>
void configure_one() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(flash_decode_kernel<D, KV, W>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(DecodeShape<D, KV::kFp8, W>::kSmem)));
}
template <int D>
void configure_decode() {
  static bool done = false;  // one backend thread: no race
  if (!done) {
    configure_one<D, KvBf16, 4>();
    configure_one<D, KvFp8, 4>();
    configure_one<D, KvBf16, 2>();
    configure_one<D, KvFp8, 2>();
    done = true;
  }
}

// Of one instance (its registers and shared memory): the split policy's occupancy.
template <int D, typename KV, int W>
int blocks_per_sm_decode() {
  using Sh = DecodeShape<D, KV::kFp8, W>;
  static int n = 0;
  if (n == 0) {
    configure_decode<D>();
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, flash_decode_kernel<D, KV, W>, Sh::kThreads, Sh::kSmem) !=
            cudaSuccess ||
        n < 1)
      n = 1;
  }
  return n;
}

template <int D, typename KV, int W>
void launch_decode_w(const FlashAttnArgs& a, cudaStream_t stream) {
  using Sh = DecodeShape<D, KV::kFp8, W>;
  const dim3 grid(a.num_tiles, a.kv_heads, a.num_splits);
  launch(a.pdl, flash_decode_kernel<D, KV, W>, grid, dim3(Sh::kThreads), Sh::kSmem, stream, a);
}

template <int D>
void launch_decode_d(const FlashAttnArgs& a, cudaStream_t stream) {
  configure_decode<D>();
  if (a.kv_fp8) {
    if (a.decode_warps == 2) launch_decode_w<D, KvFp8, 2>(a, stream);
    else launch_decode_w<D, KvFp8, 4>(a, stream);
  } else {
    if (a.decode_warps == 2) launch_decode_w<D, KvBf16, 2>(a, stream);
    else launch_decode_w<D, KvBf16, 4>(a, stream);
  }
}

template <int D>
int blocks_per_sm_d(bool kv_fp8, int warps) {
  if (kv_fp8) return warps == 2 ? blocks_per_sm_decode<D, KvFp8, 2>() : blocks_per_sm_decode<D, KvFp8, 4>();
  return warps == 2 ? blocks_per_sm_decode<D, KvBf16, 2>() : blocks_per_sm_decode<D, KvBf16, 4>();
}

}  // namespace

size_t flash_host::decode_smem_bytes(int head_dim) {
  switch (head_dim) {
    case 64: return DecodeShape<64>::kSmem;
    case 128: return DecodeShape<128>::kSmem;
    case 256: return DecodeShape<256>::kSmem;
    default: return 0;
  }
}

int flash_host::decode_blocks_per_sm(int head_dim, bool kv_fp8, int warps) {
  switch (head_dim) {
    case 64: return blocks_per_sm_d<64>(kv_fp8, warps);
    case 128: return blocks_per_sm_d<128>(kv_fp8, warps);
    case 256: return blocks_per_sm_d<256>(kv_fp8, warps);
    default: return 1;
  }
}

int flash_decode_max_splits(int head_dim) {
  // The merge's weights (16 rows × splits floats) reuse the stages.
  size_t floats = 0;
  switch (head_dim) {
    case 64: floats = DecodeShape<64>::kScratchFloats; break;
    case 128: floats = DecodeShape<128>::kScratchFloats; break;
    case 256: floats = DecodeShape<256>::kScratchFloats; break;
    default: return 1;
  }
  return static_cast<int>(std::min<size_t>(kFlashMaxSplits, floats / kFlashDecodeRows));
}

FlashSplit flash_decode_split(int num_tiles, int kv_heads, int head_dim, int max_keys, size_t workspace_bytes,
                              bool kv_fp8, int warps) {
  if (flash_host::decode_smem_bytes(head_dim) == 0) return FlashSplit{1, 0};
  // A block costs about as much as streaming 128 bf16 keys beyond its own (launch,
  // Q, the warp merge, partial rows): 256 e4m3 keys, the same bytes.
  const int sms = flash_host::sm_count();
  return flash_host::choose_decode_shape(
      num_tiles * kv_heads, max_keys, sms * flash_host::decode_blocks_per_sm(head_dim, kv_fp8, 4),
      sms * flash_host::decode_blocks_per_sm(head_dim, kv_fp8, 2), flash_decode_max_splits(head_dim),
      (kv_fp8 ? 4 : 2) * kFlashSplitGranule, flash_workspace_bytes(1, 1, kFlashDecodeRows, 2, head_dim) / 2,
      workspace_bytes, flash_host::kDecodeTwoWarpKeyWeight, warps);
}

bool launch_flash_decode(const FlashAttnArgs& a, cudaStream_t stream) {
  if (!flash_host::args_ok(a, kFlashDecodeRows, flash_decode_max_splits(a.head_dim), kMaxCounters)) return false;
  if (a.decode_warps != 2 && a.decode_warps != 4) return false;
  if (a.out_fp8.codes != nullptr && (a.out_fp8.scales == nullptr || a.num_tiles > kFlashMaxFp8Tiles)) return false;
  if (a.num_tiles == 0) return true;
  switch (a.head_dim) {
    case 64: launch_decode_d<64>(a, stream); break;
    case 128: launch_decode_d<128>(a, stream); break;
    case 256: launch_decode_d<256>(a, stream); break;
    default: return false;
  }
  return true;
}

}  // namespace kr::cuda
