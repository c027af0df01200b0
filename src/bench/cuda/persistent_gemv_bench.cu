// kr-cuda-bench --persistent-gemv-bench: persistent_gemv_bench.h.
#include "bench/cuda/persistent_gemv_bench.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "bench/cuda/cooperative_launch.cuh"

namespace kr {
namespace {

constexpr int kConsumerWarps = 16;
constexpr int kConsumers = kConsumerWarps * 32;
constexpr int kThreads = kConsumers + 32;  // + the producer warp
constexpr int kGroup = 128;                // columns a scale
constexpr int kMaxK = 8192;
constexpr int kRingBytes = 48 * 4224;      // the weight ring: 48 slots of one 8,192-column row, or fewer larger
constexpr int kMaxSlots = 48;
constexpr int kStagesPerLayer = 4;
constexpr int kTimedSteps = 5;

// One matrix of the chain: out [N] = W [N, K] · x, x from `in` (below).
struct Stage {
  const uint8_t* w = nullptr;  // [N][row_bytes]: K / 2 bytes of codes (8 a word, low nibble first), K / 128 f16 scales
  const float* in = nullptr;   // [K], or [2 K] with glu
  float* out = nullptr;        // [N]
  int N = 0, K = 0, row_bytes = 0;
  int glu = 0;   // x[i] = silu(in[i]) * in[K + i]
  int norm = 0;  // x = in / rms(in) (unit weights, eps 1e-6)
};

// The ring's cut: `slots` slots of `slot_bytes` (a multiple of 16 holding one row of
// the widest matrix), each a whole number of rows of the matrix it holds.
struct Ring {
  int slot_bytes = 4224;
  int slots = kMaxSlots;
  bool lsu = false;   // the producer warp's 32 lanes copy each slot by cp.async (16 bytes a lane a turn),
                      // each lane arriving on the slot's barrier when its copies land; else bulk copies
  int ctas_per_sm = 1;
};

// Shared memory of a launch: the ring, then x, the warps' sums and the barriers.
size_t smem_bytes(const Ring& cut) {
  return static_cast<size_t>(cut.slots) * cut.slot_bytes + kMaxK * sizeof(__half) + kConsumerWarps * sizeof(float) +
         2 * kMaxSlots * sizeof(uint64_t);
}

__host__ __device__ inline int row_begin(int N, int cta, int ctas) {
  return static_cast<int>(static_cast<long long>(N) * cta / ctas);
}

__device__ inline uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
__device__ inline void mbar_init(uint64_t* b, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
__device__ inline void mbar_expect_tx(uint64_t* b, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
}
__device__ inline void mbar_arrive(uint64_t* b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}
// Returns once the phase of parity `parity` has completed.
__device__ inline void mbar_wait(uint64_t* b, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(smem_u32(b)), "r"(parity)
        : "memory");
  } while (done == 0);
}
__device__ inline void bulk_to_smem(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   smem_u32(dst)),
               "l"(src), "r"(bytes), "r"(smem_u32(bar))
               : "memory");
}
__device__ inline void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_u32(dst)), "l"(src) : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
// Arrives on `b` once this thread's cp.async copies so far have landed (the barrier's
// expected count covers it: .noinc).
__device__ inline void cp_async_arrive(uint64_t* b) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_u32(b)) : "memory");
}
__device__ inline int ld_acquire(const int* p) {
  int v;
  asm volatile("ld.acquire.gpu.global.s32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ inline void red_release_add(int* p, int v) {
  asm volatile("red.release.gpu.global.add.s32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
// The consumer warps' barrier (the producer warp is not in it).
__device__ inline void consumers_sync() { asm volatile("bar.sync 1, %0;" ::"n"(kConsumers) : "memory"); }

// After a matrix: once every consumer thread of this CTA has written its rows, one
// thread publishes them (release) by adding 1 to the matrix's counter.
__device__ inline void signal_matrix_done(int* done, int s) {
  consumers_sync();
  if (threadIdx.x == 0) {
    __threadfence();
    red_release_add(&done[s], 1);
  }
}

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// x of stage `st` into xs as f16, each word's 8 columns in the order (0, 4), (1, 5),
// (2, 6), (3, 7) (the pairs dot_chunks unpacks), word i of chunk q (words 4 q .. 4 q + 3)
// at 16-byte slot i (K / 32) + q, so that a warp's lanes read consecutive slots. Called by the kConsumers threads;
// ends with consumers_sync. `red`: kConsumerWarps floats.
__device__ void load_x(const Stage& st, __half* xs, float* red) {
  const int tid = threadIdx.x, K = st.K;
  float v[kMaxK / kConsumers];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxK / kConsumers; ++j) {
    const int i = tid + j * kConsumers;
    v[j] = 0.0f;
    if (i < K) {
      float a = __ldcg(st.in + i);
      if (st.glu) a = a / (1.0f + __expf(-a)) * __ldcg(st.in + K + i);
      v[j] = a;
      ss += a * a;
    }
  }
  float inv = 1.0f;
  if (st.norm) {
    ss = warp_sum(ss);
    if ((tid & 31) == 0) red[tid >> 5] = ss;
    consumers_sync();
    float total = 0.0f;
    for (int w = 0; w < kConsumerWarps; ++w) total += red[w];
    inv = rsqrtf(total / static_cast<float>(K) + 1e-6f);
  }
#pragma unroll
  for (int j = 0; j < kMaxK / kConsumers; ++j) {
    const int i = tid + j * kConsumers;
    if (i < K) {
      const int word = i / 8, e = i % 8;
      const int slot16 = (word % 4) * (K / 32) + word / 4;
      xs[slot16 * 8 + (e % 4) * 2 + e / 4] = __float2half_rn(v[j] * inv);
    }
  }
  consumers_sync();
}

// A row's share of one lane: chunks c = 0 .. K / 1024 - 1, chunk c the 16 bytes of
// codes at word 4 (lane + 32 c) (32 columns, in one scale group) and that group's
// scale. kStream: from global memory past L1 (__ldcs); else plain loads (shared).
constexpr int kMaxChunks = kMaxK / 1024;  // 3 (K = 3,072) or 8 (8,192) a lane
template <bool kStream>
__device__ inline void load_chunks(const uint8_t* row, int K, uint4 (&w)[kMaxChunks], __half (&sc)[kMaxChunks]) {
  const int lane = threadIdx.x & 31;
  const uint4* cw = reinterpret_cast<const uint4*>(row);
  const __half* scales = reinterpret_cast<const __half*>(row + K / 2);
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    if (c < K / 1024) {
      if constexpr (kStream) {
        w[c] = __ldcs(cw + lane + 32 * c);
      } else {
        w[c] = cw[lane + 32 * c];
      }
      sc[c] = scales[(lane + 32 * c) / (kGroup / 32)];
    }
  }
}

// One row: Σ_k (code_k - 8) · scale_{k / 128} · x_k from the lanes' chunks, by one
// warp (f16 products of a word, f32 across words and chunks; a fixed order).
__device__ inline float dot_chunks(const uint4 (&w)[kMaxChunks], const __half (&sc)[kMaxChunks], const __half* xs,
                                   int K) {
  const int lane = threadIdx.x & 31;
  const uint4* x4 = reinterpret_cast<const uint4*>(xs);
  const __half2 bias = __floats2half2_rn(1032.0f, 1032.0f);  // 1024 (the magic's exponent) + 8
  float acc = 0.0f;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    if (c < K / 1024) {
      const uint32_t words[4] = {w[c].x, w[c].y, w[c].z, w[c].w};
      float chunk = 0.0f;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        uint4 xv = x4[i * (K / 32) + lane + 32 * c];
        const __half2* xp = reinterpret_cast<const __half2*>(&xv);
        __half2 h = __floats2half2_rn(0.0f, 0.0f);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const uint32_t bits = ((words[i] >> (4 * k)) & 0x000F000Fu) | 0x64006400u;  // f16 1024 + code: k, k + 4
          __half2 q;
          std::memcpy(&q, &bits, 4);
          h = __hfma2(__hsub2(q, bias), xp[k], h);
        }
        const float2 f = __half22float2(h);
        chunk += f.x + f.y;
      }
      acc = fmaf(__half2float(sc[c]), chunk, acc);
    }
  }
  return warp_sum(acc);
}

