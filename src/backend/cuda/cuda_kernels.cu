// Element-wise, normalisation, RoPE, KV-store, GEMV and sampling kernels.
// Activations are bf16 in memory; every reduction accumulates in float.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_gemv1.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_fp8_act.cuh"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {

namespace {

using bf16 = __nv_bfloat16;

__global__ void embedding_kernel(const uint4* table, const int32_t* ids, float scale, uint4* out, int vecs_per_row) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int64_t src = static_cast<int64_t>(ids[t]) * vecs_per_row;
  for (int i = threadIdx.x; i < vecs_per_row; i += blockDim.x) {
    Vec8 v;
    v.u = table[src + i];
    if (scale != 1.0f) {  // HF: bf16 embeddings × the bf16 scale, rounded to bf16
#pragma unroll
      for (int e = 0; e < 8; ++e) v.h[e] = __float2bfloat16(__bfloat162float(v.h[e]) * scale);
    }
    out[static_cast<int64_t>(t) * vecs_per_row + i] = v.u;
  }
}

// Sum of `v` over the block (blockDim.x a multiple of 32), the same value in every
// thread, in a fixed order (deterministic). `scratch`: 32 floats of shared memory;
// with kReuse it is free again when this returns (one more barrier), without it
// the caller must not write it again.
template <bool kReuse = true>
__device__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = threadIdx.x < (blockDim.x >> 5) ? scratch[threadIdx.x] : 0.0f;
    s = warp_sum(s);
    if (threadIdx.x == 0) scratch[0] = s;
  }
  __syncthreads();
  const float total = scratch[0];
  if constexpr (kReuse) __syncthreads();
  return total;
}

// block_sum for any power-of-two block up to 32 threads, or a multiple of 32.
__device__ float block_sum_any(float v, float* scratch) {
  const unsigned n = blockDim.x;
  if (n >= 32) return block_sum(v, scratch);
  const unsigned mask = (1u << n) - 1u;
  for (unsigned o = 16; o > 0; o >>= 1)
    if (o < n) v += __shfl_xor_sync(mask, v, o);
  return v;
}

// One block per row; H/8 vectors spread over the threads; the row stays in registers
// (RmsNormArgs: optional pre-norm of x, optional residual add, then the norm).
// Compile-time variants: kPre (Gemma's norm of x first), kKind (the norm's form)
// and kFp8 (out's FP8 rows too, a.q), so that the Llama form runs no code of the
// others (two barriers, as before them).
template <int kMaxVecsPerThread, bool kPre, int kKind, bool kFp8>
__global__ void rms_norm_kernel(RmsNormArgs a) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float scratch[32], scratch_pre[32], scratch_q[32];
  const int t = blockIdx.x;
  const int H = a.H, vecs = H / 8;
  float vals[kMaxVecsPerThread][8];
  const size_t row = static_cast<size_t>(t) * H;
  const bf16* x = static_cast<const bf16*>(a.x) + row;
