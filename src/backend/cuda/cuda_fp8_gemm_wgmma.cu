// FP8 W8A8 GEMM for 9..64 rows on wgmma (cuda_fp8_gemm_wgmma.h says what it
// computes and why).
//
// wgmma (PTX ISA, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate"):
// wgmma.mma_async.sync.aligned.m64nNk32.f32.e4m3.e4m3 multiplies a 64 x 32 A by a
// 32 x N B (both e4m3, both read from shared memory through 64-bit matrix
// descriptors; e4m3 operands must be K-major) into 64 x N f32 accumulators held by
// the warpgroup's 128 threads. Here A = 64 weight rows (W is [N, K] row-major: rows
// K-major as they lie), B = the tokens (X is [T, K] row-major: K-major too), so D
// is the transposed output tile: D[m, t] = Σ_k W[row0 + m, k] X[t, k].
//
// Shared-memory layout of one operand stage (R rows x 128 bytes of K): the
// "128-byte swizzle" K-major layout. Row r lies at r · 128 bytes; its 16-byte chunk
// c (bytes 16c .. 16c + 15 of the row's 128 K values) at chunk position c ^ (r % 8).
// Groups of 8 rows are 1024 bytes apart (the descriptor's stride byte offset), the
// stage starts 1024-byte aligned (the swizzle is a function of address bits 4-9).
// The descriptor (PTX ISA, "Matrix Descriptor Format"): bits 0-13 start address >> 4,
// 16-29 leading byte offset >> 4 (not used by swizzled K-major layouts whose K
// extent fits the swizzle width; 0), 32-45 stride byte offset >> 4 (1024 >> 4),
// 62-63 the swizzle mode (1: 128 bytes). The four k32 steps of a 128-byte stage
// start 32 bytes apart inside the swizzled rows (as CUTLASS's and DeepGEMM's
// descriptor iterators advance K; ideas, not code).
//
// Accumulators (PTX ISA, "Register fragments for wgmma .m64nNk32", f32 D): warp w
// of the warpgroup holds rows 16w .. 16w + 15; lane (g = lane / 4, t = lane % 4)
// holds d[i], i < N / 2, at row 16w + g + 8 · ((i / 2) % 2), column 8 · (i / 4) +
// 2t + i % 2.
//
// Pipeline: the 256 threads copy both operands of a stage with cp.async.cg (zeros
// past N, T and K) into a ring of ST stages (4 or 8); per
// stage: wait for its group, fence.proxy.async (cp.async writes through the
// generic proxy, wgmma reads through the async proxy), barrier, refill the slot
// read one stage ago, four wgmma, commit, wait for them (the next refill
// overwrites this slot). With 8 stages one wgmma group stays in flight: the
// refill takes the slot read two stages ago, and 6 stages of loads are in flight.
// The weights of the first stages load before griddepcontrol.wait (PDL), the
// activations after.
//
// Split K: the S <= 8 CTAs of a row tile's slices form a thread-block cluster
// (grid x). Each stores its f32 accumulators in its own shared memory (the ring,
// free by then); after a cluster barrier rank r sums its 1/S part of
// the tile's accumulators over the ranks in rank order (distributed shared
// memory; the order is fixed, so the result is bit-identical run to run) and
// writes that part of the output. The S reducers work in parallel (where the last
// CTA of a row tile to arrive sums every slice from global memory, as the small-T
// kernel does, that one CTA's reads end the kernel while the other SMs idle).
// Epilogue: out = bf16((acc · sw[n]) · sx[t]), as the small-T kernel; the kRope
// kernels then finish a q/k/v projection (Fp8QkvRope): a CTA's 128 rows are one
// head, and rank r of the cluster (or the one CTA) takes 1/S of the pairs of
// slots (q, u) and (q, u + 128), which hold the same tokens at dims d and d + 64.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_cluster.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_cp_async.cuh"
#include "backend/cuda/cuda_fp8_gemm_wgmma.h"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_wgmma.cuh"

