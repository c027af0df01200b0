// Device helpers shared by the flash prefill and decode kernels (included only
// by cuda_flash_prefill.cu and cuda_flash_decode.cu): tensor-core fragment layouts
// (below; the ldmatrix and mma.sync m16n8k16 helpers are cuda_mma.cuh's), cp.async (the zero-filling copy; commit
// and wait in cuda_cp_async.cuh), the swizzled shared-memory
// layout of a [rows, D] bf16 tile, paged K/V tile loads and the split merge.
//
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16", bf16): with
// lane = 4 g + t,
//   A (16×16, row major)  a0: (g, 2t..2t+1)  a1: (g+8, 2t..)  a2: (g, 2t+8..)  a3: (g+8, 2t+8..)
//   B (16×8, k × n)       b0: (k 2t..2t+1, n g)  b1: (k 2t+8.., n g)
//   C (16×8, f32)         c0, c1: (g, 2t), (g, 2t+1)  c2, c3: (g+8, 2t), (g+8, 2t+1)
// ldmatrix.x4 gives lane l of matrix i the pair (row l/4, cols 2(l%4), +1) of
// the 8×8 tile whose rows lanes 8i..8i+7 addressed; .trans gives (rows 2(l%4), +1; col l/4).
// The C layout of two adjacent n-tiles equals the A layout of one k-chunk, so
// the scores become P's A fragments without a shared-memory round trip
// (the FlashAttention-2 register reuse).
#pragma once

#include <cuda_bf16.h>

#include <climits>
#include <cstdint>

#include "backend/cuda/cuda_cp_async.cuh"
#include "backend/cuda/cuda_flash_attention.h"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_mma.cuh"

namespace kr::cuda::flash {

using bf16 = __nv_bfloat16;
constexpr float kLog2e = 1.4426950408889634f;

// 16-byte cp.async, L2 only (.cg); valid == false writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
}

// tanh(x) = 1 - 2 / (e^{2x} + 1): absolute error ~1e-7 over the whole range
// (tanh.approx.f32 has ~2^-11 relative error, 0.02 on a soft-capped logit of 50).
__device__ __forceinline__ float tanh_accurate(float x) {
  x = fminf(fmaxf(x, -15.0f), 15.0f);  // tanh(±15) rounds to ±1; keeps e^{2x} finite
  return 1.0f - __fdividef(2.0f, exp2f(x * (2.0f * kLog2e)) + 1.0f);
}

// Element offset of 16-byte chunk c of row r in a [rows, D] bf16 tile whose chunks
// are XOR-swizzled by the row (r mod 8): the 8 rows an ldmatrix reads at one
// column land in 8 different bank groups. D >= 64 (8 chunks per row at least).
template <int D>
__device__ __forceinline__ int swz(int r, int c) {
  static_assert(D % 64 == 0, "the swizzle needs at least 8 chunks per row");
  return r * D + ((c ^ (r & 7)) << 3);
}

// ldmatrix addresses without per-step arithmetic. A lane addresses row r (with
// r & 7 == lane & 7: row groups start on multiples of 8) and chunk c0 + 2 kk of a
// swizzled tile, c0 in {0, 1}. Since c0 + 2 kk = c0 ^ 2 kk, its byte address is
//   base + r·2D + (((c0 ^ (r & 7)) << 4) ^ 32 kk) = ldm_addr(...) ^ 32 kk
// whenever base is a multiple of 2D bytes (32 kk < 2D never reaches the row
// bits), and further rows add r'·2D without touching the XOR bits. So one
// register per operand serves every k-step and row group: `addr ^ imm + imm`.
template <int D>
__device__ __forceinline__ uint32_t ldm_addr(uint32_t base, int r, int c0) {
  return base + static_cast<uint32_t>(r * 2 * D) + static_cast<uint32_t>((c0 ^ (r & 7)) << 4);
}

// Dynamic shared memory rounded up to 1024 bytes (the ldm_addr base condition
// for every tile that starts on a multiple of 2D bytes); kernels ask for 1 KB more.
constexpr int kSmemAlign = 1024;
__device__ __forceinline__ unsigned char* align_smem(unsigned char* p) {
  const uint32_t a = smem_u32(p);
  return p + (((a + kSmemAlign - 1) & ~static_cast<uint32_t>(kSmemAlign - 1)) - a);
}

// Slot of key j (>= 0) of a sequence: -1 when past the table or when its entry is
// outside [0, num_blocks) (a -1 pad, or garbage): no key there.
// Slots fit in int32: the cache holds fewer than 2^31 tokens.
__device__ __forceinline__ int kv_slot(const int32_t* table, int max_blocks, int num_blocks, int block_shift, int j) {
  const int b = j >> block_shift;
  if (b >= max_blocks) return -1;
  const int blk = __ldg(table + b);
  if (blk < 0 || blk >= num_blocks) return -1;
  return (blk << block_shift) + (j & ((1 << block_shift) - 1));
}