#pragma unroll
  for (int j = 0; j < kMaxVecsPerThread; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < vecs) {
      Vec8 xv;
      xv.u = reinterpret_cast<const uint4*>(x)[v];
#pragma unroll
      for (int e = 0; e < 8; ++e) vals[j][e] = __bfloat162float(xv.h[e]);
    }
  }
  float ss = 0.0f;
  if constexpr (kPre) {
    // x' = norm(x, pre_w), rounded to bf16 (Gemma's post-attention/feedforward norm).
#pragma unroll
    for (int j = 0; j < kMaxVecsPerThread; ++j)
      if (threadIdx.x + j * blockDim.x < vecs)
#pragma unroll
        for (int e = 0; e < 8; ++e) ss += vals[j][e] * vals[j][e];
    const float inv_x = rsqrtf(block_sum<false>(ss, scratch_pre) / static_cast<float>(H) + a.eps);
#pragma unroll
    for (int j = 0; j < kMaxVecsPerThread; ++j) {
      const int v = threadIdx.x + j * blockDim.x;
      if (v < vecs) {
        Vec8 wv, o;
        wv.u = reinterpret_cast<const uint4*>(a.pre_w)[v];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          o.h[e] = norm_apply(vals[j][e], inv_x, wv.h[e], kKind);
          vals[j][e] = __bfloat162float(o.h[e]);
        }
        reinterpret_cast<uint4*>(static_cast<bf16*>(a.x_normed) + row)[v] = o.u;
      }
    }
    ss = 0.0f;
  }
  if (a.residual != nullptr) {
    bf16* res = static_cast<bf16*>(a.residual) + row;
#pragma unroll
    for (int j = 0; j < kMaxVecsPerThread; ++j) {
      const int v = threadIdx.x + j * blockDim.x;
      if (v < vecs) {
        Vec8 r;
        r.u = reinterpret_cast<const uint4*>(res)[v];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          // Residual kept in bf16 like the HF model: round the sum before normalising.
          r.h[e] = __float2bfloat16(__bfloat162float(r.h[e]) + vals[j][e]);
          vals[j][e] = __bfloat162float(r.h[e]);
        }
        reinterpret_cast<uint4*>(res)[v] = r.u;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kMaxVecsPerThread; ++j)
    if (threadIdx.x + j * blockDim.x < vecs)
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += vals[j][e] * vals[j][e];
  const float inv = rsqrtf(block_sum<false>(ss, scratch) / static_cast<float>(H) + a.eps);
  [[maybe_unused]] float amax = 0.0f;  // kFp8: max |out| of this thread's elements
#pragma unroll
  for (int j = 0; j < kMaxVecsPerThread; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < vecs) {
      Vec8 wv, o;
      wv.u = reinterpret_cast<const uint4*>(a.w)[v];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        o.h[e] = norm_apply(vals[j][e], inv, wv.h[e], kKind);
        if constexpr (kFp8) {  // the bf16 output, as launch_quantize_fp8_rows would read it
          vals[j][e] = __bfloat162float(o.h[e]);
          amax = fmaxf(amax, fabsf(vals[j][e]));
        }
      }
      reinterpret_cast<uint4*>(static_cast<bf16*>(a.out) + row)[v] = o.u;
    }
  }
  if constexpr (kFp8) {
    // out's FP8 rows (Fp8RowsOut): the row's scale, then its e4m3 bytes.
    float s = a.q.input_scale;
    if (!a.q.static_input) s = fp8_act_scale(fp8_block_max(amax, scratch_q), a.q.act_scale_ub);
    if (threadIdx.x == 0) a.q.scales[t] = s;
    uint8_t* codes = static_cast<uint8_t*>(a.q.codes) + row;
#pragma unroll
    for (int j = 0; j < kMaxVecsPerThread; ++j) {
      const int v = threadIdx.x + j * blockDim.x;
      if (v < vecs) {
        union {
          uint2 u;
          uint8_t b[8];
        } q;
#pragma unroll
        for (int e = 0; e < 8; ++e) q.b[e] = fp8_act_encode(vals[j][e], s);
        reinterpret_cast<uint2*>(codes)[v] = q.u;
      }
    }
  }
}

// One head of a token for rope_kernel: head h < q_heads + kv_heads rotated (thread
// i: pair i, with its cos/sin c, s) after the bias and the per-head norm (RopeArgs),
// and with a cache slot stored as k; a head h >= q_heads + kv_heads is a v head:
// its bias added, and stored.
__device__ __forceinline__ void rope_head(const RopeArgs& a, bf16* row, int h, int slot, float c, float s,
                                          float* scratch) {
  const int D = a.head_dim, half = D / 2, i = threadIdx.x;
  const int qk_heads = a.q_heads + a.kv_heads;
  const size_t kv_width = static_cast<size_t>(a.kv_heads) * D;
  bf16* x = row + static_cast<size_t>(h) * D;
  const bf16* bias = a.bias != nullptr ? static_cast<const bf16*>(a.bias) + static_cast<size_t>(h) * D : nullptr;
  if (h >= qk_heads) {
    const size_t vd = static_cast<size_t>(h - qk_heads) * D;
    for (int j = i; j < D; j += half) {
      bf16 val = x[j];
      if (bias != nullptr) {
        val = add_bias(val, bias[j]);
        x[j] = val;
      }
      if (slot >= 0) kv_store(a.v_cache, a.kv_fp8, a.v_scale, slot * kv_width + vd + j, val);
    }
    return;
  }
  bf16 xa = x[i], xb = x[i + half];
  if (bias != nullptr) {  // the projection's output with its bias, in bf16
    xa = add_bias(xa, bias[i]);
    xb = add_bias(xb, bias[i + half]);
  }
  float va = __bfloat162float(xa), vb = __bfloat162float(xb);
  if (a.q_norm_w != nullptr) {  // the head's RMS norm (uniform branch: every thread takes it)
    const bf16* w = static_cast<const bf16*>(h < a.q_heads ? a.q_norm_w : a.k_norm_w);
    const float inv = rsqrtf(block_sum_any(pair_square_sum(va, vb), scratch) / static_cast<float>(D) + a.norm_eps);
    va = __bfloat162float(norm_apply(va, inv, w[i], a.norm_kind));
    vb = __bfloat162float(norm_apply(vb, inv, w[i + half], a.norm_kind));
  }
  bf16 ra, rb;
  rope_rotate(va, vb, c, s, &ra, &rb);
  x[i] = ra;
  x[i + half] = rb;
  if (slot >= 0 && h >= a.q_heads) {
    const size_t kd = slot * kv_width + static_cast<size_t>(h - a.q_heads) * D;
    kv_store(a.k_cache, a.kv_fp8, a.k_scale, kd + i, ra);
    kv_store(a.k_cache, a.kv_fp8, a.k_scale, kd + i + half, rb);
  }
}

