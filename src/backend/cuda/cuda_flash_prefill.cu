// Flash prefill attention on tensor cores (the prefill kernel of
// cuda_flash_attention.h; fragment layouts and helpers in cuda_flash_common.cuh).
//
// Block: one tile (kRows query rows: tokens × the q heads of kv head blockIdx.y,
// token-major) against the keys of split blockIdx.z. kWarps warps each own kMT
// m16 row tiles. Shared memory: Q [kRows, D], one K and one V tile [kBc, D], all
// bf16 and swizzled, K double-buffered: V of tile i is in flight while S = Q Kᵀ
// and the softmax run, K of tile i + 1 during the whole of iteration i (issued
// with V, when no score registers are live: no spills at D = 128).
// Key tiles run from the first one a row's window reaches to the last position
// of the tile; only tiles that cross a row's causal limit or window start (or
// hold a key without a slot) are masked. Tiles are taken in reverse order, so
// the last (longest, under a causal mask) tiles of a sequence start first.
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_flash_attention.h"
#include "backend/cuda/cuda_flash_common.cuh"
#include "backend/cuda/cuda_flash_host.h"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {
namespace {

using namespace flash;

// Tile shapes per head dim, after FlashAttention-2's for sm80+: 128 rows and 64
// keys with 4 warps of 32 rows (D 64, 128); for D = 256, 64 rows of 16 per warp
// (an O accumulator of 32 rows would not fit in registers) and 32 keys (two
// blocks per SM in shared memory). kV2: V double-buffered as K is; kFtz:
// ex2.approx.ftz exponentials; kMinBlocks: __launch_bounds__' blocks per SM.
template <int D, int V>
struct PrefillCfg;
template <int V>
struct PrefillCfg<64, V> {
  static constexpr int kWarps = 4, kMT = 2, kBc = 64, kMinBlocks = 2;
  static constexpr bool kV2 = false, kFtz = false;
};
template <int V>
struct PrefillCfg<256, V> {
  static constexpr int kWarps = 4, kMT = 1, kBc = 32, kMinBlocks = 2;
  static constexpr bool kV2 = false, kFtz = false;
};
template <int W, int MT, int BC, int MINB, bool V2, bool FTZ>
struct PrefillCfg128 {
  static constexpr int kWarps = W, kMT = MT, kBc = BC, kMinBlocks = MINB;
  static constexpr bool kV2 = V2, kFtz = FTZ;
};
// The variants at D = 128 (names in kVariantNames); every one has 128 rows.
template <>
struct PrefillCfg<128, 0> : PrefillCfg128<4, 2, 64, 2, false, false> {};  // base
template <>
struct PrefillCfg<128, 1> : PrefillCfg128<4, 2, 64, 2, true, false> {};  // kv2
template <>
struct PrefillCfg<128, 2> : PrefillCfg128<4, 2, 64, 2, true, true> {};  // kv2-ftz
template <>
struct PrefillCfg<128, 3> : PrefillCfg128<8, 1, 64, 2, false, false> {};  // w8
template <>
struct PrefillCfg<128, 4> : PrefillCfg128<8, 1, 64, 2, true, true> {};  // w8-kv2-ftz
template <>
struct PrefillCfg<128, 5> : PrefillCfg128<8, 1, 128, 1, true, true> {};  // w8-bc128
constexpr const char* kVariantNames[] = {"base", "kv2", "kv2-ftz", "w8", "w8-kv2-ftz", "w8-bc128"};
static_assert(sizeof(kVariantNames) / sizeof(kVariantNames[0]) == kFlashPrefillVariants);

// kFp8: an FP8 cache; K and V arrive as e4m3 bytes in one byte tile each
// [kBc, D] (cuda_flash_common.cuh: each thread widens the chunks it copied into
// the bf16 tiles before the barrier that publishes them).
template <int D, int V, bool kFp8 = false>
struct PrefillShape {
  using Cfg = PrefillCfg<D, V>;
  static constexpr int kWarps = Cfg::kWarps;
  static constexpr int kMT = Cfg::kMT;
  static constexpr int kBc = Cfg::kBc;
  static constexpr int kMinBlocks = Cfg::kMinBlocks;
  static constexpr bool kV2 = Cfg::kV2, kFtz = Cfg::kFtz;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRows = kWarps * kMT * 16;
  static constexpr int kVBufs = kV2 ? 2 : 1;
  // Q, two K tiles, one or two V tiles (fp8: then the K and V byte tiles); row
  // positions, a reduction, two tiles' has-a-slot flags.
  static constexpr size_t kStagingBytes = kFp8 ? 2 * static_cast<size_t>(kBc) * D : 0;
  static constexpr size_t kSmem = kSmemAlign + sizeof(bf16) * (kRows + (2 + kVBufs) * kBc) * D + kStagingBytes +
                                  sizeof(int) * (kRows + 2 * kWarps) + 2 * kBc;
  // Split runs are whole granules of keys; a tile of more keys than the granule
  // rounds the run up to whole tiles (some splits may then be empty).
  static constexpr int kSplitGranule = kBc > kFlashSplitGranule ? kBc : kFlashSplitGranule;
  static_assert(kSplitGranule % kBc == 0, "split boundaries must fall on key tiles");
  static_assert(D != 128 || kRows == 128, "every D = 128 variant keeps the host's 128-row tiles");
};

// 2^x: exp2f (ex2.approx.f32 with its denormal range fix-up) or ex2.approx.ftz.f32
// alone (results below 2^-126 flush to zero: probabilities that add nothing to a row).
template <bool kFtz>
__device__ __forceinline__ float exp2_soft(float x) {
  if constexpr (kFtz) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
  } else {
    return exp2f(x);
  }
}