// Per-launch constants of the paged cache for kv head g.
struct KvSource {
  const bf16* k;  // cache base + g * D (an FP8 cache: its byte address, as bf16*; load_kv_tile_fp8 reads bytes)
  const bf16* v;
  const int32_t* table;
  int64_t slot_stride;  // Hkv * D elements between slots
  int max_blocks, num_blocks, block_shift;
};

// The slots of this thread's keys of a tile: key j0 + p * ROWS_PER_PASS for pass p,
// -1 past kend or without a slot. Returns whether one below kend had no slot. All
// entries are read before the caller issues its first copy (a cp.async is a memory
// barrier to the compiler: one loop would wait on each entry in turn).
template <int PASSES, int ROWS_PER_PASS>
__device__ __forceinline__ bool tile_slots(const KvSource& src, int j0, int kend, int (&slot)[PASSES]) {
  bool missing = false;
#pragma unroll
  for (int p = 0; p < PASSES; ++p) {
    const int j = j0 + p * ROWS_PER_PASS;
    slot[p] = -1;
    if (j < kend) {
      slot[p] = kv_slot(src.table, src.max_blocks, src.num_blocks, src.block_shift, j);
      missing |= slot[p] < 0;
    }
  }
  return missing;
}

// cp.async of keys [kt, kt + KEYS) of K (and V when both) into swizzled [KEYS, D]
// tiles; keys >= kend and keys without a slot are zero-filled. Returns whether
// one of this thread's keys below kend had no slot (the tile then needs the mask).
// With `has_slot` set, the threads of chunk 0 also write each key's has-a-slot flag there.
// Only keys in [kfrom, kto) are written (the decode kernel loads a tile's older
// keys before waiting on the kernel before it and the rest after; the same
// thread writes a key's chunks either way).
template <int D, int KEYS, int THREADS, bool kK, bool kV>
__device__ __forceinline__ bool load_kv_tile(const KvSource& src, bf16* ks, bf16* vs, int kt, int kend,
                                             unsigned char* has_slot = nullptr, int kfrom = INT_MIN,
                                             int kto = INT_MAX) {
  constexpr int kChunks = D / 8;
  static_assert(THREADS % kChunks == 0, "a pass covers whole rows");
  constexpr int kRowsPerPass = THREADS / kChunks;
  static_assert(KEYS % kRowsPerPass == 0, "passes cover the tile");
  constexpr int kPasses = KEYS / kRowsPerPass;
  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
  int slot[kPasses];
  const bool missing = tile_slots<kPasses, kRowsPerPass>(src, kt + r0, kend, slot);
#pragma unroll
  for (int p = 0; p < kPasses; ++p) {
    const int key = r0 + p * kRowsPerPass;
    if (kt + key < kfrom || kt + key >= kto) continue;
    const int64_t off = slot[p] >= 0 ? static_cast<int64_t>(slot[p]) * src.slot_stride + c * 8 : 0;
    // Passes of a multiple of 8 rows keep the swizzle of row r0: an immediate step.
    const int so = kRowsPerPass % 8 == 0 ? swz<D>(r0, c) + p * kRowsPerPass * D : swz<D>(key, c);
    if constexpr (kK) cp_async16(smem_u32(ks + so), src.k + off, slot[p] >= 0);
    if constexpr (kV) cp_async16(smem_u32(vs + so), src.v + off, slot[p] >= 0);
    if (has_slot != nullptr && c == 0) has_slot[key] = slot[p] >= 0;
  }
  return missing;
}

// The 16-byte chunk that holds chunk c of row `key` in a swizzled e4m3 [KEYS, D]
// tile (load_kv_tile_fp8 with kSwz; the decode kernel's fragments read it with
// ldmatrix): c XOR the row's 128-byte line index mod 8 (mod D / 16 when fewer
// chunks), so that ldmatrix's 8 rows of one chunk fall in 8 different bank groups
// (plain rows of 128 bytes would all share the same 4 banks).
template <int D>
__device__ __forceinline__ int fp8_swz_chunk(int key, int c) {
  constexpr int kRowsPerLine = D >= 128 ? 1 : 128 / D;
  constexpr int kMask = (D / 16 < 8 ? D / 16 : 8) - 1;
  return c ^ ((key / kRowsPerLine) & kMask);
}