namespace kr::cuda {

namespace {

constexpr int kWarpgroups = 2;
constexpr int kThreads = kWarpgroups * 128;
constexpr int kTileRows = kWarpgroups * 64;  // weight rows of a CTA
constexpr int kStageK = 128;                 // K bytes (e4m3 values) of a stage: one swizzled row
// Stages of the ring (ST): 4 (24 KB each with 64 tokens, 20 KB with 32, 18 KB with
// 16), two CTAs an SM: 6 stages, 96 KB of weights, in flight an SM; or 8, one CTA
// an SM: 6 stages, 96 KB, in flight while a wgmma group runs. The plan takes 8 when
// its grid has at most one CTA an SM and its clusters fit.
template <int NTOK>
constexpr int kStageBytes = (kTileRows + NTOK) * kStageK;
template <int NTOK, int ST>
constexpr int kSmemBytes = ST * kStageBytes<NTOK> + 1024;  // + alignment slack

struct WgParams {
  const uint8_t* wq;
  const float* sw;
  const uint8_t* xq;
  const float* sx;
  __nv_bfloat16* out;
  int N, K, ld_w, T;
  int stages;            // ceil(K / 128)
  int stages_per_slice;  // of each slice (the grid's x, the cluster)
  Fp8QkvRope rope;       // the kRope kernels' epilogue
};

// D (64 x NTOK f32) += A (64 x 32 e4m3) · B (NTOK x 32 e4m3)^T.
template <int NTOK>
__device__ __forceinline__ void wgmma_e4m3(float (&d)[NTOK / 2], uint64_t da, uint64_t db);

template <>
__device__ __forceinline__ void wgmma_e4m3<64>(float (&d)[32], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "%32, %33, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(1));
}

template <>
__device__ __forceinline__ void wgmma_e4m3<32>(float (&d)[16], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
      "%16, %17, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(da), "l"(db), "r"(1));
}

template <>
__device__ __forceinline__ void wgmma_e4m3<16>(float (&d)[8], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(da), "l"(db), "r"(1));
}

// Byte offset of (row r, 16-byte chunk c) in a 128-byte-swizzled stage.
__device__ __forceinline__ uint32_t sw128_offset(int r, int c) {
  return static_cast<uint32_t>(r * kStageK + ((c ^ (r & 7)) << 4));
}

// The epilogue's scales are loaded before its stores, all of a pass at once: the
// compiler must assume a bf16 store may alias a scale, so a load placed after a
// store waits for it (one L2 round trip per output otherwise).
__device__ __forceinline__ float load_sw(const WgParams& p, int row) { return row < p.N ? p.sw[row] : 0.0f; }
__device__ __forceinline__ float load_sx(const WgParams& p, int token) { return token < p.T ? p.sx[token] : 0.0f; }

// bf16((v · sw) · sx) into out at (token, row), inside N and T; sw = sw[row], sx = sx[token].
__device__ __forceinline__ void store_out(const WgParams& p, int row, int token, float v, float sw, float sx) {
  if (row < p.N && token < p.T) p.out[static_cast<size_t>(token) * p.N + row] = __float2bfloat16((v * sw) * sx);
}

// What rope_out reads besides the sums, loaded for a pass's four outputs at once.
struct RopeIn {
  float sw_a, sw_b, sx;     // sw of rows d and d + 64, sx of the token
  float2 cs;                // (cos, sin) of pair d at the token's position
  __nv_bfloat16 b_a, b_b;   // their biases (0 without)
  int slot;                 // the token's cache slot
};
__device__ __forceinline__ RopeIn load_rope_in(const WgParams& p, int row0, int d, int t) {
  const Fp8QkvRope& r = p.rope;
  RopeIn in;
  const int na = row0 + d, nb = na + kFp8QkvRopeHeadDim / 2, tt = t < p.T ? t : 0;
  in.sw_a = p.sw[na];
  in.sw_b = p.sw[nb];
  in.sx = p.sx[tt];
  in.cs = r.cos_sin[tt * (kFp8QkvRopeHeadDim / 2) + d];
  const __nv_bfloat16 zero = __float2bfloat16(0.0f);
  in.b_a = r.bias != nullptr ? static_cast<const __nv_bfloat16*>(r.bias)[na] : zero;
  in.b_b = r.bias != nullptr ? static_cast<const __nv_bfloat16*>(r.bias)[nb] : zero;
  in.slot = r.slots[tt];
  return in;
}

// Token t's dims d and d + 64 (d < 64) of head blockIdx.y, whose rows start at
// row0, from their f32 sums a and b (Fp8QkvRope): bf16 as store_out rounds them,
// the bias, the rotation of q and k heads, the cache store of k and v heads.
__device__ __forceinline__ void rope_out(const WgParams& p, int row0, int d, int t, float a, float b, const RopeIn& in) {
  if (t >= p.T) return;
  const Fp8QkvRope& r = p.rope;
  const int na = row0 + d, nb = na + kFp8QkvRopeHeadDim / 2;
  __nv_bfloat16 ya = __float2bfloat16((a * in.sw_a) * in.sx);
  __nv_bfloat16 yb = __float2bfloat16((b * in.sw_b) * in.sx);
  if (r.bias != nullptr) {
    ya = add_bias(ya, in.b_a);
    yb = add_bias(yb, in.b_b);
  }
  const int h = row0 / kFp8QkvRopeHeadDim, qk = r.q_heads + r.kv_heads;
  if (h < qk) rope_rotate(__bfloat162float(ya), __bfloat162float(yb), in.cs.x, in.cs.y, &ya, &yb);
  __nv_bfloat16* out = p.out + static_cast<size_t>(t) * p.N;
  out[na] = ya;
  out[nb] = yb;
  if (h < r.q_heads || in.slot < 0) return;
  const bool is_k = h < qk;
  const size_t i = (static_cast<size_t>(in.slot) * r.kv_heads + (h - (is_k ? r.q_heads : qk))) * kFp8QkvRopeHeadDim + d;
  void* cache = is_k ? r.k_cache : r.v_cache;
  const float scale = is_k ? r.k_scale : r.v_scale;
  kv_store(cache, r.kv_fp8, scale, i, ya);
  kv_store(cache, r.kv_fp8, scale, i + kFp8QkvRopeHeadDim / 2, yb);
}

constexpr int kMaxSlices = 8;  // portable cluster size

// CTA (K slice blockIdx.x = its cluster rank, row tile blockIdx.y); NTOK tokens
// (T <= NTOK); ST ring stages; kRope: the RoPE + KV-store epilogue (p.rope).
template <int NTOK, int ST, bool kRope>
__global__ void __launch_bounds__(kThreads, ST <= 4 ? 2 : 1) fp8_wgmma_gemm_kernel(WgParams p) {
  constexpr int kStages = ST;
  constexpr int kARowsPerPass = kThreads / 8;               // 32: rows one pass of the threads copies
  constexpr int kAPasses = kTileRows / kARowsPerPass;        // 4
  constexpr int kBPasses = (NTOK + kARowsPerPass - 1) / kARowsPerPass;  // 1 or 2
  constexpr int kAcc = NTOK / 2;
  pdl_launch_dependents();
  extern __shared__ uint8_t dsmem[];
  const uint32_t raw = smem_u32(dsmem);
  const uint32_t base = (raw + 1023u) & ~1023u;  // 1024-byte aligned: the swizzle follows address bits
  const int tid = static_cast<int>(threadIdx.x);
  const int slice = static_cast<int>(blockIdx.x), slices = static_cast<int>(gridDim.x);
  const int row0 = static_cast<int>(blockIdx.y) * kTileRows;
  const int s_begin = slice * p.stages_per_slice;
  const int nst = max(0, min(p.stages_per_slice, p.stages - s_begin));  // 0: a trailing slice past K

  // This thread's copies: 16-byte chunk c of rows r0 + 32 i (A) and tokens
  // r0 + 32 i (B) of every stage. Their sources, shared-memory offsets and row
  // bounds are fixed for the whole loop (computed once here); a stage adds its K
  // offset and checks K. (Recomputed for every copy, they made the loop bound by its
  // instruction stream at one CTA an SM, 2 warps a scheduler: docs/performance.md.)
  const int c = tid & 7, r0 = tid >> 3;
  const int kc = s_begin * kStageK + 16 * c;  // byte column of this thread's chunk in the slice's first stage
  const uint8_t* a_src[kAPasses];
  uint32_t a_off[kAPasses];
  bool a_ok[kAPasses];
#pragma unroll
  for (int i = 0; i < kAPasses; ++i) {
    const int r = r0 + kARowsPerPass * i, n = row0 + r;
    a_ok[i] = n < p.N;
    a_src[i] = p.wq + static_cast<size_t>(a_ok[i] ? n : 0) * p.ld_w;
    a_off[i] = sw128_offset(r, c);
  }
  const uint8_t* b_src[kBPasses];
  uint32_t b_off[kBPasses];
  bool b_ok[kBPasses];
#pragma unroll
  for (int i = 0; i < kBPasses; ++i) {
    const int r = r0 + kARowsPerPass * i;
    b_ok[i] = r < NTOK && r < p.T;
    b_src[i] = p.xq + static_cast<size_t>(b_ok[i] ? r : 0) * p.K;
    b_off[i] = kTileRows * kStageK + sw128_offset(r, c);
  }
  auto stage_addr = [&](int u) { return base + static_cast<uint32_t>(u * kStageBytes<NTOK>); };
  // Stage j of the slice (K bytes [kc + 128 j, + 16) of each row) into ring slot u.
  // A chunk past K or outside the rows copies zeros (source size 0) from the
  // first byte of its row (or of row 0): an address inside the tensor.
  auto issue_a = [&](int j, int u) {
    const bool k_ok = kc + j * kStageK < p.K;
    const int k_off = k_ok ? kc + j * kStageK : 0;
    const uint32_t dst = stage_addr(u);
#pragma unroll
    for (int i = 0; i < kAPasses; ++i) cp_async16_l2(dst + a_off[i], a_src[i] + k_off, a_ok[i] && k_ok ? 16 : 0);
  };
  auto issue_b = [&](int j, int u) {
    const bool k_ok = kc + j * kStageK < p.K;
    const int k_off = k_ok ? kc + j * kStageK : 0;
    const uint32_t dst = stage_addr(u);
#pragma unroll
    for (int i = 0; i < kBPasses; ++i)
      if (kARowsPerPass * i + r0 < NTOK) cp_async16_l2(dst + b_off[i], b_src[i] + k_off, b_ok[i] && k_ok ? 16 : 0);
  };

  // With the 8-stage ring one stage's wgmma group stays in flight while the next
  // stage is waited for (the refill then takes the slot read two stages ago:
  // ST - 2 stages of loads in flight); with 4 stages each group is waited for at
  // once (3 in flight).
  constexpr int kWgInFlight = kStages >= 8 ? 1 : 0;
  constexpr int kAhead = kStages - 1 - kWgInFlight;  // stages of loads in flight

  // The weights (no kernel writes them) of the first stages before waiting on the
  // kernel before; then the activations, one commit group per stage (the weights
  // join stage 0's group).
#pragma unroll
  for (int u = 0; u < kAhead; ++u)
    if (u < nst) issue_a(u, u);
  pdl_wait();
#pragma unroll
  for (int u = 0; u < kAhead; ++u) {
    if (u < nst) issue_b(u, u);
    cp_async_commit();
  }

  float acc[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) acc[i] = 0.0f;
  const int wg = tid >> 7;  // this warpgroup's 64 rows of the tile
  // Descriptors of ring slot 0 (this warpgroup's A rows, the B tokens); slot u and
  // k32 step k add (u * stage bytes + 32 k) >> 4 to the address field (bits 0-13:
  // every shared address here is below 2^18, so the sum does not carry out).
  const uint64_t da0 = sw128_desc(stage_addr(0) + static_cast<uint32_t>(wg * 64 * kStageK));
  const uint64_t db0 = sw128_desc(stage_addr(0) + kTileRows * kStageK);
  for (int i = 0; i < nst; ++i) {
    cp_async_wait<kAhead - 1>();  // this thread's copies of stage i have landed
    fence_proxy_async();
    __syncthreads();  // every thread's: stage i complete; stage i - 1 - kWgInFlight's wgmma done
    const int j = i + kAhead;
    if (j < nst) {
      issue_a(j, j % kStages);
      issue_b(j, j % kStages);
    }
    cp_async_commit();
    const uint64_t slot = static_cast<uint64_t>(((i % kStages) * kStageBytes<NTOK>) >> 4);
    fence_regs(acc);
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < kStageK / 32; ++k) wgmma_e4m3<NTOK>(acc, da0 + slot + 2 * k, db0 + slot + 2 * k);
    wgmma_commit();
    wgmma_wait<kWgInFlight>();
    fence_regs(acc);
  }
  wgmma_wait<0>();
  fence_regs(acc);
  cp_async_wait<0>();