// One arrival counter per (tile, kv head) of a split launch (see arrive_last).
constexpr int kMaxCounters = kFlashMaxSplitPairs;
__device__ int g_prefill_counters[kMaxCounters];

template <int D, int V, typename KV>
__global__ void __launch_bounds__(PrefillShape<D, V, KV::kFp8>::kThreads, PrefillShape<D, V, KV::kFp8>::kMinBlocks)
    flash_prefill_kernel(const FlashAttnArgs a) {
  using Sh = PrefillShape<D, V, KV::kFp8>;
  constexpr int kMT = Sh::kMT, kBc = Sh::kBc, kRows = Sh::kRows, kThreads = Sh::kThreads, kWarps = Sh::kWarps;
  constexpr bool kV2 = Sh::kV2, kFtz = Sh::kFtz;
  constexpr int kNT = kBc / 8;  // score n-tiles (8 keys each)
  constexpr int kDT = D / 8;    // output n-tiles (8 dims each)
  extern __shared__ __align__(128) unsigned char smem_raw[];
  unsigned char* smem = align_smem(smem_raw);
  bf16* qs = reinterpret_cast<bf16*>(smem);  // [kRows, D]
  bf16* ks = qs + kRows * D;                 // 2 × [kBc, D]
  bf16* vs = ks + 2 * kBc * D;               // kVBufs × [kBc, D]
  unsigned char* k8 = reinterpret_cast<unsigned char*>(vs + Sh::kVBufs * kBc * D);  // fp8: [kBc, D] bytes
  unsigned char* v8 = k8 + Sh::kStagingBytes / 2;                                   // fp8: [kBc, D] bytes
  int* s_pos = reinterpret_cast<int*>(k8 + Sh::kStagingBytes);  // [kRows] row positions
  int* s_red = s_pos + kRows;                         // [2 kWarps]
  unsigned char* s_has = reinterpret_cast<unsigned char*>(s_red + 2 * kWarps);  // 2 × [kBc]

  pdl_launch_dependents();
  pdl_wait();
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int tile_idx = a.num_tiles - 1 - static_cast<int>(blockIdx.x);
  const AttnTile tile = a.tiles[tile_idx];
  const int g = blockIdx.y, split = blockIdx.z;
  const int group = a.q_heads / a.kv_heads;
  const int R = min(tile.count * group, kRows);
  const int ctx = a.context_lens[tile.seq];

  load_q_tile<D, kRows, kThreads>(a, qs, tile.first, R, group, g);

  // Row positions and their range over the tile.
  int lo = INT_MAX, hi = -1;
  for (int r = tid; r < kRows; r += kThreads) {
    const int p = row_position(a, tile.first, r, R, group, ctx);
    s_pos[r] = p;
    if (p >= 0) {
      lo = min(lo, p);
      hi = max(hi, p);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, o));
    hi = max(hi, __shfl_xor_sync(0xffffffffu, hi, o));
  }
  if (lane == 0) {
    s_red[warp] = lo;
    s_red[kWarps + warp] = hi;
  }
  __syncthreads();
  lo = s_red[0];
  hi = s_red[kWarps];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) {
    lo = min(lo, s_red[w]);
    hi = max(hi, s_red[kWarps + w]);
  }

  // Keys [kbeg, kend) in tiles of kBc: from the tile holding the lowest window
  // start (0 without a window) to the highest position, cut to this split.
  int kbeg = 0, kend = hi + 1;
  if (a.window > 0 && hi >= 0) kbeg = max(0, lo - a.window + 1) / kBc * kBc;
  if (a.num_splits > 1 && kend > kbeg) {
    // Run `split` of num_splits equal runs of whole granules from kbeg (see FlashAttnArgs).
    constexpr int G = Sh::kSplitGranule;
    const int per = ((kend - kbeg + G - 1) / G + a.num_splits - 1) / a.num_splits * G;
    kbeg += split * per;
    kend = min(kend, kbeg + per);
  }
  const int ntiles = kend > kbeg ? (kend - kbeg + kBc - 1) / kBc : 0;
  // A key tile needs no mask when every row sees all of its keys: keys
  // [first_all, last_all] are seen by every row.
  const int last_all = lo;
  const int first_all = a.window > 0 ? hi - a.window + 1 : INT_MIN;

  const KvSource src{reinterpret_cast<const bf16*>(static_cast<const unsigned char*>(a.k_cache) + g * D * KV::kBytes),
                     reinterpret_cast<const bf16*>(static_cast<const unsigned char*>(a.v_cache) + g * D * KV::kBytes),
                     a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks,
                     static_cast<int64_t>(a.kv_heads) * D,
                     a.max_blocks,
                     a.num_blocks,
                     __ffs(a.block_size) - 1};
  // cp.async of K and/or V of the key tile at kt: into bf16 tiles kb / vb, or (fp8) into the byte tiles.
  auto load_kv = [&](auto k_tag, auto v_tag, bf16* kb, bf16* vb, int kt, unsigned char* has) {
    constexpr bool kK = decltype(k_tag)::value, kV = decltype(v_tag)::value;
    if constexpr (KV::kFp8) {
      return load_kv_tile_fp8<D, kBc, kThreads, kK, kV>(src, k8, v8, kt, kend, has);
    } else {
      return load_kv_tile<D, kBc, kThreads, kK, kV>(src, kb, vb, kt, kend, has);
    }
  };
  using Yes = std::true_type;
  using No = std::false_type;
  using KV2 = std::integral_constant<bool, kV2>;
  bool missing = false;  // a key of this thread's next K tile has no slot
  if (ntiles > 0) missing = load_kv(Yes{}, KV2{}, ks, vs, kbeg, s_has);
  cp_async_commit();  // Q and K (kV2: and V) of the first tile

  float o[kMT][kDT][4];
  float m[kMT][2], l[kMT][2];  // running max (log2 units) and this thread's part of the row sum
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.0f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
  }
  const bool capped = a.softcap > 0.0f;
  const float c = capped ? a.softcap * kLog2e : a.scale * kLog2e;  // score → log2 units
  const float pre = capped ? a.scale / a.softcap : 0.0f;
  const int wrow = warp * kMT * 16;  // the warp's first row
  // ldmatrix lanes: Q (A operand) rows wrow + lane % 16, chunk lane / 16; K (B,
  // keys × d) keys lane % 8 + 8 (lane / 16), chunk (lane / 8) % 2; V (B through
  // .trans, keys × d) keys lane % 8 + 8 ((lane / 8) % 2), chunk lane / 16.
  const uint32_t q_addr = ldm_addr<D>(smem_u32(qs), wrow + (lane & 15), lane >> 4);
  const uint32_t k_addr = ldm_addr<D>(smem_u32(ks), (lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1);
  const uint32_t v_addr = ldm_addr<D>(smem_u32(vs), (lane & 7) + (((lane >> 3) & 1) << 3), lane >> 4);

  for (int it = 0; it < ntiles; ++it) {
    const int kt = kbeg + it * kBc;
    const uint32_t k_cur = k_addr + (it & 1) * (kBc * D * 2);
    const uint32_t v_cur = v_addr + (kV2 ? (it & 1) * (kBc * D * 2) : 0);
    const unsigned char* has_cur = s_has + (it & 1) * kBc;
    cp_async_wait<0>();
    if constexpr (KV::kFp8) {
      // This thread's copies of K tile it (kV2: and V tile it) into the bf16 tiles
      // (K tile it - 2 and V tile it - 2 (kV2) / it - 1: every warp passed the last barrier after using them).
      widen_own_chunks<D, kBc, kThreads>(k8, ks + (it & 1) * kBc * D);
      if constexpr (kV2) widen_own_chunks<D, kBc, kThreads>(v8, vs + (it & 1) * kBc * D);
    }
    // K tile it (kV2: and V tile it) visible; every warp is done with V tile it - 1
    // and K tile it - 1.
    const bool any_missing = __syncthreads_or(missing);
    if constexpr (kV2) {
      // K and V of tile it + 1 into the buffers of tile it - 1; no other barrier this tile.
      if (it + 1 < ntiles)
        missing = load_kv(Yes{}, Yes{}, ks + ((it + 1) & 1) * kBc * D, vs + ((it + 1) & 1) * kBc * D, kt + kBc,
                          s_has + ((it + 1) & 1) * kBc);
      cp_async_commit();
    } else {
      load_kv(No{}, Yes{}, ks, vs, kt, nullptr);
      cp_async_commit();
      if (it + 1 < ntiles)
        missing = load_kv(Yes{}, No{}, ks + ((it + 1) & 1) * kBc * D, vs, kt + kBc, s_has + ((it + 1) & 1) * kBc);
      cp_async_commit();
    }

    // S = Q Kᵀ (raw q·k).
    float s[kMT][kNT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t qa[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) ldmatrix_x4(qa[mt], (q_addr ^ (32 * kk)) + mt * 16 * 2 * D);
#pragma unroll
      for (int nn = 0; nn < kBc / 16; ++nn) {
        uint32_t kb[4];  // keys nn*16 + [0, 8): kb[0], kb[1]; + [8, 16): kb[2], kb[3]
        ldmatrix_x4(kb, (k_cur ^ (32 * kk)) + nn * 16 * 2 * D);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma_bf16(s[mt][2 * nn], qa[mt], kb[0], kb[1]);
          mma_bf16(s[mt][2 * nn + 1], qa[mt], kb[2], kb[3]);
        }
      }
    }
    if (capped) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][nt][e] = tanh_accurate(s[mt][nt][e] * pre);
    }
    if (any_missing || kt + kBc - 1 > last_all || kt < first_all) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int p = s_pos[wrow + mt * 16 + gq + 8 * h];
          const int wlo = a.window > 0 ? p - a.window + 1 : 0;
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int key = nt * 8 + 2 * tq + e, j = kt + key;
              const bool ok = j <= p && j >= wlo && (!any_missing || has_cur[key] != 0);
              if (!ok) s[mt][nt][2 * h + e] = -INFINITY;
            }
        }
    }
    // Online softmax; the row's 4 lanes (same gq) hold its 2 kNT columns. New
    // maxima first, then the rescale of O, then the exponentials.
    float base[kMT][2], alpha[kMT][2];
    bool grew = false;  // some row's maximum rose: O needs the rescale
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[mt][h], mx * c);
        base[mt][h] = m_new == -INFINITY ? 0.0f : m_new;  // fully masked so far: p = 0, no NaN
        alpha[mt][h] = m_new == m[mt][h] ? 1.0f : exp2_soft<kFtz>(m[mt][h] - base[mt][h]);  // exactly 1 when skipped
        grew |= m_new != m[mt][h];
        m[mt][h] = m_new;
        l[mt][h] *= alpha[mt][h];
      }
    // Once the row maxima settle (most tiles of a long row) the rescale is skipped.
    if (__any_sync(0xffffffffu, grew)) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
          for (int e = 0; e < 4; ++e) o[mt][dt][e] *= alpha[mt][e >> 1];
    }
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2_soft<kFtz>(fmaf(s[mt][nt][e], c, -base[mt][e >> 1]));
          s[mt][nt][e] = p;
          l[mt][e >> 1] += p;
        }

    if constexpr (!kV2) {
      cp_async_wait<1>();  // V tile it (K tile it + 1 may still be in flight)
      if constexpr (KV::kFp8) widen_own_chunks<D, kBc, kThreads>(v8, vs);
      __syncthreads();
    }

    // O += P V, P in bf16 straight from the score registers.
