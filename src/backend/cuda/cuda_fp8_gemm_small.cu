// FP8 W8A8 GEMM for T <= 64 activation rows (cuda_fp8_gemm_small.h says what it
// computes).
//
// The tensor-core op: sm_90 has no mma.sync for e4m3 (only wgmma); ptxas lowers
// mma.sync.m16n8k32.e4m3 to a conversion of both operands to f16 and two f16 mma
// (NVIDIA/cutlass issue 1986), converting each fragment again for every mma that
// uses it. This kernel does the same arithmetic in the open, so that each weight
// fragment is converted once for all token tiles and each activation fragment once
// for all the warp's weight tiles: cvt.rn.f16x2.e4m3x2 (exact: every e4m3 value is
// an f16 value) and mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32, whose
// products of two f16 are exact in f32; accumulation in f32.
//
// Fragments of m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16", 16-bit
// types; g = lane / 4, t = lane % 4): A (16 x 16, row) in four .b32 of 2 f16,
// a0: row g, k 2t, 2t+1; a1: row g+8, same k; a2: row g, k 8+2t, 8+2t+1; a3: row
// g+8, same k. B (16 x 8, col) in two, b0: k 2t, 2t+1 of column g; b1: k 8+2t,
// 8+2t+1. C (16 x 8 f32): c0, c1 row g, columns 2t, 2t+1; c2, c3 row g+8.
//
// The order of k inside a dot product is free as long as A and B use the same
// one. A = 16 weight rows, B = 8 tokens. Per 64-column chunk at k0, lane (g, t)
// loads 16 contiguous bytes (one uint4) of weight rows g and g+8 and of token g at
// k0 + 16t; word s of them (bytes 4s..4s+3) feeds mma step s (0..3): a0 = the low
// two bytes of row g's word, a2 its high two, a1 / a3 the same of row g+8; b0 =
// the token word's low two bytes, b1 its high two. So the mma's k 2t, 2t+1 of step
// s are columns k0 + 16t + 4s + 0, 1 and its k 8+2t, 8+2t+1 are k0 + 16t + 4s + 2,
// 3, for A and B alike: each of the 64 columns enters exactly once.
//
// Layout of the work: a warp owns kRowTiles 16-row weight tiles (2 with 4 or 8
// token tiles: each converted activation fragment feeds two mma) and NT token tiles
// of 8 (all T tokens); a block of 8 warps 128 or 256 rows (kBlockRows) and one
// slice of K (whole 64-column chunks); grid (row blocks, S slices). The weights
// stream past L1 (cp.async.cg) into a ring of kRing chunks per warp in shared
// memory, 7 (5) chunks ahead: 112 to 160 KB an SM in flight without holding
// registers; each lane copies and reads back only its own 16 bytes of a row, so
// cp.async.wait_group orders them without a barrier. The activations (T·K bytes,
// L2-resident) are read through L1, which the block's 8 warps share, the next
// chunk's while this one's mma run. With S > 1 each block stores its f32 tiles in
// `partials` ([row block][slice][row tile][token tile][thread] float4), then the
// last block of its row block to arrive (counter per row block) sums the S tiles
// in slice order, so the sum's order is fixed: bit-reproducible run to run.
//
// Scales: out = bf16((acc · sw[n]) · sx[t]), in that order (cuBLASLt's outer-vector
// scaling may round the product differently by an ulp; tests compare against the
// CPU emulation with a tolerance).
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_cp_async.cuh"
#include "backend/cuda/cuda_fp8_gemm_small.h"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kChunk = 64;  // k columns per chunk (four m16n8k16 steps)
// Weight row tiles of 16 a warp owns: 2 with 4 or 8 token tiles, so that each
// activation fragment feeds two mma and its conversion is paid once per 32 rows;
// 1 with fewer (two blocks an SM).
template <int NT>
constexpr int kRowTiles = NT >= 4 ? 2 : 1;
template <int NT>
constexpr int kBlockRows = kWarps * 16 * kRowTiles<NT>;  // weight rows per block
// Blocks per SM the kernel is compiled for: 2 (at most 128 registers), 1 with 8
// token tiles (their accumulators and activation words alone take 96 registers).
template <int NT>
constexpr int kMinBlocks = NT >= 8 ? 1 : 2;
// Stages of each warp's weight ring in shared memory (one 64-column chunk of the
// warp's 16·kRowTiles rows each, filled by cp.async; kRing - 1 chunks in flight,
// holding no registers): 8 (64 KB a block of 128 rows, two an SM: 112 KB in
// flight; 128 KB a block of 256 rows with 8 token tiles, one an SM: 112 KB), 6 with
// 4 token tiles (96 KB a block, two an SM: 160 KB).
template <int NT>
constexpr int kRing = NT == 4 ? 6 : 8;
template <int NT>
constexpr int kSmemBytes = kWarps * kRing<NT> * 2 * kRowTiles<NT> * 32 * 16;