  const int warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
  if (!kRope && slices == 1) {
    // Row 16 w + g + 8 h of this warpgroup's 64, token 8 (i / 4) + 2 t + i % 2:
    // two rows' and kAcc / 2 tokens' scales, loaded before the first store.
    const int row = row0 + wg * 64 + 16 * warp + g;
    const float sw[2] = {load_sw(p, row), load_sw(p, row + 8)};
    float sx[kAcc / 2];
#pragma unroll
    for (int j = 0; j < kAcc / 2; ++j) sx[j] = load_sx(p, 8 * (j >> 1) + 2 * t + (j & 1));
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int h = (i >> 1) & 1, j = 2 * (i >> 2) + (i & 1);
      store_out(p, row + 8 * h, 8 * (i >> 2) + 2 * t + (i & 1), acc[i], sw[h], sx[j]);
    }
    return;
  }
  // The accumulators as float4 slots red[q][tid] (q < kAcc / 4) in this CTA's
  // shared memory, once no wgmma of either warpgroup reads the ring.
  constexpr int kQuads = kAcc / 4;
  constexpr int kSlots = kQuads * kThreads;
  float4* red = reinterpret_cast<float4*>(dsmem + (base - raw));
  __syncthreads();
#pragma unroll
  for (int q = 0; q < kQuads; ++q) red[q * kThreads + tid] = make_float4(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3]);
  if (slices > 1) {
    cluster_arrive_release();
    cluster_wait_acquire();  // every rank's slots are in its shared memory
  } else {
    __syncthreads();  // (kRope with one slice: the pairs span both warpgroups)
  }
  uint32_t remote[kMaxSlices];