// grid (T, G), block (D/2): block (t, g) does heads g, g + G, ... of token t
// (rope_head; `heads` of them: the v heads only with a bias or a cache). G is
// launch_rope's: one block per head at decode sizes, where a block per token
// serialised its heads' loads and stores (~31 us a layer at 64 tokens on an H200,
// ncu), and a few heads per block at prefill sizes, where 40+ one-head blocks per
// token cost more than they save (docs/performance.md).
__global__ void rope_kernel(RopeArgs a, int heads) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float scratch[32];
  const int t = blockIdx.x;
  float c, s;
  rope_cos_sin(a.positions[t], a.inv_freq[threadIdx.x], &c, &s);
  bf16* row = static_cast<bf16*>(a.qkv) + static_cast<size_t>(t) * (a.q_heads + 2 * a.kv_heads) * a.head_dim;
  const int slot = a.k_cache != nullptr ? a.slot_mapping[t] : -1;
  for (int h = blockIdx.y; h < heads; h += gridDim.y) rope_head(a, row, h, slot, c, s, scratch);
}

// grid T, block half: the (cos, sin) of pair threadIdx.x at token blockIdx.x's position.
__global__ void rope_table_kernel(const int32_t* positions, const float* inv_freq, int half, float2* cos_sin) {
  const int t = blockIdx.x, i = threadIdx.x;
  float c, s;
  rope_cos_sin(positions[t], inv_freq[i], &c, &s);
  cos_sin[static_cast<size_t>(t) * half + i] = make_float2(c, s);
}

// One token's K and V rows (16-byte vectors of the qkv row) into their cache slot:
// as they are (Cache = uint4, 8 bf16), or as 8 e4m3(x / scale) bytes (Cache = uint2,
// an FP8 cache).
template <class Cache>
__global__ void store_kv_kernel(const uint4* qkv, const int32_t* slot_mapping, Cache* k_cache, Cache* v_cache,
                                int row_vecs, int k_offset_vecs, int kv_vecs, float k_scale, float v_scale) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int slot = slot_mapping[t];
  if (slot < 0) return;
  const uint4* src = qkv + static_cast<size_t>(t) * row_vecs + k_offset_vecs;
  for (int i = threadIdx.x; i < 2 * kv_vecs; i += blockDim.x) {
    if constexpr (std::is_same_v<Cache, uint4>) {
      if (i < kv_vecs) {
        k_cache[static_cast<size_t>(slot) * kv_vecs + i] = src[i];
      } else {
        v_cache[static_cast<size_t>(slot) * kv_vecs + i - kv_vecs] = src[i];
      }
    } else {
      const bool is_k = i < kv_vecs;
      const float scale = is_k ? k_scale : v_scale;
      union {
        uint4 u;
        bf16 h[8];
      } x;
      x.u = src[i];
      union {
        uint2 u;
        uint8_t b[8];
      } y;
#pragma unroll
      for (int e = 0; e < 8; ++e) y.b[e] = kv_fp8_encode(__bfloat162float(x.h[e]), scale);
      (is_k ? k_cache : v_cache)[static_cast<size_t>(slot) * kv_vecs + (is_k ? i : i - kv_vecs)] = y.u;
    }
  }
}

__global__ void silu_mul_kernel(const uint4* gu, int activation, uint4* out, int vecs_per_row, int64_t total_vecs) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total_vecs) return;
  const int64_t t = i / vecs_per_row, c = i % vecs_per_row;
  Vec8 g, u, o;
  g.u = gu[t * 2 * vecs_per_row + c];
  u.u = gu[t * 2 * vecs_per_row + vecs_per_row + c];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    // HF rounds f(gate) to bf16 before the product.
    const float f = __bfloat162float(__float2bfloat16(glu_activation(__bfloat162float(g.h[e]), activation)));
    o.h[e] = __float2bfloat16(f * __bfloat162float(u.h[e]));
  }
  out[i] = o.u;
}