// One row read through a pointer (the ring's shared memory, or global memory).
template <bool kStream>
__device__ float row_dot(const uint8_t* row, const __half* xs, int K) {
  uint4 w[kMaxChunks];
  __half sc[kMaxChunks];
  load_chunks<kStream>(row, K, w, sc);
  return dot_chunks(w, sc, xs, K);
}

// Timing-only modes of the persistent kernel (their outputs are not checked).
enum Mode : int {
  kFull = 0,        // the chain as described
  kNoMath = 1,      // rows not computed (0 written): weight streaming and the grid barriers alone
  kNoBarrier = 2,   // no wait for the previous matrix (reads whatever is there): streaming and math alone
  kStreamOnly = 3,  // neither barriers nor math: the weight streaming with the input loads
  kRingOnly = 4,    // kStreamOnly without loading x: the ring's producer and releases alone
};

// kMinBlocks: CTAs an SM the registers must allow (ctas_per_sm).
template <int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    persistent_gemv_kernel(const Stage* stages, int num_stages, int* done, int mode, const Ring ring_cut) {
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* ring = smem;
  const int slots = ring_cut.slots, slot_bytes = ring_cut.slot_bytes;
  __half* xs = reinterpret_cast<__half*>(smem + static_cast<size_t>(slots) * slot_bytes);
  float* red = reinterpret_cast<float*>(xs + kMaxK);
  uint64_t* full = reinterpret_cast<uint64_t*>(red + kConsumerWarps);
  uint64_t* empty = full + kMaxSlots;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int cta = blockIdx.x, ctas = gridDim.x;
  if (threadIdx.x == 0)
    for (int i = 0; i < slots; ++i) {
      mbar_init(&full[i], ring_cut.lsu ? 32 : 1);
      mbar_init(&empty[i], 1);
    }
  __syncthreads();

  if (warp == kConsumerWarps) {  // the producer: every stage's rows of this CTA, in order
    if (!ring_cut.lsu && lane != 0) return;
    int slot = 0;         // the ring position of the next copy (no division in the loop)
    uint32_t phase = 0;   // its turn's parity
    for (int s = 0; s < num_stages; ++s) {
      // The stage in registers (the asm's memory clobbers would reload a reference's
      // fields from global memory every slot), the source advanced by addition.
      const Stage st = stages[s];
      const int r0 = row_begin(st.N, cta, ctas), r1 = row_begin(st.N, cta + 1, ctas);
      const int rps = slot_bytes / st.row_bytes;
      const int slot_copy = rps * st.row_bytes;
      const uint8_t* src = st.w + static_cast<size_t>(r0) * st.row_bytes;
      for (int r = r0; r < r1; r += rps, src += slot_copy) {
        mbar_wait(&empty[slot], phase ^ 1u);
        const int bytes = r1 - r >= rps ? slot_copy : (r1 - r) * st.row_bytes;
        uint8_t* dst = ring + static_cast<size_t>(slot) * slot_bytes;
        if (ring_cut.lsu) {
          for (int b = 16 * lane; b < bytes; b += 16 * 32) cp_async16(dst + b, src + b);
          cp_async_arrive(&full[slot]);
        } else {
          mbar_expect_tx(&full[slot], static_cast<uint32_t>(bytes));
          bulk_to_smem(dst, src, static_cast<uint32_t>(bytes), &full[slot]);
        }
        if (++slot == slots) {
          slot = 0;
          phase ^= 1u;
        }
      }
    }
    return;
  }

  int base_slot = 0;        // the ring position of the stage's first slot
  uint32_t base_phase = 0;  // its turn's parity
  for (int s = 0; s < num_stages; ++s) {
    const Stage st = stages[s];
    if (s > 0 && mode != kNoBarrier && mode != kStreamOnly) {  // the previous matrix's outputs, from every CTA
      if (threadIdx.x == 0)
        while (ld_acquire(&done[s - 1]) < ctas) {
        }
      consumers_sync();
    }
    if (mode != kRingOnly) load_x(st, xs, red);
    const int r0 = row_begin(st.N, cta, ctas), r1 = row_begin(st.N, cta + 1, ctas);
    const int rps = slot_bytes / st.row_bytes;
    const int nslots = (r1 - r0 + rps - 1) / rps;
    // This warp's slots j = warp, warp + kConsumerWarps, ... (slots >= kConsumerWarps:
    // at most one turn ahead).
    int slot = base_slot + warp;
    uint32_t phase = base_phase;
    if (slot >= slots) {
      slot -= slots;
      phase ^= 1u;
    }
    for (int j = warp; j < nslots; j += kConsumerWarps) {
      mbar_wait(&full[slot], phase);
      const uint8_t* base = ring + static_cast<size_t>(slot) * slot_bytes;
      for (int rr = 0; rr < rps; ++rr) {
        const int row = r0 + j * rps + rr;
        if (row >= r1) break;
        const float y = mode == kNoMath || mode == kStreamOnly || mode == kRingOnly
                            ? 0.0f
                            : row_dot<false>(base + static_cast<size_t>(rr) * st.row_bytes, xs, st.K);
        if (lane == 0) st.out[row] = y;
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(&empty[slot]);
      slot += kConsumerWarps;
      if (slot >= slots) {
        slot -= slots;
        phase ^= 1u;
      }
    }
    const int next = base_slot + nslots;
    base_phase ^= static_cast<uint32_t>(next / slots) & 1u;
    base_slot = next % slots;
    signal_matrix_done(done, s);
  }
}

// The reference: one stage, the same x and row arithmetic, weights from global memory.
__global__ void __launch_bounds__(kConsumers) per_matrix_gemv_kernel(const Stage* stages, int s) {
  __shared__ __align__(16) __half xs[kMaxK];
  __shared__ float red[kConsumerWarps];
  const Stage st = stages[s];
  load_x(st, xs, red);
  const int warp = threadIdx.x >> 5;
  const int r0 = row_begin(st.N, blockIdx.x, gridDim.x), r1 = row_begin(st.N, blockIdx.x + 1, gridDim.x);
  for (int row = r0 + warp; row < r1; row += kConsumerWarps) {
    const float y = row_dot<true>(st.w + static_cast<size_t>(row) * st.row_bytes, xs, st.K);
    if ((threadIdx.x & 31) == 0) st.out[row] = y;
  }
}

// The persistent chain without a ring: one CTA an SM of 16 warps, warp w taking the
// CTA's rows w, w + 16, ... of each matrix, each lane loading its chunks of a row
// straight into registers (__ldcs), two rows in flight a warp; the first two rows of
// a matrix are requested before the wait for the previous matrix (weights depend on
// nothing), so they stream during the barrier and the input load. Modes as the ring
// kernel's kFull / kNoMath / kNoBarrier.
__global__ void __launch_bounds__(kConsumers, 1)
    persistent_regs_kernel(const Stage* stages, int num_stages, int* done, int mode) {
  __shared__ __align__(16) __half xs[kMaxK];
  __shared__ float red[kConsumerWarps];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int cta = blockIdx.x, ctas = gridDim.x;
  uint4 wa[kMaxChunks], wb[kMaxChunks];
  __half sa[kMaxChunks], sb[kMaxChunks];
  for (int s = 0; s < num_stages; ++s) {
    const Stage st = stages[s];
    const int r0 = row_begin(st.N, cta, ctas), r1 = row_begin(st.N, cta + 1, ctas);
    const uint8_t* w0 = st.w + static_cast<size_t>(r0) * st.row_bytes;
    int row = r0 + warp;
    if (row < r1) load_chunks<true>(w0 + static_cast<size_t>(warp) * st.row_bytes, st.K, wa, sa);
    if (row + kConsumerWarps < r1)
      load_chunks<true>(w0 + static_cast<size_t>(warp + kConsumerWarps) * st.row_bytes, st.K, wb, sb);
    if (s > 0 && mode != kNoBarrier) {
      if (threadIdx.x == 0)
        while (ld_acquire(&done[s - 1]) < ctas) {
        }
      consumers_sync();
    }
    load_x(st, xs, red);
    // Rows in pairs: a's, then b's, each refilled two rows on once used.
    for (; row < r1; row += 2 * kConsumerWarps) {
      float y = mode == kNoMath ? 0.0f : dot_chunks(wa, sa, xs, st.K);
      if (lane == 0) st.out[row] = y;
      if (row + 2 * kConsumerWarps < r1)
        load_chunks<true>(st.w + static_cast<size_t>(row + 2 * kConsumerWarps) * st.row_bytes, st.K, wa, sa);
      if (row + kConsumerWarps < r1) {
        y = mode == kNoMath ? 0.0f : dot_chunks(wb, sb, xs, st.K);
        if (lane == 0) st.out[row + kConsumerWarps] = y;
        if (row + 3 * kConsumerWarps < r1)
          load_chunks<true>(st.w + static_cast<size_t>(row + 3 * kConsumerWarps) * st.row_bytes, st.K, wb, sb);
      }
    }
    signal_matrix_done(done, s);
  }
}

// The third persistent form: a ring a warp. Warp w owns kWarpSlots slots of
// shared memory and the CTA's row slots j = w, w + 16, ... of each matrix (a slot:
// one row of 8,192 columns, two of 3,072), copied by its 32 lanes with cp.async, one
// commit group a slot, kWarpSlots groups always committed (empty ones past the end).
// A matrix's first kWarpSlots slots are requested before the wait for the previous
// matrix: up to 203 KB an SM, all of gate_up's share. No barrier inside the ring:
// each warp waits for its own oldest group. Modes as persistent_regs_kernel's.
constexpr int kWarpSlots = 3;
constexpr int kWarpSlotBytes = 4224;
constexpr size_t kWarpRingSmem =
    static_cast<size_t>(kConsumerWarps) * kWarpSlots * kWarpSlotBytes + kMaxK * sizeof(__half) +
    kConsumerWarps * sizeof(float);

__global__ void __launch_bounds__(kConsumers, 1)
    persistent_warp_ring_kernel(const Stage* stages, int num_stages, int* done, int mode) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int cta = blockIdx.x, ctas = gridDim.x;
  uint8_t* ring = smem + static_cast<size_t>(warp) * kWarpSlots * kWarpSlotBytes;
  __half* xs = reinterpret_cast<__half*>(smem + static_cast<size_t>(kConsumerWarps) * kWarpSlots * kWarpSlotBytes);
  float* red = reinterpret_cast<float*>(xs + kMaxK);
  for (int s = 0; s < num_stages; ++s) {
    const Stage st = stages[s];
    const int r0 = row_begin(st.N, cta, ctas), r1 = row_begin(st.N, cta + 1, ctas);
    const int rps = kWarpSlotBytes / st.row_bytes;
    const int nslots = (r1 - r0 + rps - 1) / rps;
    const int mine = nslots > warp ? (nslots - warp + kConsumerWarps - 1) / kConsumerWarps : 0;
    // My slot u: the CTA's slot j = warp + 16 u, rows [r0 + rps j, min(r1, r0 + rps (j + 1))).
    auto issue = [&](int u) {
      if (u < mine) {
        const int row = r0 + rps * (warp + kConsumerWarps * u);
        const int bytes = min(rps, r1 - row) * st.row_bytes;
        uint8_t* dst = ring + (u % kWarpSlots) * kWarpSlotBytes;
        const uint8_t* src = st.w + static_cast<size_t>(row) * st.row_bytes;
        for (int b = 16 * lane; b < bytes; b += 16 * 32) cp_async16(dst + b, src + b);
      }
      cp_async_commit();
    };
#pragma unroll
    for (int u = 0; u < kWarpSlots; ++u) issue(u);
    if (s > 0 && mode != kNoBarrier) {
      if (threadIdx.x == 0)
        while (ld_acquire(&done[s - 1]) < ctas) {
        }
      consumers_sync();
    }
    load_x(st, xs, red);
    for (int u = 0; u < mine; ++u) {
      cp_async_wait<kWarpSlots - 1>();  // slot u (this lane's copies)
      __syncwarp();                     // and every lane's
      const uint8_t* base = ring + (u % kWarpSlots) * kWarpSlotBytes;
      const int row0 = r0 + rps * (warp + kConsumerWarps * u);
      for (int rr = 0; rr < rps && row0 + rr < r1; ++rr) {
        const float y =
            mode == kNoMath ? 0.0f : row_dot<false>(base + static_cast<size_t>(rr) * st.row_bytes, xs, st.K);
        if (lane == 0) st.out[row0 + rr] = y;
      }
      __syncwarp();  // every lane has read the slot before it is refilled
      issue(u + kWarpSlots);
    }
    signal_matrix_done(done, s);
  }
  cp_async_wait<0>();
}