struct SmallGemmParams {
  const uint8_t* wq;
  const float* sw;
  const uint8_t* xq;
  const float* sx;
  __nv_bfloat16* out;
  float* partials;
  int* counters;
  int N, K, ld_w, T;
  int chunks;            // ceil(K / 64)
  int chunks_per_slice;  // of the grid's y
  int slices;
};

// Four e4m3 (the bytes of v, low first) to four f16, exact (every e4m3 value is
// an f16 value): lo = bytes 0, 1 (in its low, high half), hi = bytes 2, 3. The
// 16-bit halves of v feed cvt directly (no shift).
__device__ __forceinline__ void e4m3x4_to_f16x4(uint32_t v, uint32_t& lo, uint32_t& hi) {
  asm("{\n.reg .b16 l, h;\nmov.b32 {l, h}, %2;\ncvt.rn.f16x2.e4m3x2 %0, l;\ncvt.rn.f16x2.e4m3x2 %1, h;\n}"
      : "=r"(lo), "=r"(hi)
      : "r"(v));
}

// Word s (0..3, unrolled) of v.
__device__ __forceinline__ uint32_t word(const uint4& v, int s) {
  return s == 0 ? v.x : s == 1 ? v.y : s == 2 ? v.z : v.w;
}

// D += A · B for one m16n8k16 tile (f16 inputs holding e4m3 values, f32 accumulators).
__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Step s's B fragment of one token tile from this lane's 16 activation bytes x
// (token g at k0 + 16t): b0 = bytes 4s, 4s+1, b1 = bytes 4s+2, 4s+3.
__device__ __forceinline__ void b_frag(const uint4& x, int s, uint32_t& b0, uint32_t& b1) {
  e4m3x4_to_f16x4(word(x, s), b0, b1);
}

// Step s's A fragment of one 16-row tile from this lane's 16 bytes of rows g (lo)
// and g+8 (hi): word s, a0 = its low half of row g, a2 its high half, a1 / a3 the
// same of row g+8.
__device__ __forceinline__ void a_frag(const uint4& lo, const uint4& hi, int s, uint32_t (&a)[4]) {
  e4m3x4_to_f16x4(word(lo, s), a[0], a[2]);
  e4m3x4_to_f16x4(word(hi, s), a[1], a[3]);
}

