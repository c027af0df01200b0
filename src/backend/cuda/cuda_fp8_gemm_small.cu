// FP8 W8A8 GEMM for T <= 64 activation rows (cuda_fp8_gemm_small.h says what it
// computes).
//
// mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 (PTX ISA, "Matrix fragments
// for mma.m16n8k32", 8-bit types; g = lane / 4, t = lane % 4): A (16 x 32, row) in
// four .b32 of 4 e4m3 each, a0: row g, k 4t..4t+3; a1: row g+8, same k; a2: row g,
// k 16+4t..16+4t+3; a3: row g+8, same k. B (32 x 8, col) in two, b0: k 4t..4t+3 of
// column g; b1: k 16+4t... C (16 x 8 f32): c0, c1 row g, columns 2t, 2t+1; c2, c3
// row g+8.
//
// The order of k inside a dot product is free as long as A and B use the same
// one. A = 16 weight rows, B = 8 tokens. Per 64-column chunk at k0, lane (g, t)
// loads 16 contiguous bytes (one uint4) of weight rows g and g+8 and of token g at
// k0 + 16t; words 0, 1 of them feed mma step 0 (a0 = row g word 0, a2 = row g word
// 1, a1 / a3 the same of row g+8; b0 = token word 0, b1 = token word 1) and words
// 2, 3 step 1. So the mma's k 4t..4t+3 of step s is column k0 + 16t + 8s + 0..3,
// and its k 16+4t.. is k0 + 16t + 8s + 4..7, for A and B alike: each of the 64
// columns enters exactly once.
//
// Layout of the work: a warp owns 16 weight rows and NT token tiles of 8 (all T
// tokens), a block of 8 warps 128 rows and one slice of K (whole 64-column chunks);
// grid (ceil(N / 128) row blocks, S slices). The weights stream with
// ld.global.nc.L1::no_allocate through a ring of chunks per warp (kRing: 4 or 6 KB a
// warp in flight); the activations (T·K bytes, L2-resident) are read
// through L1, which the block's 8 warps share. With S > 1 each block stores its f32
// tile in `partials` ([row block][slice][token tile][thread] float4), then the
// last block of its row block to arrive (counter per row block) sums the S tiles in
// slice order, so the sum's order is fixed: bit-reproducible run to run.
//
// Scales: out = bf16((acc · sw[n]) · sx[t]), in that order (cuBLASLt's outer-vector
// scaling may round the product differently by an ulp; tests compare against the
// CPU emulation with a tolerance).
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_fp8_gemm_small.h"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kBlockRows = kWarps * 16;  // weight rows per block
constexpr int kChunk = 64;               // k columns per chunk (two mma steps)
// Blocks per SM the kernel is compiled for: 2 (at most 128 registers), 1 with 8
// token tiles (whose accumulators and activation fragments take 64 registers:
// at 128 it spills).
template <int NT>
constexpr int kMinBlocks = NT >= 8 ? 1 : 2;
// Weight chunks in flight per warp (1 KB each): 4 (2 blocks of 8 warps an SM: 64 KB
// an SM), 6 with 8 token tiles (1 block an SM: 48 KB).
template <int NT>
constexpr int kRing = NT >= 8 ? 6 : 4;
// With 8 token tiles (8 warps an SM), the activation fragments of the next chunk
// load while the mma of this one run, so that their L1/L2 latency is not paid once
// per chunk; with fewer, the other block's warps hide it.
template <int NT>
constexpr bool kPrefetchX = NT >= 8;

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