#pragma unroll
  for (int r = 0; r < kMaxSlices; ++r) remote[r] = r < slices && slices > 1 ? cluster_smem_addr(red, r) : 0u;
  // Slot e summed over the ranks in rank order.
  auto slot_sum = [&](int e) {
    if (slices == 1) return red[e];
    float4 v[kMaxSlices];  // every rank's slot requested before the sum (DSMEM latency)
#pragma unroll
    for (int r = 0; r < kMaxSlices; ++r)
      if (r < slices) v[r] = ld_cluster_f32x4(remote[r] + 16u * static_cast<uint32_t>(e));
    float4 sum = v[0];
#pragma unroll
    for (int r = 1; r < kMaxSlices; ++r)
      if (r < slices) {
        sum.x += v[r].x;
        sum.y += v[r].y;
        sum.z += v[r].z;
        sum.w += v[r].w;
      }
    return sum;
  };
  if constexpr (kRope) {
    // Pair e = (q, u < 128): slots (q, u) and (q, u + 128), u's rows d, d + 8 of
    // warpgroup 0 (dims d, d + 8 of the head) and its twin's rows d + 64, d + 72,
    // tokens 8q + 2t', +1 (t', g', warp' of u). Rank `slice` takes pairs [e0, e1).
    constexpr int kPairs = kSlots / 2;
    const int per = (kPairs + slices - 1) / slices, e0 = slice * per, e1 = min(kPairs, e0 + per);
    for (int e = e0 + tid; e < e1; e += kThreads) {
      const int q = e >> 7, u = e & 127, lo = q * kThreads + u;
      const int ul = u & 31, d = 16 * (u >> 5) + (ul >> 2), token = 8 * q + 2 * (ul & 3);
      const RopeIn i00 = load_rope_in(p, row0, d, token), i01 = load_rope_in(p, row0, d, token + 1);
      const RopeIn i10 = load_rope_in(p, row0, d + 8, token), i11 = load_rope_in(p, row0, d + 8, token + 1);
      const float4 a = slot_sum(lo), b = slot_sum(lo + 128);
      rope_out(p, row0, d, token, a.x, b.x, i00);
      rope_out(p, row0, d, token + 1, a.y, b.y, i01);
      rope_out(p, row0, d + 8, token, a.z, b.z, i10);
      rope_out(p, row0, d + 8, token + 1, a.w, b.w, i11);
    }
  } else {
    // Rank `slice` sums slots [e0, e1) over the ranks in rank order and stores them.
    const int per = (kSlots + slices - 1) / slices, e0 = slice * per, e1 = min(kSlots, e0 + per);
    for (int e = e0 + tid; e < e1; e += kThreads) {
      // Slot (q, thread u): u's accumulators 4q .. 4q + 3, rows +0, +0, +8, +8 and
      // tokens 8q + 2t', +1, +0, +1 (t', g', warp', warpgroup' of u).
      const int q = e / kThreads, u = e % kThreads;
      const int ul = u & 31, row = row0 + (u >> 7) * 64 + 16 * ((u >> 5) & 3) + (ul >> 2), token = 8 * q + 2 * (ul & 3);
      const float sw0 = load_sw(p, row), sw8 = load_sw(p, row + 8), sx0 = load_sx(p, token), sx1 = load_sx(p, token + 1);
      const float4 sum = slot_sum(e);
      store_out(p, row, token, sum.x, sw0, sx0);
      store_out(p, row, token + 1, sum.y, sw0, sx1);
      store_out(p, row + 8, token, sum.z, sw8, sx0);
      store_out(p, row + 8, token + 1, sum.w, sw8, sx1);
    }
  }
  if (slices > 1) {
    cluster_arrive_release();
    cluster_wait_acquire();  // no rank reads another's shared memory after this
  }
}