// The bytes-only floor: every 16-byte word of the weights of stages [s0, s1) read
// once, one stage after another with no wait between them (grid-strided, 4 loads
// in flight a thread), XOR-folded into one word a block so that no load is dropped.
// One launch a stage: one kernel a matrix; one launch for all: the HBM's own rate.
__global__ void __launch_bounds__(kConsumers) read_weights_kernel(const Stage* stages, int s0, int s1, uint4* sink) {
  uint4 acc = make_uint4(0, 0, 0, 0);
  auto fold = [&acc](const uint4& v) {
    acc.x ^= v.x;
    acc.y ^= v.y;
    acc.z ^= v.z;
    acc.w ^= v.w;
  };
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (int s = s0; s < s1; ++s) {
    const uint4* w = reinterpret_cast<const uint4*>(stages[s].w);
    const size_t n = static_cast<size_t>(stages[s].N) * stages[s].row_bytes / 16;
    size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
      uint4 v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) v[u] = __ldcs(w + i + u * stride);
#pragma unroll
      for (int u = 0; u < 4; ++u) fold(v[u]);
    }
    for (; i < n; i += stride) fold(__ldcs(w + i));
  }
  if ((acc.x | acc.y | acc.z | acc.w) == 0x12345678u) sink[blockIdx.x] = acc;  // practically never: keeps the loads
}