__device__ __forceinline__ uint4 ld_stream(const uint8_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// D += A · B for one m16n8k32 tile (e4m3 inputs, f32 accumulators).
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// NT: token tiles of 8 (T <= 8 NT). Block (row block blockIdx.x, slice blockIdx.y).
template <int NT>
__global__ void __launch_bounds__(kThreads, kMinBlocks<NT>) fp8_small_gemm_kernel(SmallGemmParams p) {
  pdl_launch_dependents();
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  const int rb = static_cast<int>(blockIdx.x), slice = static_cast<int>(blockIdx.y);
  const int row0 = rb * kBlockRows + warp * 16;
  const bool rows_ok = row0 < p.N;  // N % 16 == 0: all 16 rows or none
  const int c_begin = slice * p.chunks_per_slice;
  const int c_end = min(c_begin + p.chunks_per_slice, p.chunks);
  // Weight rows g and g+8 of this warp's tile, at this lane's 16 bytes of a chunk.
  const uint8_t* w_lo = p.wq + static_cast<size_t>(rows_ok ? row0 + g : 0) * p.ld_w + 16 * t;
  const uint8_t* w_hi = w_lo + static_cast<size_t>(8) * p.ld_w;
  const int kl = 16 * t;  // this lane's column inside a chunk
  auto load_w = [&](int c, uint4& lo, uint4& hi) {
    const int k = c * kChunk + kl;
    if (rows_ok && c < c_end && k < p.K) {
      lo = ld_stream(w_lo + static_cast<size_t>(c) * kChunk);
      hi = ld_stream(w_hi + static_cast<size_t>(c) * kChunk);
    } else {
      lo = make_uint4(0, 0, 0, 0);
      hi = lo;
    }
  };
  // The weights no kernel writes: their first chunks load before waiting on the
  // kernel before (PDL), hiding the ramp.
  uint4 wlo[kRing<NT>], whi[kRing<NT>];
#pragma unroll
  for (int u = 0; u < kRing<NT>; ++u) load_w(c_begin + u, wlo[u], whi[u]);
  pdl_wait();

  // Token g of each token tile: x_g + 8 j K; the tiles where it exists (token < T).
  const uint8_t* x_g = p.xq + static_cast<size_t>(g) * p.K;
  uint32_t x_tiles = 0;
#pragma unroll
  for (int j = 0; j < NT; ++j) x_tiles |= (8 * j + g < p.T ? 1u : 0u) << j;
  // Token g of each token tile at this lane's 16 bytes of chunk c (zero past T or K).
  auto load_x = [&](int c, uint4 (&xb)[NT]) {
    const int k = c * kChunk + kl;
#pragma unroll
    for (int j = 0; j < NT; ++j)
      xb[j] = (x_tiles >> j & 1) != 0 && c < c_end && k < p.K
                  ? __ldg(reinterpret_cast<const uint4*>(x_g + (static_cast<uint32_t>(8 * j) * p.K + k)))
                  : make_uint4(0, 0, 0, 0);
  };
  uint4 xn[NT];  // the next chunk's (kPrefetchX)
  if constexpr (kPrefetchX<NT>) load_x(c_begin, xn);
  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

  for (int c = c_begin; c < c_end; c += kRing<NT>) {
#pragma unroll
    for (int u = 0; u < kRing<NT>; ++u) {
      const int cc = c + u;
      if (cc < c_end) {  // uniform over the block
        uint4 xb[NT];
        if constexpr (kPrefetchX<NT>) {
#pragma unroll
          for (int j = 0; j < NT; ++j) xb[j] = xn[j];
          load_x(cc + 1, xn);
        } else {
          load_x(cc, xb);
        }
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          mma_e4m3(acc[j], wlo[u].x, whi[u].x, wlo[u].y, whi[u].y, xb[j].x, xb[j].y);  // step 0
          mma_e4m3(acc[j], wlo[u].z, whi[u].z, wlo[u].w, whi[u].w, xb[j].z, xb[j].w);  // step 1
        }
        load_w(cc + kRing<NT>, wlo[u], whi[u]);
      }
    }
  }

  if (p.slices > 1) {
    // This slice's tile, then the last block of the row block to arrive sums all.
    float4* mine = reinterpret_cast<float4*>(p.partials) + (static_cast<size_t>(rb) * p.slices + slice) * NT * kThreads;
#pragma unroll
    for (int j = 0; j < NT; ++j)
      __stcg(mine + j * kThreads + threadIdx.x, make_float4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]));
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
    const float4* tiles = reinterpret_cast<const float4*>(p.partials) + static_cast<size_t>(rb) * p.slices * NT * kThreads;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      float4 sum = __ldcg(tiles + j * kThreads + threadIdx.x);
      for (int s = 1; s < p.slices; ++s) {
        const float4 v = __ldcg(tiles + (static_cast<size_t>(s) * NT + j) * kThreads + threadIdx.x);
        sum.x += v.x;
        sum.y += v.y;
        sum.z += v.z;
        sum.w += v.w;
      }
      acc[j][0] = sum.x;
      acc[j][1] = sum.y;
      acc[j][2] = sum.z;
      acc[j][3] = sum.w;
    }
  }
  if (!rows_ok) return;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + g + 8 * h;
    const float w = p.sw[row];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int token = 8 * j + 2 * t + e;
        if (token < p.T)
          p.out[static_cast<size_t>(token) * p.N + row] = __float2bfloat16((acc[j][2 * h + e] * w) * p.sx[token]);
      }
  }
}