// The FP8 cache (cuda_kv_fp8.cuh): K/V tiles arrive as e4m3 bytes in row-major
// [KEYS, D] byte tiles (16-byte cp.async, D / 16 per row) and are widened to the
// swizzled bf16 tiles the mma fragments read (exact: e4m3 ⊂ bf16). The prefill
// kernel widens, in each thread, the chunks that thread copied, right before the
// barrier that publishes the tile (no extra barrier: cp.async.wait_group makes a
// thread's own copies visible to it); the decode kernel reads swizzled byte
// tiles (kSwz) and widens its fragments in registers instead. Cost: per 16
// bytes of cache, one 16-byte shared load, 8 prmt/lop/shift pairs and 4 bf16x2
// multiplies, and two 16-byte shared stores — ALU work beside the tensor cores,
// and shared memory for the byte tiles (2 kBc D bytes in prefill).
// (kfrom, kto: as load_kv_tile.)
template <int D, int KEYS, int THREADS, bool kK, bool kV, bool kSwz = false>
__device__ __forceinline__ bool load_kv_tile_fp8(const KvSource& src, unsigned char* ks, unsigned char* vs, int kt,
                                                 int kend, unsigned char* has_slot = nullptr, int kfrom = INT_MIN,
                                                 int kto = INT_MAX) {
  constexpr int kChunks = D / 16;  // 16 e4m3 per copy
  static_assert(THREADS % kChunks == 0, "a pass covers whole rows");
  constexpr int kRowsPerPass = THREADS / kChunks;
  static_assert(KEYS % kRowsPerPass == 0, "passes cover the tile");
  constexpr int kPasses = KEYS / kRowsPerPass;
  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
  int slot[kPasses];
  const bool missing = tile_slots<kPasses, kRowsPerPass>(src, kt + r0, kend, slot);
  const unsigned char* k8 = reinterpret_cast<const unsigned char*>(src.k);
  const unsigned char* v8 = reinterpret_cast<const unsigned char*>(src.v);
#pragma unroll
  for (int p = 0; p < kPasses; ++p) {
    const int key = r0 + p * kRowsPerPass;
    if (kt + key < kfrom || kt + key >= kto) continue;
    const int64_t off = slot[p] >= 0 ? static_cast<int64_t>(slot[p]) * src.slot_stride + c * 16 : 0;
    const int so = key * D + (kSwz ? fp8_swz_chunk<D>(key, c) : c) * 16;
    if constexpr (kK) cp_async16(smem_u32(ks + so), k8 + off, slot[p] >= 0);
    if constexpr (kV) cp_async16(smem_u32(vs + so), v8 + off, slot[p] >= 0);
    if (has_slot != nullptr && c == 0) has_slot[key] = slot[p] >= 0;
  }
  return missing;
}

// 16 e4m3 at `src` → bf16 chunks 2 c16 and 2 c16 + 1 of row r of a swizzled [*, D] tile.
template <int D>
__device__ __forceinline__ void widen16(const unsigned char* src, bf16* tile, int r, int c16) {
  const uint4 b = *reinterpret_cast<const uint4*>(src);
  *reinterpret_cast<uint4*>(tile + swz<D>(r, 2 * c16)) = e4m3x8_to_bf16x8(make_uint2(b.x, b.y));
  *reinterpret_cast<uint4*>(tile + swz<D>(r, 2 * c16 + 1)) = e4m3x8_to_bf16x8(make_uint2(b.z, b.w));
}

// Widens the chunks of a [KEYS, D] byte tile that this thread copied with
// load_kv_tile_fp8<D, KEYS, THREADS> (after its cp.async.wait_group).
template <int D, int KEYS, int THREADS>
__device__ __forceinline__ void widen_own_chunks(const unsigned char* bytes, bf16* tile) {
  constexpr int kChunks = D / 16;
  constexpr int kRowsPerPass = THREADS / kChunks;
  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
#pragma unroll
  for (int key = r0; key < KEYS; key += kRowsPerPass) widen16<D>(bytes + key * D + c * 16, tile, key, c);
}

// cp.async of ROWS query rows (row r: token first + r / group, q head g * group +
// r % group) into a swizzled [ROWS, D] tile; rows >= R zero-filled.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_q_tile(const FlashAttnArgs& a, bf16* qs, int first, int R, int group, int g) {
  constexpr int kChunks = D / 8;
  constexpr int kRowsPerPass = THREADS / kChunks;
  static_assert(ROWS % kRowsPerPass == 0 || kRowsPerPass > ROWS, "passes cover the tile");
  const int64_t width = static_cast<int64_t>(a.q_heads + 2 * a.kv_heads) * D;
  const bf16* qkv = static_cast<const bf16*>(a.qkv);
  const int c = threadIdx.x % kChunks;
  for (int r = threadIdx.x / kChunks; r < ROWS; r += kRowsPerPass) {
    const bool ok = r < R;
    const bf16* p = qkv;
    if (ok) p = qkv + (first + r / group) * width + (g * group + r % group) * D + c * 8;
    cp_async16(smem_u32(qs + swz<D>(r, c)), p, ok);
  }
}