// Random codes; each row's scales f16 in [0.005, 0.02).
__global__ void fill_weights_kernel(uint8_t* w, int N, int K, int row_bytes, uint32_t seed) {
  const size_t total = static_cast<size_t>(N) * row_bytes / 4;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    const size_t byte = i * 4, col = byte % row_bytes;
    if (col < static_cast<size_t>(K / 2)) {
      reinterpret_cast<uint32_t*>(w)[i] = h;
    } else {
      const __half a = __float2half_rn(0.005f + 0.015f * static_cast<float>(h & 0xffff) / 65536.0f);
      const __half b = __float2half_rn(0.005f + 0.015f * static_cast<float>(h >> 16) / 65536.0f);
      __half2 p = __halves2half2(a, b);
      std::memcpy(reinterpret_cast<uint32_t*>(w) + i, &p, 4);
    }
  }
}

__global__ void fill_input_kernel(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
}

}  // namespace

PersistentGemvBenchResult run_persistent_gemv_bench(int layers) {
  constexpr int H = 3072, I = 8192, QKV = 5120;
  int dev = 0, sms = 0;
  KR_CUDA_CHECK(cudaGetDevice(&dev));
  KR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  auto row_bytes = [](int K) { return K / 2 + (K / kGroup) * 2; };
  const int num_stages = layers * kStagesPerLayer;
  std::vector<Stage> host(num_stages);
  std::vector<void*> buffers;
  auto dalloc = [&](size_t bytes) {
    void* p = nullptr;
    KR_CUDA_CHECK(cudaMalloc(&p, bytes));
    buffers.push_back(p);
    return p;
  };
  float* x0 = static_cast<float*>(dalloc(H * sizeof(float)));
  fill_input_kernel<<<(H + 255) / 256, 256>>>(x0, H);
  const int shapes[kStagesPerLayer][2] = {{QKV, H}, {H, H}, {2 * I, H}, {H, I}};
  size_t out_floats = 0;
  for (int s = 0; s < num_stages; ++s) out_floats += shapes[s % kStagesPerLayer][0];
  float* outs = static_cast<float*>(dalloc(2 * out_floats * sizeof(float)));  // persistent, then reference
  double weight_bytes = 0.0;
  size_t off = 0;
  for (int s = 0; s < num_stages; ++s) {
    Stage& st = host[s];
    const int k = s % kStagesPerLayer;
    st.N = shapes[k][0];
    st.K = shapes[k][1];
    st.row_bytes = row_bytes(st.K);
    st.glu = k == 3;
    st.norm = k == 0 || k == 2;
    const size_t bytes = static_cast<size_t>(st.N) * st.row_bytes;
    uint8_t* w = static_cast<uint8_t*>(dalloc(bytes));
    fill_weights_kernel<<<4 * sms, 256>>>(w, st.N, st.K, st.row_bytes, 0x9e3779b9u * (s + 1));
    st.w = w;
    weight_bytes += static_cast<double>(bytes);
    st.in = s == 0 ? x0 : host[s - 1].out;  // o reads q's first H outputs
    st.out = outs + off;
    off += st.N;
  }
  KR_CUDA_CHECK(cudaGetLastError());
  // The reference's stages: the same, writing the second half of outs.
  std::vector<Stage> ref = host;
  for (int s = 0; s < num_stages; ++s) {
    ref[s].out = host[s].out + out_floats;
    ref[s].in = s == 0 ? x0 : ref[s - 1].out;
  }
  Stage* d_stages = static_cast<Stage*>(dalloc(2 * num_stages * sizeof(Stage)));
  KR_CUDA_CHECK(cudaMemcpy(d_stages, host.data(), num_stages * sizeof(Stage), cudaMemcpyHostToDevice));
  KR_CUDA_CHECK(cudaMemcpy(d_stages + num_stages, ref.data(), num_stages * sizeof(Stage), cudaMemcpyHostToDevice));
  int* done = static_cast<int*>(dalloc(num_stages * sizeof(int)));

  KR_CUDA_CHECK(cudaFuncSetAttribute(persistent_gemv_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(smem_bytes(Ring{}))));
  KR_CUDA_CHECK(cudaFuncSetAttribute(persistent_gemv_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(smem_bytes(Ring{}))));
  auto fits = [&](const Ring& cut) {
    int per_sm = 0;
    KR_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, cut.ctas_per_sm > 1 ? persistent_gemv_kernel<2> : persistent_gemv_kernel<1>, kThreads,
        smem_bytes(cut)));
    return per_sm >= cut.ctas_per_sm;
  };
  cudaEvent_t t0, t1;
  KR_CUDA_CHECK(cudaEventCreate(&t0));
  KR_CUDA_CHECK(cudaEventCreate(&t1));
  auto time_it = [&](auto&& enqueue) {
    float best = 1e30f;
    for (int r = 0; r <= kTimedSteps; ++r) {  // the first untimed
      KR_CUDA_CHECK(cudaMemset(done, 0, num_stages * sizeof(int)));
      // Every run starts from zeroed outputs (the persistent kernel's half), so that a
      // run that reads an input before it is written cannot pass on an earlier run's values.
      KR_CUDA_CHECK(cudaMemset(outs, 0, out_floats * sizeof(float)));
      KR_CUDA_CHECK(cudaEventRecord(t0));
      enqueue();
      KR_CUDA_CHECK(cudaEventRecord(t1));
      KR_CUDA_CHECK(cudaEventSynchronize(t1));
      float ms = 0.0f;
      KR_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
      if (r > 0) best = std::min(best, ms);
    }
    return static_cast<double>(best) * 1e3;
  };
  PersistentGemvBenchResult res;
  res.layers = layers;
  res.weight_bytes = weight_bytes;
  const Stage* stages = d_stages;
  auto persistent = [&](int mode, const Ring& cut) {
    launch_cooperative(cut.ctas_per_sm > 1 ? persistent_gemv_kernel<2> : persistent_gemv_kernel<1>,
                       sms * cut.ctas_per_sm, kThreads, smem_bytes(cut), nullptr, stages, num_stages, done, mode, cut);
  };
  // After a full run: its outputs (the first half of outs) against the reference's.
  std::vector<float> got(2 * out_floats);
  auto outputs_equal = [&] {
    KR_CUDA_CHECK(cudaMemcpy(got.data(), outs, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return std::memcmp(got.data(), got.data() + out_floats, out_floats * sizeof(float)) == 0;
  };
  res.per_matrix_us = time_it([&] {
    for (int s = 0; s < num_stages; ++s)
      per_matrix_gemv_kernel<<<sms, kConsumers>>>(d_stages + num_stages, s);
    KR_CUDA_CHECK(cudaGetLastError());
  });
  const double gb = weight_bytes / 1e9;
  auto tbs = [&](double us) { return gb / (us * 1e-6) / 1e3; };
  std::printf("persistent gemv bench: %d layers of the 3B shape (4-bit, 4 matrices a layer), %.3f GB a step\n",
              layers, gb);
  uint4* sink = static_cast<uint4*>(dalloc(4 * sms * sizeof(uint4)));
  res.read_only_us = time_it([&] {
    for (int s = 0; s < num_stages; ++s) read_weights_kernel<<<4 * sms, 256>>>(d_stages, s, s + 1, sink);
    KR_CUDA_CHECK(cudaGetLastError());
  });
  res.read_all_us = time_it([&] {
    read_weights_kernel<<<4 * sms, 256>>>(d_stages, 0, num_stages, sink);
    KR_CUDA_CHECK(cudaGetLastError());
  });
  std::printf("  read only, one kernel in all:   %8.1f us a step  %5.2f TB/s\n", res.read_all_us, tbs(res.read_all_us));
  // The same in the persistent kernels' shape: one CTA of kConsumers threads an SM.
  res.read_all_one_cta_us = time_it([&] {
    read_weights_kernel<<<sms, kConsumers>>>(d_stages, 0, num_stages, sink);
    KR_CUDA_CHECK(cudaGetLastError());
  });
  std::printf("  read only, one kernel in all, one CTA of %d threads an SM: %8.1f us a step  %5.2f TB/s\n", kConsumers,
              res.read_all_one_cta_us, tbs(res.read_all_one_cta_us));
  std::printf("  read only, one kernel a matrix: %8.1f us a step  %5.2f TB/s  %.2f us a matrix\n", res.read_only_us,
              tbs(res.read_only_us), res.read_only_us / num_stages);
  std::printf("  one kernel a matrix: %8.1f us a step  %5.2f TB/s  %.2f us a matrix\n", res.per_matrix_us,
              tbs(res.per_matrix_us), res.per_matrix_us / num_stages);
  // The chain streamed into registers (no ring).
  auto regs = [&](int mode) {
    launch_cooperative(persistent_regs_kernel, sms, kConsumers, 0, nullptr, stages, num_stages, done, mode);
  };
  res.regs_no_math_us = time_it([&] { regs(kNoMath); });
  res.regs_no_barrier_us = time_it([&] { regs(kNoBarrier); });
  res.regs_us = time_it([&] { regs(kFull); });  // last: its outputs are compared
  res.equal = outputs_equal();
  std::printf("  persistent, rows into registers: %8.1f us a step (%4.2f TB/s), no row math %8.1f (%4.2f), "
              "no grid barriers %8.1f (%4.2f)  equal: %s\n",
              res.regs_us, tbs(res.regs_us), res.regs_no_math_us, tbs(res.regs_no_math_us), res.regs_no_barrier_us,
              tbs(res.regs_no_barrier_us), res.equal ? "yes" : "NO (DIFFERENT)");
  // A ring a warp.
  KR_CUDA_CHECK(cudaFuncSetAttribute(persistent_warp_ring_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(kWarpRingSmem)));
  auto warp_ring = [&](int mode) {
    launch_cooperative(persistent_warp_ring_kernel, sms, kConsumers, kWarpRingSmem, nullptr, stages, num_stages, done,
                       mode);
  };
  res.warp_ring_no_math_us = time_it([&] { warp_ring(kNoMath); });
  res.warp_ring_no_barrier_us = time_it([&] { warp_ring(kNoBarrier); });
  res.warp_ring_us = time_it([&] { warp_ring(kFull); });  // last: its outputs are compared
  const bool warp_ring_equal = outputs_equal();
  res.equal = res.equal && warp_ring_equal;
  std::printf("  persistent, a ring a warp:       %8.1f us a step (%4.2f TB/s), no row math %8.1f (%4.2f), "
              "no grid barriers %8.1f (%4.2f)  equal: %s\n",
              res.warp_ring_us, tbs(res.warp_ring_us), res.warp_ring_no_math_us, tbs(res.warp_ring_no_math_us),
              res.warp_ring_no_barrier_us, tbs(res.warp_ring_no_barrier_us),
              warp_ring_equal ? "yes" : "NO (DIFFERENT)");
  std::printf("  persistent, us a step (TB/s):   full chain        no row math   no grid barriers   streaming only  "
              "ring only       equal\n");
  // At least kConsumerWarps slots: a warp waits for its next slot only one ring turn ahead
  // (a parity wait cannot tell two turns apart).
  const Ring cuts[] = {{4224, 48, false, 1}, {8448, 24, false, 1}, {4224, 22, false, 2}, {8448, 24, true, 1}};
  for (const Ring& cut : cuts) {
    KR_CHECK_MSG(cut.slots >= kConsumerWarps && cut.slots <= kMaxSlots && cut.slot_bytes % 16 == 0 &&
                     cut.slot_bytes >= 4224 && static_cast<size_t>(cut.slots) * cut.slot_bytes <= kRingBytes,
                 "persistent gemv bench: a ring cut the kernel cannot run");
    if (!fits(cut)) {
      std::printf("  %2d slots of %5d bytes, %d CTAs/SM: do not fit an SM\n", cut.slots, cut.slot_bytes,
                  cut.ctas_per_sm);
      continue;
    }
    const double none = time_it([&] { persistent(kStreamOnly, cut); });
    const double ring_only = time_it([&] { persistent(kRingOnly, cut); });
    const double no_math = time_it([&] { persistent(kNoMath, cut); });
    const double no_barrier = time_it([&] { persistent(kNoBarrier, cut); });
    const double full = time_it([&] { persistent(kFull, cut); });  // last: its outputs are compared
    const bool equal = outputs_equal();
    res.equal = res.equal && equal;
    if (&cut == &cuts[0]) {
      res.persistent_us = full;
      res.no_math_us = no_math;
      res.no_barrier_us = no_barrier;
    }
    std::printf("  %2d slots of %5d bytes, %-11s, %d CTA/SM: %8.1f (%4.2f) %8.1f (%4.2f) %8.1f (%4.2f) %8.1f (%4.2f) "
                "%8.1f (%4.2f)  %s\n",
                cut.slots, cut.slot_bytes, cut.lsu ? "cp.async" : "bulk copies", cut.ctas_per_sm, full, tbs(full),
                no_math, tbs(no_math), no_barrier, tbs(no_barrier), none, tbs(none), ring_only, tbs(ring_only),
                equal ? "yes" : "NO (DIFFERENT)");
  }
  KR_CUDA_CHECK(cudaEventDestroy(t0));
  KR_CUDA_CHECK(cudaEventDestroy(t1));
  for (void* p : buffers) KR_CUDA_CHECK(cudaFree(p));
  return res;
}

}  // namespace kr