// How many clusters of S CTAs (S = 1 .. kMaxSlices) the GPU holds at once
// (cudaOccupancyMaxActiveClusters; 0 where the query fails), queried once a process.
template <int NTOK, int ST>
const int* max_active_clusters() {
  static int clusters[kMaxSlices + 1] = {};  // the owning thread only (see the header)
  static bool queried = false;
  if (!queried) {
    // The kRope kernel has the same threads, bounds and shared memory: the same occupancy.
    auto* kernel = fp8_wgmma_gemm_kernel<NTOK, ST, false>;
    KR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes<NTOK, ST>));
    KR_CUDA_CHECK(cudaFuncSetAttribute(fp8_wgmma_gemm_kernel<NTOK, ST, true>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes<NTOK, ST>));
    query_max_active_clusters(kernel, kThreads, kSmemBytes<NTOK, ST>, kMaxSlices, clusters);
    queried = true;
  }
  return clusters;
}

// The launch of one GEMM: ring stages, K slices (the cluster) and stages per slice.
struct WgPlan {
  int ring = 0, slices = 0, stages_per_slice = 0;
};

template <int NTOK>
WgPlan plan_ntok(const Fp8SmallGemmArgs& a) {
  const int tiles = (a.N + kTileRows - 1) / kTileRows;
  const int stages = (a.K + kStageK - 1) / kStageK;
  // The split S (a cluster of S CTAs per row tile): whole stages per slice, no
  // empty slice; the least waves of clusters (as many as the GPU holds at once)
  // times a CTA's time: its stage loads plus 2 for its ramp and epilogue, doubled
  // where two CTAs share an SM (and its bandwidth); the fewer slices on a tie. Then
  // the deeper ring where the grid has at most one CTA an SM and its clusters fit
  // at once. (The per-shape timings this rule follows: docs/performance.md,
  // kr-cuda-bench --fp8-gemm-bench --fp8-gemm-split S.)
  const int* clusters = max_active_clusters<NTOK, 4>();
  const int* deep = max_active_clusters<NTOK, 8>();
  WgPlan best;
  if (a.force_split > 0) {
    best.slices = std::min({a.force_split, kMaxSlices, stages});
    best.stages_per_slice = (stages + best.slices - 1) / best.slices;  // a trailing slice may be empty
    if (clusters[best.slices] == 0) return WgPlan{};
  } else {
    long long best_cost = 0;
    for (int s = 1; s <= std::min(kMaxSlices, stages); ++s) {
      const int sps = (stages + s - 1) / s;
      if ((stages + sps - 1) / sps != s || clusters[s] == 0) continue;
      const long long waves = (tiles + clusters[s] - 1) / clusters[s];
      const int sharing = static_cast<long long>(tiles) * s > std::max(a.num_sms, 1) ? 2 : 1;
      const long long cost = waves * (sps + 2) * sharing;
      if (best.slices == 0 || cost < best_cost) {
        best.slices = s;
        best.stages_per_slice = sps;
        best_cost = cost;
      }
    }
    if (best.slices == 0) return WgPlan{};
  }
  auto deep_fits = [&](int s) {
    return static_cast<long long>(tiles) * s <= std::max(a.num_sms, 1) && deep[s] >= tiles;
  };
  best.ring = deep_fits(best.slices) ? 8 : 4;
  // One slice fewer where its clusters fit the 8-stage ring and the chosen split's
  // do not: at 16-64 tokens the deeper ring beat the extra slice for o_proj and
  // down of the 8B shape (forced splits, docs/performance.md).
  const int fewer = best.slices - 1;
  if (a.force_split == 0 && best.ring == 4 && fewer >= 1 && deep_fits(fewer)) {
    const int sps = (stages + fewer - 1) / fewer;
    if ((stages + sps - 1) / sps == fewer) {
      best.slices = fewer;
      best.stages_per_slice = sps;
      best.ring = 8;
    }
  }
  return best;
}