// NT: token tiles of 8 (T <= 8 NT). Block (row block blockIdx.x, slice blockIdx.y).
template <int NT>
__global__ void __launch_bounds__(kThreads, kMinBlocks<NT>) fp8_small_gemm_kernel(SmallGemmParams p) {
  constexpr int R = kRowTiles<NT>;
  pdl_launch_dependents();
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  const int rb = static_cast<int>(blockIdx.x), slice = static_cast<int>(blockIdx.y);
  const int row0 = rb * kBlockRows<NT> + warp * 16 * R;  // this warp's first row
  // The warp's row tiles that exist (N % 16 == 0: all 16 rows of a tile or none).
  bool tile_ok[R];
#pragma unroll
  for (int r = 0; r < R; ++r) tile_ok[r] = row0 + 16 * r < p.N;
  const int c_begin = slice * p.chunks_per_slice;
  const int c_end = min(c_begin + p.chunks_per_slice, p.chunks);
  // Weight row g of each tile at this lane's 16 bytes of a chunk (row g+8: + 8 ld_w).
  const uint8_t* w_row[R];
#pragma unroll
  for (int r = 0; r < R; ++r)
    w_row[r] = p.wq + static_cast<size_t>(tile_ok[r] ? row0 + 16 * r + g : 0) * p.ld_w + 16 * t;
  const size_t w_hi = static_cast<size_t>(8) * p.ld_w;
  const int kl = 16 * t;  // this lane's column inside a chunk
  // This warp's ring: stage u, slot 2r + h (row g + 8h of tile r), this lane's 16
  // bytes at [(u · 2R + slot) · 32 + lane]. Each lane reads back only what its own
  // cp.async wrote, so cp.async.wait_group alone orders them (no barrier).
  extern __shared__ uint4 w_ring[];
  uint4* const ring = w_ring + warp * kRing<NT> * 2 * R * 32 + lane;
  // Chunk c of rows g and g+8 of each tile into stage u (nothing past the slice;
  // zeros past N or K), and one commit group, empty or not, per call.
  auto issue_w = [&](int c, int u) {
    if (c < c_end) {
      const bool in = c * kChunk + kl < p.K;
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const bool ok = tile_ok[r] && in;
          const uint8_t* src = w_row[r] + (h != 0 ? w_hi : 0) + static_cast<size_t>(c) * kChunk;
          cp_async16_l2(smem_u32(ring + (u * 2 * R + 2 * r + h) * 32), ok ? src : p.wq, ok ? 16 : 0);
        }
    }
    cp_async_commit();
  };
  // The weights no kernel writes: their first chunks load before waiting on the
  // kernel before (PDL), hiding the ramp.