// silu_mul_kernel with out's FP8 rows (Fp8RowsOut): one block per row, each
// thread's products kept in registers (at most kMaxVecsPerThread vectors of 8)
// for the row's scale.
template <int kMaxVecsPerThread>
__global__ void silu_mul_fp8_kernel(const uint4* gu, int activation, uint4* out, int vecs_per_row, Fp8RowsOut q) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const uint4* g_row = gu + t * 2 * vecs_per_row;
  const uint4* u_row = g_row + vecs_per_row;
  Vec8 o[kMaxVecsPerThread];
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxVecsPerThread; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c < vecs_per_row) {
      Vec8 g, u;
      g.u = g_row[c];
      u.u = u_row[c];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        // As silu_mul_kernel: HF rounds f(gate) to bf16 before the product.
        const float f = __bfloat162float(__float2bfloat16(glu_activation(__bfloat162float(g.h[e]), activation)));
        o[j].h[e] = __float2bfloat16(f * __bfloat162float(u.h[e]));
        amax = fmaxf(amax, fabsf(__bfloat162float(o[j].h[e])));
      }
      out[t * vecs_per_row + c] = o[j].u;
    }
  }
  float s = q.input_scale;
  if (!q.static_input) s = fp8_act_scale(fp8_block_max(amax, scratch), q.act_scale_ub);
  if (threadIdx.x == 0) q.scales[t] = s;
  uint2* codes = reinterpret_cast<uint2*>(static_cast<uint8_t*>(q.codes) + t * vecs_per_row * 8);
#pragma unroll
  for (int j = 0; j < kMaxVecsPerThread; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c < vecs_per_row) {
      union {
        uint2 u;
        uint8_t b[8];
      } w;
#pragma unroll
      for (int e = 0; e < 8; ++e) w.b[e] = fp8_act_encode(__bfloat162float(o[j].h[e]), s);
      codes[c] = w.u;
    }
  }
}

__global__ void softcap_kernel(void* x, bool x_f32, int64_t n, float cap) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (x_f32) {
    float* p = static_cast<float*>(x) + i;
    *p = cap * tanhf(*p / cap);
  } else {
    bf16* p = static_cast<bf16*>(x) + i;
    *p = __float2bfloat16(cap * tanhf(__bfloat162float(*p) / cap));
  }
}

__global__ void gather_rows_kernel(const uint4* x, const int32_t* idx, uint4* out, int vecs_per_row) {
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x;
  const int64_t src = static_cast<int64_t>(idx[r]) * vecs_per_row;
  for (int i = threadIdx.x; i < vecs_per_row; i += blockDim.x) out[static_cast<int64_t>(r) * vecs_per_row + i] = x[src + i];
}

// GEMV: each warp computes RPW output rows; T tokens share each weight load.
// Each lane streams 16-byte weight vectors, RPW * kUnroll loads in flight; x
// comes through L1 (every warp reads the same x).
template <int T, int RPW, int kUnroll>
__global__ void __launch_bounds__(256) gemv_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                                   void* out, bool out_f32, int N, int K) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = (blockIdx.x * (blockDim.x >> 5) + warp) * RPW;
  if (n0 >= N) return;
  const int kvecs = K / 8;
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  float acc[RPW][T];
#pragma unroll
  for (int r = 0; r < RPW; ++r)
#pragma unroll
    for (int t = 0; t < T; ++t) acc[r][t] = 0.0f;
  // Weights of the next iteration are in flight while this one computes; the first
  // ones are requested before waiting for the kernel that writes x.
  Vec8 next[RPW][kUnroll];
  auto load_w = [&](int base) {
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      const int n = min(n0 + r, N - 1);  // rows past N repeat the last one; not stored
      const uint4* wrow = reinterpret_cast<const uint4*>(w + static_cast<size_t>(n) * K);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int v = base + u * 32 + lane;
        next[r][u].u = v < kvecs ? __ldcs(wrow + v) : make_uint4(0, 0, 0, 0);  // streamed once
      }
    }
  };
  load_w(0);
  pdl_launch_dependents();
  pdl_wait();
  for (int base = 0; base < kvecs; base += 32 * kUnroll) {
    Vec8 wv[RPW][kUnroll];
#pragma unroll
    for (int r = 0; r < RPW; ++r)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wv[r][u] = next[r][u];
    if (base + 32 * kUnroll < kvecs) load_w(base + 32 * kUnroll);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = base + u * 32 + lane;
      if (v >= kvecs) continue;
#pragma unroll
      for (int t = 0; t < T; ++t) {
        Vec8 xx;
        xx.u = __ldg(xv + static_cast<size_t>(t) * kvecs + v);
#pragma unroll
        for (int e = 0; e < 8; e += 2) {
          const float2 xf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&xx.h[e]));
#pragma unroll
          for (int r = 0; r < RPW; ++r) {
            const float2 wf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&wv[r][u].h[e]));
            acc[r][t] = fmaf(wf.x, xf.x, acc[r][t]);
            acc[r][t] = fmaf(wf.y, xf.y, acc[r][t]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < RPW; ++r) {
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const float s = warp_sum(acc[r][t]);
      if (lane == 0 && n0 + r < N) {
        if (out_f32) {
          static_cast<float*>(out)[static_cast<size_t>(t) * N + n0 + r] = s;
        } else {
          static_cast<bf16*>(out)[static_cast<size_t>(t) * N + n0 + r] = __float2bfloat16(s);
        }
      }
    }
  }
}