#pragma unroll
    for (int kc = 0; kc < kBc / 16; ++kc) {
      uint32_t pa[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        pa[mt][0] = pack_bf16(s[mt][2 * kc][0], s[mt][2 * kc][1]);
        pa[mt][1] = pack_bf16(s[mt][2 * kc][2], s[mt][2 * kc][3]);
        pa[mt][2] = pack_bf16(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
        pa[mt][3] = pack_bf16(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
      }
#pragma unroll
      for (int dn = 0; dn < D / 16; ++dn) {
        uint32_t vb[4];  // dims dn*16 + [0, 8): vb[0], vb[1]; + [8, 16): vb[2], vb[3]
        ldmatrix_x4_trans(vb, (v_cur ^ (32 * dn)) + kc * 16 * 2 * D);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma_bf16(o[mt][2 * dn], pa[mt], vb[0], vb[1]);
          mma_bf16(o[mt][2 * dn + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 1);
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 2);
    }
  bf16* out = static_cast<bf16*>(a.out);
  if (a.num_splits == 1) {
    // Normalised bf16 rows into the warp's own rows of qs (only this warp read
    // them), then 16-byte stores of whole rows.
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wrow + mt * 16 + gq + 8 * h;
        float inv = l[mt][h] > 0.0f ? 1.0f / l[mt][h] : 0.0f;
        if constexpr (KV::kFp8) inv *= a.v_scale;  // V's scale, once per row
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt)
          *reinterpret_cast<uint32_t*>(qs + swz<D>(r, dt) + 2 * tq) =
              pack_bf16(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
      }
    __syncwarp();
    for (int i = lane; i < kMT * 16 * (D / 8); i += 32) {
      const int r = wrow + i / (D / 8), cc = i % (D / 8);
      if (r < R) {
        const int64_t row = static_cast<int64_t>(tile.first + r / group) * a.q_heads + g * group + r % group;
        *reinterpret_cast<uint4*>(out + row * D + cc * 8) = *reinterpret_cast<const uint4*>(qs + swz<D>(r, cc));
      }
    }
    return;
  }
  // Split: normalised f32 partial rows and (max, sum); the last block merges.
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = wrow + mt * 16 + gq + 8 * h;
      if (r >= R) continue;
      float inv = l[mt][h] > 0.0f ? 1.0f / l[mt][h] : 0.0f;
      if constexpr (KV::kFp8) inv *= a.v_scale;  // (the split merge is linear)
      const size_t pi = partial_index(a, tile_idx, g, kRows, r, split);
      float* po = a.partial_out + pi * D;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt)
        *reinterpret_cast<float2*>(po + dt * 8 + 2 * tq) = make_float2(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
      if (tq == 0) {
        a.partial_ml[pi * 2] = m[mt][h];
        a.partial_ml[pi * 2 + 1] = l[mt][h];
      }
    }
  if (arrive_last(&g_prefill_counters[tile_idx * a.kv_heads + g], a.num_splits))
    merge_splits<D, kThreads>(a, tile_idx, g, kRows, R, tile.first, group, reinterpret_cast<float*>(smem));
}