// The query position of row r (clamped to the context; -1 for rows past R).
__device__ __forceinline__ int row_position(const FlashAttnArgs& a, int first, int r, int R, int group, int ctx) {
  if (r >= R) return -1;
  const int p = min(a.positions[first + r / group], ctx - 1);
  return p < 0 ? -1 : p;
}

// Partial result index of (tile, kv head g, row r, split) in partial_out / partial_ml.
__device__ __forceinline__ size_t partial_index(const FlashAttnArgs& a, int tile, int g, int rows_cap, int r,
                                                int split) {
  return ((static_cast<size_t>(tile) * a.kv_heads + g) * rows_cap + r) * a.num_splits + split;
}

// Split arrival: every block of a split launch calls this once after writing its
// partials (all of its threads, after their stores). Returns true in the one block
// that arrives last for its (tile, kv head); that block then merges. The counter
// goes back to 0, so every launch and graph replay starts from zeros. Release: the
// barrier orders the block's stores before thread 0's __threadfence (cumulative),
// which orders them before its atomicAdd; acquire: the last arriver fences after
// the atomic that saw every other arrival, and reads the partials with __ldcg.
__device__ __forceinline__ bool arrive_last(int* counter, int num_splits) {
  __shared__ int is_last;
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    const int arrived = atomicAdd(counter, 1);
    is_last = arrived == num_splits - 1;
    if (is_last) {
      atomicExch(counter, 0);
      __threadfence();
    }
  }
  __syncthreads();
  return is_last != 0;
}

// Merge of the num_splits partials of rows [0, R) of (tile, kv head g) into out.
// Each partial is a normalised row O_z with (m_z, l_z), m_z in log2 units; the
// result is Σ_z w_z O_z / Σ_z w_z with w_z = l_z 2^(m_z - max m). Weights go to
// `wts` (shared, at least R * num_splits floats); then every thread sums its
// output elements over the splits with independent loads.
template <int D, int THREADS>
__device__ void merge_splits(const FlashAttnArgs& a, int tile, int g, int rows_cap, int R, int first, int group,
                             float* wts) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, S = a.num_splits;
  for (int r = warp; r < R; r += THREADS / 32) {
    const float* ml = a.partial_ml + partial_index(a, tile, g, rows_cap, r, 0) * 2;
    float m = -INFINITY;
    for (int z = lane; z < S; z += 32)
      if (__ldcg(ml + 2 * z + 1) > 0.0f) m = fmaxf(m, __ldcg(ml + 2 * z));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float sum = 0.0f;
    for (int z = lane; z < S; z += 32) {
      const float l = __ldcg(ml + 2 * z + 1);
      const float w = l > 0.0f ? l * exp2f(__ldcg(ml + 2 * z) - m) : 0.0f;
      wts[r * S + z] = w;
      sum += w;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int z = lane; z < S; z += 32) wts[r * S + z] *= inv;
  }
  __syncthreads();
  bf16* out = static_cast<bf16*>(a.out);
  for (int e = threadIdx.x; e < R * (D / 2); e += THREADS) {
    const int r = e / (D / 2), d = 2 * (e % (D / 2));
    const float* po = a.partial_out + partial_index(a, tile, g, rows_cap, r, 0) * D + d;
    const float* w = wts + r * S;
    // 16 loads in flight per round (one L2 round trip each, not one per split).
    constexpr int kBatch = 16;
    float x = 0.0f, y = 0.0f;
    for (int z0 = 0; z0 < S; z0 += kBatch) {
      float2 v[kBatch];
#pragma unroll
      for (int i = 0; i < kBatch; ++i)
        v[i] = z0 + i < S ? __ldcg(reinterpret_cast<const float2*>(po + static_cast<size_t>(z0 + i) * D))
                          : make_float2(0.0f, 0.0f);
#pragma unroll
      for (int i = 0; i < kBatch; ++i) {
        const float wi = z0 + i < S ? w[z0 + i] : 0.0f;
        x = fmaf(wi, v[i].x, x);
        y = fmaf(wi, v[i].y, y);
      }
    }
    const int64_t row = static_cast<int64_t>(first + r / group) * a.q_heads + g * group + r % group;
    *reinterpret_cast<__nv_bfloat162*>(out + row * D + d) = __floats2bfloat162_rn(x, y);
  }
}

}  // namespace kr::cuda::flash