template <int T, int RPW, int kUnroll>
void gemv_t(const bf16* x, const bf16* w, void* out, bool out_f32, int N, int K, cudaStream_t stream) {
  const int rows_per_block = 8 * RPW;
  const unsigned blocks = static_cast<unsigned>((N + rows_per_block - 1) / rows_per_block);
  launch(false, gemv_kernel<T, RPW, kUnroll>, dim3(blocks), dim3(256), 0, stream, x, w, out, out_f32, N, K);
}

__device__ ArgmaxLse shfl_xor(const ArgmaxLse& v, int o) {
  ArgmaxLse r;
  r.m = __shfl_xor_sync(0xffffffffu, v.m, o);
  r.i = __shfl_xor_sync(0xffffffffu, v.i, o);
  r.s = __shfl_xor_sync(0xffffffffu, v.s, o);
  return r;
}

// One block of 1024 threads per row, one pass: at batch 1 the kernel is bound by
// memory latency, so each thread keeps 8 float4 loads in flight (a 128k-entry
// row is then about four round trips; history in docs/performance.md).
__global__ void __launch_bounds__(1024) argmax_logprob_kernel(const float* logits, int V, int32_t* ids,
                                                              float* logprobs, int32_t* ids_copy) {
  pdl_launch_dependents();
  pdl_wait();
  constexpr int kUnroll = 8;
  const float* row = logits + static_cast<size_t>(blockIdx.x) * V;
  ArgmaxLse acc;
  const int nvec = (V % 4 == 0) ? V / 4 : 0;  // rows of V % 4 != 0 are not 16-byte aligned: scalar path
  const float4* rv = reinterpret_cast<const float4*>(row);
  for (int base = 0; base < nvec; base += kUnroll * 1024) {
    float4 q[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = base + u * 1024 + threadIdx.x;
      q[u] = v < nvec ? __ldcs(rv + v) : make_float4(-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = base + u * 1024 + threadIdx.x;
      if (v >= nvec) continue;
      acc.add(q[u].x, 4 * v);
      acc.add(q[u].y, 4 * v + 1);
      acc.add(q[u].z, 4 * v + 2);
      acc.add(q[u].w, 4 * v + 3);
    }
  }
  for (int i = 4 * nvec + threadIdx.x; i < V; i += 1024) acc.add(row[i], i);
  for (int o = 16; o > 0; o >>= 1) acc.merge(shfl_xor(acc, o));
  __shared__ ArgmaxLse s_part[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) s_part[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = lane < static_cast<int>(blockDim.x >> 5) ? s_part[lane] : ArgmaxLse{};
    for (int o = 16; o > 0; o >>= 1) acc.merge(shfl_xor(acc, o));
    if (lane == 0) {
      ids[blockIdx.x] = acc.i;
      if (ids_copy != nullptr) ids_copy[blockIdx.x] = acc.i;
      // logits[id] - (max + log Σ exp(x - max)) with logits[id] == max; an infinite max
      // is reported as NaN like any other non-finite row (the caller fails the request).
      logprobs[blockIdx.x] = isfinite(acc.m) ? -logf(acc.s) : NAN;
    }
  }
}

// Rows spread over kArgmaxBlocks blocks each (launch_argmax_logprob's few-row path): block b of
// row r takes the float4s [nvec b / B, nvec (b + 1) / B) (the last block also the scalar tail)
// into partials[r B + b]; the row's last block to finish (its ticket, a fence before) merges
// the B partials in block order (the same result every run) and writes the outputs, then
// sets the ticket back to zero for the next launch.
constexpr int kArgmaxBlocks = 32, kArgmaxThreads = 256;
__global__ void __launch_bounds__(kArgmaxThreads) argmax_logprob_split_kernel(const float* logits, int V, int32_t* ids,
                                                                             float* logprobs, int32_t* ids_copy,
                                                                             ArgmaxLse* partials, unsigned* tickets) {
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.y, b = blockIdx.x, B = gridDim.x;
  const float* row = logits + static_cast<size_t>(r) * V;
  const int nvec = (V % 4 == 0) ? V / 4 : 0;  // rows of V % 4 != 0 are not 16-byte aligned: scalar path
  const int v0 = static_cast<int>(static_cast<int64_t>(nvec) * b / B);
  const int v1 = static_cast<int>(static_cast<int64_t>(nvec) * (b + 1) / B);
  const float4* rv = reinterpret_cast<const float4*>(row);
  ArgmaxLse acc;
  constexpr int kUnroll = 4;
  for (int base = v0; base < v1; base += kUnroll * kArgmaxThreads) {
    float4 q[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = base + u * kArgmaxThreads + threadIdx.x;
      q[u] = v < v1 ? __ldcs(rv + v) : make_float4(-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = base + u * kArgmaxThreads + threadIdx.x;
      if (v >= v1) continue;
      acc.add(q[u].x, 4 * v);
      acc.add(q[u].y, 4 * v + 1);
      acc.add(q[u].z, 4 * v + 2);
      acc.add(q[u].w, 4 * v + 3);
    }
  }
  if (b == B - 1)
    for (int i = 4 * nvec + threadIdx.x; i < V; i += kArgmaxThreads) acc.add(row[i], i);
  for (int o = 16; o > 0; o >>= 1) acc.merge(shfl_xor(acc, o));
  __shared__ ArgmaxLse s_part[kArgmaxThreads / 32];
  __shared__ bool s_last;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) s_part[warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    ArgmaxLse part = s_part[0];
    for (int w = 1; w < kArgmaxThreads / 32; ++w) part.merge(s_part[w]);
    partials[r * B + b] = part;
    __threadfence();
    s_last = atomicAdd(tickets + r, 1u) == static_cast<unsigned>(B - 1);
  }
  __syncthreads();
  if (!s_last || warp != 0) return;
  __threadfence();  // the other blocks' partials, published before their tickets
  // Lane l merges partials l, l + 32, ... (in order), then the lanes by the fixed butterfly.
  ArgmaxLse m;
  for (int j = lane; j < B; j += 32) {
    ArgmaxLse p;
    p.m = __ldcg(&partials[r * B + j].m);
    p.i = __ldcg(&partials[r * B + j].i);
    p.s = __ldcg(&partials[r * B + j].s);
    m.merge(p);
  }
  for (int o = 16; o > 0; o >>= 1) m.merge(shfl_xor(m, o));
  if (lane == 0) {
    ids[r] = m.i;
    if (ids_copy != nullptr) ids_copy[r] = m.i;
    logprobs[r] = isfinite(m.m) ? -logf(m.s) : NAN;
    tickets[r] = 0;
  }
}

// One masked logit: +Inf for a non-finite value (the row must fail), -inf
// where the mask bit is 0, else unchanged.
__device__ __forceinline__ float masked_logit(float x, unsigned allowed) {
  return !isfinite(x) ? INFINITY : (allowed ? x : -INFINITY);
}

// grid (blocks per row, M); each thread takes float4s of its row, grid-stride.
// A vector is written back only when one of its four entries changes.
__global__ void apply_token_mask_kernel(float* logits, int V, const int32_t* rows, const uint32_t* masks,
                                        int words) {
  pdl_launch_dependents();
  pdl_wait();
  const int m = blockIdx.y;
  float* row = logits + static_cast<size_t>(rows[m]) * V;
  const uint32_t* bits = masks + static_cast<size_t>(m) * words;
  const int stride = gridDim.x * blockDim.x;
  if (V % 4 == 0) {  // rows are 16-byte aligned
    float4* rv = reinterpret_cast<float4*>(row);
    for (int v = blockIdx.x * blockDim.x + threadIdx.x; v < V / 4; v += stride) {
      const unsigned w = (__ldg(bits + (v >> 3)) >> ((v & 7) * 4)) & 0xFu;
      const float4 q = rv[v];
      const float4 o = make_float4(masked_logit(q.x, w & 1u), masked_logit(q.y, w & 2u), masked_logit(q.z, w & 4u),
                                   masked_logit(q.w, w & 8u));
      if (__float_as_uint(o.x) != __float_as_uint(q.x) || __float_as_uint(o.y) != __float_as_uint(q.y) ||
          __float_as_uint(o.z) != __float_as_uint(q.z) || __float_as_uint(o.w) != __float_as_uint(q.w))
        rv[v] = o;
    }
  } else {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < V; i += stride) {
      const float x = row[i];
      const float o = masked_logit(x, (__ldg(bits + (i >> 5)) >> (i & 31)) & 1u);
      if (__float_as_uint(o) != __float_as_uint(x)) row[i] = o;
    }
  }
}