// Both instances (bf16 and FP8 cache) at once: the backend configures up front,
// outside any step-graph capture.
template <int D, int V>
void configure_prefill() {
  static bool done = false;  // one backend thread: no race
  if (!done) {
    KR_CUDA_CHECK(cudaFuncSetAttribute(flash_prefill_kernel<D, V, KvBf16>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(PrefillShape<D, V>::kSmem)));
    KR_CUDA_CHECK(cudaFuncSetAttribute(flash_prefill_kernel<D, V, KvFp8>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(PrefillShape<D, V, true>::kSmem)));
    done = true;
  }
}

// Of the bf16 instance (the split policy's lead for both).
template <int D, int V>
int blocks_per_sm_prefill() {
  static int n = 0;
  if (n == 0) {
    configure_prefill<D, V>();
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, flash_prefill_kernel<D, V, KvBf16>,
                                                      PrefillShape<D, V>::kThreads,
                                                      PrefillShape<D, V>::kSmem) != cudaSuccess ||
        n < 1)
      n = 1;
  }
  return n;
}

template <int D, int V>
void launch_prefill_d(const FlashAttnArgs& a, cudaStream_t stream) {
  configure_prefill<D, V>();
  const dim3 grid(a.num_tiles, a.kv_heads, a.num_splits);
  if (a.kv_fp8) {
    launch(/*pdl=*/false, flash_prefill_kernel<D, V, KvFp8>, grid, dim3(PrefillShape<D, V, true>::kThreads),
           PrefillShape<D, V, true>::kSmem, stream, a);
  } else {
    launch(/*pdl=*/false, flash_prefill_kernel<D, V, KvBf16>, grid, dim3(PrefillShape<D, V>::kThreads),
           PrefillShape<D, V>::kSmem, stream, a);
  }
}