#pragma unroll
  for (int u = 0; u < kRing<NT> - 1; ++u) issue_w(c_begin + u, u);
  pdl_wait();

  // Token g of each token tile (8j + g), clamped to T - 1: a token past T reads
  // token T-1's bytes into a B column whose outputs are never stored (an mma column
  // is one token). Offsets of the rows in xq, per tile.
  uint32_t x_row[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) x_row[j] = static_cast<uint32_t>(min(8 * j + g, p.T - 1)) * static_cast<uint32_t>(p.K);
  // Tile j at this lane's 16 bytes of chunk c, unconditionally: the chunk clamped
  // to the slice (a prefetch past it is never used) and the column to K - 16 (the
  // lanes past K, whose weight bytes are zero-filled, read finite bytes of the same
  // token, which add 0 · x: no branch and no select a load).
  auto load_x = [&](int j, int c) {
    const uint32_t k = static_cast<uint32_t>(min(min(c, c_end - 1) * kChunk + kl, p.K - 16));
    return __ldg(reinterpret_cast<const uint4*>(p.xq + (x_row[j] + k)));
  };
  uint4 xb[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) xb[j] = load_x(j, c_begin);
  float acc[R][NT][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j) acc[r][j][0] = acc[r][j][1] = acc[r][j][2] = acc[r][j][3] = 0.0f;

  for (int c = c_begin; c < c_end; c += kRing<NT>) {
#pragma unroll
    for (int u = 0; u < kRing<NT>; ++u) {
      const int cc = c + u;
      if (cc < c_end) {  // uniform over the block
        // Chunk cc + 7 into the stage chunk cc - 1 was read from (its mma have
        // consumed those registers), then wait for chunk cc (stage u).
        issue_w(cc + kRing<NT> - 1, (u + kRing<NT> - 1) % kRing<NT>);
        cp_async_wait<kRing<NT> - 1>();
        uint4 w[2 * R];
#pragma unroll
        for (int i = 0; i < 2 * R; ++i) w[i] = ring[(u * 2 * R + i) * 32];
        // Step by step: step s's A fragments (converted once for all token tiles),
        // then each token tile's B fragment (converted once for all row tiles) and
        // its R mma; the NT·R mma of a step are independent. A tile's next chunk
        // loads once its last step is done.
#pragma unroll
        for (int s = 0; s < 4; ++s) {
          uint32_t a[R][4];
#pragma unroll
          for (int r = 0; r < R; ++r) a_frag(w[2 * r], w[2 * r + 1], s, a[r]);
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            uint32_t b0, b1;
            b_frag(xb[j], s, b0, b1);
            if (s == 3) xb[j] = load_x(j, cc + 1);
#pragma unroll
            for (int r = 0; r < R; ++r) mma_f16(acc[r][j], a[r], b0, b1);
          }
        }
      }
    }
  }

  if (p.slices > 1) {
    // This slice's tile, then the last block of the row block to arrive sums all.
    float4* mine =
        reinterpret_cast<float4*>(p.partials) + (static_cast<size_t>(rb) * p.slices + slice) * R * NT * kThreads;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < NT; ++j)
        __stcg(mine + (r * NT + j) * kThreads + threadIdx.x,
               make_float4(acc[r][j][0], acc[r][j][1], acc[r][j][2], acc[r][j][3]));
    __threadfence();
    __syncthreads();
    __shared__ int last;
    if (threadIdx.x == 0) {
      const int prev = atomicAdd(p.counters + rb, 1);
      last = prev == p.slices - 1;
      if (last) p.counters[rb] = 0;  // every slice has arrived: zero for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    // Slice by slice (the R·NT loads of a slice independent, the next slice's in
    // flight while this one's adds run), so that S slices cost S round trips to L2,
    // not S·R·NT; the sum in slice order.
    const float4* tiles = reinterpret_cast<const float4*>(p.partials) +
                          static_cast<size_t>(rb) * p.slices * R * NT * kThreads + threadIdx.x;
    float4 next[R * NT];
#pragma unroll
    for (int i = 0; i < R * NT; ++i) next[i] = __ldcg(tiles + i * kThreads);
    for (int s = 0; s < p.slices; ++s) {
      float4 cur[R * NT];
#pragma unroll
      for (int i = 0; i < R * NT; ++i) cur[i] = next[i];
      if (s + 1 < p.slices) {
#pragma unroll
        for (int i = 0; i < R * NT; ++i) next[i] = __ldcg(tiles + (static_cast<size_t>(s + 1) * R * NT + i) * kThreads);
      }
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const float4 v = cur[r * NT + j];
          if (s == 0) {  // the sum starts at slice 0's value (not 0 + it: -0 stays -0)
            acc[r][j][0] = v.x;
            acc[r][j][1] = v.y;
            acc[r][j][2] = v.z;
            acc[r][j][3] = v.w;
          } else {
            acc[r][j][0] += v.x;
            acc[r][j][1] += v.y;
            acc[r][j][2] += v.z;
            acc[r][j][3] += v.w;
          }
        }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (!tile_ok[r]) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + 16 * r + g + 8 * h;
      const float w = p.sw[row];
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int token = 8 * j + 2 * t + e;
          if (token < p.T)
            p.out[static_cast<size_t>(token) * p.N + row] = __float2bfloat16((acc[r][j][2 * h + e] * w) * p.sx[token]);
        }
    }
  }
}

template <int NT>
int resident_blocks_per_sm() {
  static int blocks = 0;  // the owning thread only (see the header)
  if (blocks == 0) {
    KR_CUDA_CHECK(cudaFuncSetAttribute(fp8_small_gemm_kernel<NT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       kSmemBytes<NT>));
    KR_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fp8_small_gemm_kernel<NT>, kThreads, kSmemBytes<NT>));
    // The split plans for the blocks an SM is compiled for (1 or 2; with 1 or 2
    // token tiles a third may fit, which the plan does not count on), fewer where
    // fewer fit.
    blocks = std::clamp(blocks, 1, kMinBlocks<NT>);
  }
  return blocks;
}

int token_tiles(int T) {
  const int tiles = (T + 7) / 8;
  return tiles <= 1 ? 1 : tiles <= 2 ? 2 : tiles <= 4 ? 4 : 8;
}