__global__ void to_bf16_kernel(const void* src, int kind, bf16* dst, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (kind == 1) {
    dst[i] = __float2bfloat16(__half2float(static_cast<const __half*>(src)[i]));
  } else {
    dst[i] = __float2bfloat16(static_cast<const float*>(src)[i]);
  }
}

}  // namespace

void launch_embedding(const void* table, const int32_t* ids, float scale, void* out, int T, int H,
                      cudaStream_t stream) {
  if (T == 0) return;
  launch(false, embedding_kernel, dim3(T), dim3(128), 0, stream, static_cast<const uint4*>(table), ids, scale,
         static_cast<uint4*>(out), H / 8);
}

namespace {

template <bool kPre, int kKind, bool kFp8>
void launch_rms_norm_variant(const RmsNormArgs& a, bool pdl, cudaStream_t stream) {
  const int vecs = a.H / 8;
  int threads = ((vecs + 31) / 32) * 32;
  if (threads > 512) threads = 512;
  const int per = (vecs + threads - 1) / threads;
  if (per <= 1) {
    launch(pdl, rms_norm_kernel<1, kPre, kKind, kFp8>, dim3(a.T), dim3(threads), 0, stream, a);
  } else if (per <= 2) {
    launch(pdl, rms_norm_kernel<2, kPre, kKind, kFp8>, dim3(a.T), dim3(threads), 0, stream, a);
  } else if (per <= 4) {
    launch(pdl, rms_norm_kernel<4, kPre, kKind, kFp8>, dim3(a.T), dim3(threads), 0, stream, a);
  } else {
    launch(pdl, rms_norm_kernel<8, kPre, kKind, kFp8>, dim3(a.T), dim3(threads), 0, stream, a);  // H ≤ 32768
  }
}

template <bool kFp8>
void launch_rms_norm_kind(const RmsNormArgs& a, bool pdl, cudaStream_t stream) {
  const bool pre = a.pre_w != nullptr;
  if (a.kind == kNormTimesOnePlusWeight) {
    if (pre) {
      launch_rms_norm_variant<true, kNormTimesOnePlusWeight, kFp8>(a, pdl, stream);
    } else {
      launch_rms_norm_variant<false, kNormTimesOnePlusWeight, kFp8>(a, pdl, stream);
    }
  } else if (pre) {
    launch_rms_norm_variant<true, kNormTimesWeight, kFp8>(a, pdl, stream);
  } else {
    launch_rms_norm_variant<false, kNormTimesWeight, kFp8>(a, pdl, stream);
  }
}

}  // namespace