// f(Int<D>, Int<V>) for a head dim and a variant (variants other than 0 exist at
// D = 128 only; other head dims run variant 0); `fallback` for an unsupported head dim.
template <int N>
using Int = std::integral_constant<int, N>;
template <typename R, typename F>
R dispatch(int head_dim, int variant, R fallback, F f) {
  switch (head_dim) {
    case 64: return f(Int<64>{}, Int<0>{});
    case 256: return f(Int<256>{}, Int<0>{});
    case 128:
      switch (variant) {
        case 1: return f(Int<128>{}, Int<1>{});
        case 2: return f(Int<128>{}, Int<2>{});
        case 3: return f(Int<128>{}, Int<3>{});
        case 4: return f(Int<128>{}, Int<4>{});
        case 5: return f(Int<128>{}, Int<5>{});
        default: return f(Int<128>{}, Int<0>{});
      }
    default: return fallback;
  }
}

}  // namespace

const char* flash_prefill_variant_name(int variant) {
  return variant >= 0 && variant < kFlashPrefillVariants ? kVariantNames[variant] : "?";
}

int flash_prefill_rows(int head_dim) {
  return dispatch(head_dim, 0, 0, [](auto d, auto v) { return PrefillShape<d(), v()>::kRows; });
}

int flash_prefill_tile_tokens(int group, int head_dim) {
  const int rows = flash_prefill_rows(head_dim);
  if (group <= 0 || rows == 0 || group > rows) return 0;
  return rows / group;
}