template <int NTOK>
bool launch_ntok(const Fp8SmallGemmArgs& a, cudaStream_t stream, const Fp8QkvRope* rope) {
  const WgPlan plan = plan_ntok<NTOK>(a);
  if (plan.slices == 0) return false;
  const int tiles = (a.N + kTileRows - 1) / kTileRows;
  WgParams p{};
  p.wq = static_cast<const uint8_t*>(a.wq);
  p.sw = a.sw;
  p.xq = static_cast<const uint8_t*>(a.xq);
  p.sx = a.sx;
  p.out = static_cast<__nv_bfloat16*>(a.out);
  p.N = a.N;
  p.K = a.K;
  p.ld_w = a.ld_w;
  p.T = a.T;
  p.stages = (a.K + kStageK - 1) / kStageK;
  p.stages_per_slice = plan.stages_per_slice;
  if (rope != nullptr) p.rope = *rope;
  const dim3 grid(static_cast<unsigned>(plan.slices), static_cast<unsigned>(tiles));
  auto* kernel = plan.ring == 8 ? (rope != nullptr ? fp8_wgmma_gemm_kernel<NTOK, 8, true> : fp8_wgmma_gemm_kernel<NTOK, 8, false>)
                                : (rope != nullptr ? fp8_wgmma_gemm_kernel<NTOK, 4, true> : fp8_wgmma_gemm_kernel<NTOK, 4, false>);
  const size_t smem = plan.ring == 8 ? kSmemBytes<NTOK, 8> : kSmemBytes<NTOK, 4>;
  launch_cluster_x(a.pdl, plan.slices, kernel, grid, dim3(kThreads), smem, stream, p);
  return true;
}