void launch_rms_norm(const RmsNormArgs& a, bool pdl, cudaStream_t stream) {
  if (a.T == 0) return;
  if (a.q.codes != nullptr) {
    launch_rms_norm_kind<true>(a, pdl, stream);
  } else {
    launch_rms_norm_kind<false>(a, pdl, stream);
  }
}

void launch_rope(const RopeArgs& a, cudaStream_t stream) {
  if (a.T == 0) return;
  const bool v_heads = a.k_cache != nullptr || a.bias != nullptr;
  const int heads = a.q_heads + (v_heads ? 2 : 1) * a.kv_heads;
  // About kRopeBlocks blocks in all: at 64 tokens one head each, at 512 a dozen.
  constexpr int kRopeBlocks = 2048;
  const int groups = std::clamp(kRopeBlocks / a.T, 1, heads);
  launch(false, rope_kernel, dim3(a.T, groups), dim3(a.head_dim / 2), 0, stream, a, heads);
}

void launch_rope_table(const int32_t* positions, const float* inv_freq, int T, int half, float2* cos_sin,
                       cudaStream_t stream) {
  if (T == 0) return;
  launch(false, rope_table_kernel, dim3(T), dim3(half), 0, stream, positions, inv_freq, half, cos_sin);
}

void launch_store_kv(const void* qkv, const int32_t* slot_mapping, void* k_cache, void* v_cache, int T,
                     int q_heads, int kv_heads, int head_dim, cudaStream_t stream, bool kv_fp8, float k_scale,
                     float v_scale) {
  if (T == 0) return;
  const int row_vecs = (q_heads + 2 * kv_heads) * head_dim / 8;
  const int k_offset_vecs = q_heads * head_dim / 8, kv_vecs = kv_heads * head_dim / 8;
  const uint4* src = static_cast<const uint4*>(qkv);
  if (kv_fp8) {
    launch(false, store_kv_kernel<uint2>, dim3(T), dim3(128), 0, stream, src, slot_mapping, static_cast<uint2*>(k_cache),
           static_cast<uint2*>(v_cache), row_vecs, k_offset_vecs, kv_vecs, k_scale, v_scale);
  } else {
    launch(false, store_kv_kernel<uint4>, dim3(T), dim3(128), 0, stream, src, slot_mapping, static_cast<uint4*>(k_cache),
           static_cast<uint4*>(v_cache), row_vecs, k_offset_vecs, kv_vecs, k_scale, v_scale);
  }
}

void launch_silu_mul(const void* gate_up, int activation, void* out, int T, int I, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(T) * (I / 8);
  if (total == 0) return;
  launch(false, silu_mul_kernel, dim3(static_cast<unsigned>((total + 255) / 256)), dim3(256), 0, stream,
         static_cast<const uint4*>(gate_up), activation, static_cast<uint4*>(out), I / 8, total);
}