template <int NT>
int resident_blocks_per_sm() {
  static int blocks = 0;  // the owning thread only (see the header)
  if (blocks == 0) {
    KR_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fp8_small_gemm_kernel<NT>, kThreads, 0));
    blocks = std::max(blocks, 1);
  }
  return blocks;
}

int token_tiles(int T) {
  const int tiles = (T + 7) / 8;
  return tiles <= 1 ? 1 : tiles <= 2 ? 2 : tiles <= 4 ? 4 : 8;
}

template <int NT>
bool launch_nt(const Fp8SmallGemmArgs& a, cudaStream_t stream) {
  const int row_blocks = (a.N + kBlockRows - 1) / kBlockRows;
  const int chunks = (a.K + kChunk - 1) / kChunk;
  const size_t tile_floats = static_cast<size_t>(NT) * kThreads * 4;  // one block's f32 tile
  auto fits = [&](int slices) {
    return slices == 1 || (static_cast<size_t>(row_blocks) * slices * tile_floats <= a.partial_floats &&
                           a.partials != nullptr && a.counters != nullptr && row_blocks <= a.counter_count);
  };
  // The split: whole chunks per slice, no empty slice; the least waves of blocks
  // times a block's time, counted in chunk loads plus 2 for its ramp, reduce and
  // epilogue (each block's bytes in flight are fixed, so a block of a partial last
  // wave is no faster); the fewer slices on a tie (less reduce traffic). On 132 SMs:
  // T <= 32: qkv 5 slices, o_proj and down 8, gate_up 1; T = 64 (one block an SM):
  // qkv 5, o_proj and down 4, gate_up 1.
  int best_slices = 0, best_cps = 0;
  if (a.force_split > 0) {
    best_cps = (chunks + std::min(a.force_split, chunks) - 1) / std::min(a.force_split, chunks);
    best_slices = (chunks + best_cps - 1) / best_cps;
    if (!fits(best_slices)) return false;
  } else {
    const long long resident = static_cast<long long>(resident_blocks_per_sm<NT>()) * std::max(a.num_sms, 1);
    long long best_cost = 0;
    for (int s = 1; s <= std::min(chunks, 64); ++s) {
      const int cps = (chunks + s - 1) / s;
      if ((chunks + cps - 1) / cps != s || !fits(s)) continue;
      const long long waves = (static_cast<long long>(row_blocks) * s + resident - 1) / resident;
      const long long cost = waves * (cps + 2);
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
         dim3(kThreads), 0, stream, p);
  return true;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

bool fp8_small_gemm_supports(const Fp8SmallGemmArgs& a) {
  return a.T >= 1 && a.T <= kFp8SmallMaxTokens && a.N > 0 && a.N % 16 == 0 && a.K > 0 && a.K % 16 == 0 &&
         a.ld_w % 16 == 0 && a.ld_w >= a.K && a.wq != nullptr && a.xq != nullptr && a.sw != nullptr &&
         a.sx != nullptr && a.out != nullptr && aligned16(a.wq) && aligned16(a.xq);
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