WgPlan plan_for(const Fp8SmallGemmArgs& a) {
  return a.T <= 16 ? plan_ntok<16>(a) : a.T <= 32 ? plan_ntok<32>(a) : plan_ntok<64>(a);
}

}  // namespace

bool fp8_wgmma_gemm_supports(const Fp8SmallGemmArgs& a) {
  return a.T >= 1 && a.T <= kFp8WgmmaMaxTokens && fp8_small_gemm_supports(a);
}

void prepare_fp8_wgmma_gemm() {
  max_active_clusters<16, 4>();
  max_active_clusters<32, 4>();
  max_active_clusters<64, 4>();
  max_active_clusters<16, 8>();
  max_active_clusters<32, 8>();
  max_active_clusters<64, 8>();
}

std::string fp8_wgmma_gemm_plan(const Fp8SmallGemmArgs& a) {
  if (a.T < 1 || a.T > kFp8WgmmaMaxTokens || !fp8_gemm_shape_ok(a)) return "not taken";
  const WgPlan p = plan_for(a);
  if (p.slices == 0) return "no plan";
  return std::to_string(p.slices) + " slices x " + std::to_string(p.stages_per_slice) + " stages, ring " +
         std::to_string(p.ring);
}

bool fp8_wgmma_gemm_takes(const Fp8SmallGemmArgs& a, const Fp8QkvRope* rope) {
  if (!fp8_wgmma_gemm_supports(a) || plan_for(a).slices == 0) return false;
  if (rope == nullptr) return true;
  return rope->q_heads > 0 && rope->kv_heads > 0 &&
         a.N == (rope->q_heads + 2 * rope->kv_heads) * kFp8QkvRopeHeadDim && rope->cos_sin != nullptr &&
         rope->slots != nullptr && rope->k_cache != nullptr && rope->v_cache != nullptr && rope->k_scale > 0.0f &&
         rope->v_scale > 0.0f;
}

bool launch_fp8_wgmma_gemm(const Fp8SmallGemmArgs& a, cudaStream_t stream, const Fp8QkvRope* rope) {
  if (!fp8_wgmma_gemm_takes(a, rope)) return false;
  if (a.T <= 16) return launch_ntok<16>(a, stream, rope);
  return a.T <= 32 ? launch_ntok<32>(a, stream, rope) : launch_ntok<64>(a, stream, rope);
}

}  // namespace kr::cuda