void launch_silu_mul_fp8(const void* gate_up, int activation, void* out, int T, int I, const Fp8RowsOut& q,
                         cudaStream_t stream) {
  if (T == 0) return;
  const int vecs = I / 8;
  int threads = ((vecs + 31) / 32) * 32;
  if (threads > 512) threads = 512;
  const int per = (vecs + threads - 1) / threads;
  const auto* gu = static_cast<const uint4*>(gate_up);
  auto* o = static_cast<uint4*>(out);
  if (per <= 1) {
    launch(false, silu_mul_fp8_kernel<1>, dim3(T), dim3(threads), 0, stream, gu, activation, o, vecs, q);
  } else if (per <= 2) {
    launch(false, silu_mul_fp8_kernel<2>, dim3(T), dim3(threads), 0, stream, gu, activation, o, vecs, q);
  } else if (per <= 4) {
    launch(false, silu_mul_fp8_kernel<4>, dim3(T), dim3(threads), 0, stream, gu, activation, o, vecs, q);
  } else {
    launch(false, silu_mul_fp8_kernel<8>, dim3(T), dim3(threads), 0, stream, gu, activation, o, vecs, q);  // I ≤ 32768
  }
}

void launch_softcap(void* x, bool x_f32, int64_t n, float cap, cudaStream_t stream) {
  if (n == 0) return;
  launch(false, softcap_kernel, dim3(static_cast<unsigned>((n + 255) / 256)), dim3(256), 0, stream, x, x_f32, n, cap);
}

void launch_gather_rows(const void* x, const int32_t* idx, void* out, int R, int64_t row_bytes,
                        cudaStream_t stream) {
  if (R == 0) return;
  launch(false, gather_rows_kernel, dim3(R), dim3(128), 0, stream, static_cast<const uint4*>(x), idx,
         static_cast<uint4*>(out), static_cast<int>(row_bytes / 16));
}

void launch_gemv(const void* x, const void* w, void* out, bool out_f32, int T, int N, int K, bool pdl,
                 cudaStream_t stream) {
  auto* xx = static_cast<const bf16*>(x);
  auto* ww = static_cast<const bf16*>(w);
  switch (T) {
    case 1: {
      Gemv1Args a;
      a.x = x;
      a.w = w;
      a.out = out;
      a.out_f32 = out_f32;
      a.N = N;
      a.K = K;
      if (!launch_gemv1(a, Gemv1Epilogue::kPlain, pdl, stream)) gemv_t<1, 2, 4>(xx, ww, out, out_f32, N, K, stream);
      break;
    }
    case 2: gemv_t<2, 2, 4>(xx, ww, out, out_f32, N, K, stream); break;
    case 3: gemv_t<3, 1, 4>(xx, ww, out, out_f32, N, K, stream); break;
    case 4: gemv_t<4, 1, 4>(xx, ww, out, out_f32, N, K, stream); break;
    default: break;
  }
}

void launch_argmax_logprob(const float* logits, int R, int V, int32_t* ids, float* logprobs, int32_t* ids_copy,
                           const ArgmaxScratch& scratch, cudaStream_t stream) {
  if (R == 0) return;
  if (R <= kArgmaxSplitRows && scratch.partials != nullptr && V >= 4 * kArgmaxBlocks * kArgmaxThreads) {
    launch(false, argmax_logprob_split_kernel, dim3(kArgmaxBlocks, R), dim3(kArgmaxThreads), 0, stream, logits, V, ids,
           logprobs, ids_copy, static_cast<ArgmaxLse*>(scratch.partials), scratch.tickets);
    return;
  }
  launch(false, argmax_logprob_kernel, dim3(R), dim3(1024), 0, stream, logits, V, ids, logprobs, ids_copy);
}

size_t argmax_scratch_bytes() { return static_cast<size_t>(kArgmaxSplitRows) * kArgmaxBlocks * sizeof(ArgmaxLse); }

void launch_apply_token_mask(float* logits, int V, const int32_t* rows, int M, const uint32_t* masks, int words,
                             cudaStream_t stream) {
  if (M == 0 || V == 0) return;
  constexpr int kThreads = 256;
  const int per_row = (V % 4 == 0 ? V / 4 : V);
  const unsigned blocks = static_cast<unsigned>(std::min(64, (per_row + kThreads - 1) / kThreads));
  launch(false, apply_token_mask_kernel, dim3(blocks, static_cast<unsigned>(M)), dim3(kThreads), 0, stream, logits,
         V, rows, masks, words);
}

void launch_to_bf16(const void* src, bool src_is_f16, bool src_is_f32, void* dst, int64_t n, cudaStream_t stream) {
  if (n == 0 || (!src_is_f16 && !src_is_f32)) return;
  launch(false, to_bf16_kernel, dim3(static_cast<unsigned>((n + 255) / 256)), dim3(256), 0, stream, src,
         src_is_f16 ? 1 : 0, static_cast<bf16*>(dst), n);
}

}  // namespace kr::cuda