size_t flash_host::prefill_smem_bytes(int head_dim, int variant) {
  return dispatch(head_dim, variant, size_t{0}, [](auto d, auto v) { return PrefillShape<d(), v()>::kSmem; });
}

int flash_host::prefill_blocks_per_sm(int head_dim, int variant) {
  return dispatch(head_dim, variant, 1, [](auto d, auto v) { return blocks_per_sm_prefill<d(), v()>(); });
}

int flash_prefill_max_splits(int head_dim, int variant) {
  // The merge's weights (rows × splits floats) reuse the block's shared memory.
  const int rows = flash_prefill_rows(head_dim);
  if (rows == 0) return 1;
  const size_t floats = (flash_host::prefill_smem_bytes(head_dim, variant) - kSmemAlign) / sizeof(float);
  return static_cast<int>(std::min<size_t>(kFlashMaxSplits, floats / rows));
}

FlashSplit flash_prefill_split(int num_tiles, int kv_heads, int head_dim, int max_keys, size_t workspace_bytes,
                               int variant) {
  const int rows = flash_prefill_rows(head_dim);
  if (rows == 0) return FlashSplit{1, 0};
  const int slots = flash_host::sm_count() * flash_host::prefill_blocks_per_sm(head_dim, variant);
  // A block of a prefill split costs about as much as 4 key tiles beyond its keys
  // (Q load, partial rows, the merge).
  return flash_host::choose_split(num_tiles * kv_heads, max_keys, slots, flash_prefill_max_splits(head_dim, variant),
                                  4 * kFlashSplitGranule, flash_workspace_bytes(1, 1, rows, 2, head_dim) / 2,
                                  workspace_bytes);
}

bool launch_flash_prefill(const FlashAttnArgs& a, cudaStream_t stream, int variant) {
  if (variant < 0 || variant >= kFlashPrefillVariants) return false;
  if (a.out_fp8.codes != nullptr) return false;  // FP8 rows of out: the decode kernel only
  if (!flash_host::args_ok(a, flash_prefill_rows(a.head_dim), flash_prefill_max_splits(a.head_dim, variant),
                           kMaxCounters))
    return false;
  if (a.num_tiles == 0) return true;
  return dispatch(a.head_dim, variant, false, [&](auto d, auto v) {
    launch_prefill_d<d(), v()>(a, stream);
    return true;
  });
}

}  // namespace kr::cuda