template <int NT>
bool launch_nt(const Fp8SmallGemmArgs& a, cudaStream_t stream) {
  const int row_blocks = (a.N + kBlockRows<NT> - 1) / kBlockRows<NT>;
  const int chunks = (a.K + kChunk - 1) / kChunk;
  const size_t tile_floats = static_cast<size_t>(kRowTiles<NT>) * NT * kThreads * 4;  // one block's f32 tile
  auto fits = [&](int slices) {
    return slices == 1 || (static_cast<size_t>(row_blocks) * slices * tile_floats <= a.partial_floats &&
                           a.partials != nullptr && a.counters != nullptr && row_blocks <= a.counter_count);
  };
  // The split: whole chunks per slice, no empty slice; the least waves of blocks
  // times a block's time, counted in chunk loads plus 2 for its ramp, reduce and
  // epilogue (each block's bytes in flight are fixed, so a block of a partial last
  // wave is no faster), plus S·NT/8 chunk loads for the last block's reading of S
  // partial tiles of NT·R·4 KB; the fewer slices on a tie (less reduce traffic). On
  // 132 SMs, Llama-3.1-8B (qkv, o_proj, gate_up, down): T <= 16 (128-row blocks, two
  // an SM) 5, 8, 1, 8 slices; T = 17..32 (256-row blocks, two an SM) 11, 11, 2, 16;
  // T = 33..64 (256-row blocks, one an SM) 5, 8, 1, 8; one wave each.
  const int per_sm = resident_blocks_per_sm<NT>();  // (first call: sets the kernel's shared memory limit)
  int best_slices = 0, best_cps = 0;
  if (a.force_split > 0) {
    best_cps = (chunks + std::min(a.force_split, chunks) - 1) / std::min(a.force_split, chunks);
    best_slices = (chunks + best_cps - 1) / best_cps;
    if (!fits(best_slices)) return false;
  } else {
    const long long resident = static_cast<long long>(per_sm) * std::max(a.num_sms, 1);
    long long best_cost = 0;
    for (int s = 1; s <= std::min(chunks, 64); ++s) {
      const int cps = (chunks + s - 1) / s;
      if ((chunks + cps - 1) / cps != s || !fits(s)) continue;
      const long long waves = (static_cast<long long>(row_blocks) * s + resident - 1) / resident;
      const long long cost = waves * (cps + 2) * 8 + (s > 1 ? s * NT : 0);  // eighths of a chunk load
      if (best_slices == 0 || cost < best_cost) {
        best_slices = s;
        best_cps = cps;
        best_cost = cost;
      }
    }
    if (best_slices == 0) return false;
  }
  SmallGemmParams p{};
  p.wq = static_cast<const uint8_t*>(a.wq);
  p.sw = a.sw;
  p.xq = static_cast<const uint8_t*>(a.xq);
  p.sx = a.sx;
  p.out = static_cast<__nv_bfloat16*>(a.out);
  p.partials = a.partials;
  p.counters = a.counters;
  p.N = a.N;
  p.K = a.K;
  p.ld_w = a.ld_w;
  p.T = a.T;
  p.chunks = chunks;
  p.chunks_per_slice = best_cps;
  p.slices = best_slices;
  launch(a.pdl, fp8_small_gemm_kernel<NT>, dim3(static_cast<unsigned>(row_blocks), static_cast<unsigned>(best_slices)),
         dim3(kThreads), kSmemBytes<NT>, stream, p);
  return true;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

bool fp8_gemm_shape_ok(const Fp8SmallGemmArgs& a) {
  return a.N > 0 && a.N % 16 == 0 && a.K > 0 && a.K % 16 == 0 && a.ld_w % 16 == 0 && a.ld_w >= a.K;
}

bool fp8_small_gemm_supports(const Fp8SmallGemmArgs& a) {
  return a.T >= 1 && a.T <= kFp8SmallMaxTokens && fp8_gemm_shape_ok(a) && a.wq != nullptr && a.xq != nullptr &&
         a.sw != nullptr && a.sx != nullptr && a.out != nullptr && aligned16(a.wq) && aligned16(a.xq);
}

void prepare_fp8_small_gemm() {
  resident_blocks_per_sm<1>();
  resident_blocks_per_sm<2>();
  resident_blocks_per_sm<4>();
  resident_blocks_per_sm<8>();
}

bool launch_fp8_small_gemm(const Fp8SmallGemmArgs& a, cudaStream_t stream) {
  if (!fp8_small_gemm_supports(a)) return false;
  switch (token_tiles(a.T)) {
    case 1: return launch_nt<1>(a, stream);
    case 2: return launch_nt<2>(a, stream);
    case 4: return launch_nt<4>(a, stream);
    default: return launch_nt<8>(a, stream);
  }
}

}  // namespace kr::cuda
