// Element-wise, normalisation, RoPE, KV-store, GEMV and sampling kernels.
// Activations are bf16 in memory; every reduction accumulates in float.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <cstdint>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_gemv1.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {

namespace {

using bf16 = __nv_bfloat16;

__global__ void embedding_kernel(const uint4* table, const int32_t* ids, uint4* out, int vecs_per_row) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int64_t src = static_cast<int64_t>(ids[t]) * vecs_per_row;
  for (int i = threadIdx.x; i < vecs_per_row; i += blockDim.x) out[static_cast<int64_t>(t) * vecs_per_row + i] = table[src + i];
}

// One block per row; H/8 vectors spread over the threads; the row stays in registers.
template <int kMaxVecsPerThread>
__global__ void rms_norm_kernel(bf16* residual, const bf16* x, const bf16* w, float eps, bf16* out, int H) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int vecs = H / 8;
  float vals[kMaxVecsPerThread][8];
  float ss = 0.0f;
  const size_t row = static_cast<size_t>(t) * H;
#pragma unroll
  for (int j = 0; j < kMaxVecsPerThread; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < vecs) {
      Vec8 a;
      a.u = reinterpret_cast<const uint4*>(x + row)[v];
      if (residual != nullptr) {
        Vec8 r;
        r.u = reinterpret_cast<const uint4*>(residual + row)[v];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          // Residual kept in bf16 like the HF model: round the sum before normalising.
          r.h[e] = __float2bfloat16(__bfloat162float(r.h[e]) + __bfloat162float(a.h[e]));
          vals[j][e] = __bfloat162float(r.h[e]);
        }
        reinterpret_cast<uint4*>(residual + row)[v] = r.u;
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) vals[j][e] = __bfloat162float(a.h[e]);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += vals[j][e] * vals[j][e];
    }
  }
  __shared__ float warp_ss[32];
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) warp_ss[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = threadIdx.x < (blockDim.x >> 5) ? warp_ss[threadIdx.x] : 0.0f;
    s = warp_sum(s);
    if (threadIdx.x == 0) warp_ss[0] = s;
  }
  __syncthreads();
  const float inv = rsqrtf(warp_ss[0] / static_cast<float>(H) + eps);
#pragma unroll
  for (int j = 0; j < kMaxVecsPerThread; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < vecs) {
      Vec8 wv, o;
      wv.u = reinterpret_cast<const uint4*>(w)[v];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        // HF: normalise in float, round to bf16, then multiply by the weight.
        const float n = __bfloat162float(__float2bfloat16(vals[j][e] * inv));
        o.h[e] = __float2bfloat16(n * __bfloat162float(wv.h[e]));
      }
      reinterpret_cast<uint4*>(out + row)[v] = o.u;
    }
  }
}

// grid (T), block (half): thread i computes cos/sin of pair i once and rotates it in
// every head. With k_cache set it also stores the rotated k and the v of the token
// into the paged cache (rope and store_kv fused).
__global__ void rope_kernel(bf16* qkv, const int32_t* positions, const float* inv_freq, int q_heads, int kv_heads,
                            int D, int width, const int32_t* slot_mapping, bf16* k_cache, bf16* v_cache) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int half = D / 2;
  const double angle = static_cast<double>(positions[t]) * static_cast<double>(inv_freq[threadIdx.x]);
  double sd, cd;
  sincos(angle, &sd, &cd);
  const float s = static_cast<float>(sd), c = static_cast<float>(cd);
  bf16* row = qkv + static_cast<size_t>(t) * width;
  const int slot = k_cache != nullptr ? slot_mapping[t] : -1;
  const size_t kv_width = static_cast<size_t>(kv_heads) * D;
  for (int h = 0; h < q_heads + kv_heads; ++h) {
    bf16* x = row + h * D;
    const float a = __bfloat162float(x[threadIdx.x]);
    const float b = __bfloat162float(x[threadIdx.x + half]);
    const bf16 ra = __float2bfloat16(a * c - b * s);
    const bf16 rb = __float2bfloat16(b * c + a * s);
    x[threadIdx.x] = ra;
    x[threadIdx.x + half] = rb;
    if (slot >= 0 && h >= q_heads) {
      bf16* kd = k_cache + slot * kv_width + static_cast<size_t>(h - q_heads) * D;
      kd[threadIdx.x] = ra;
      kd[threadIdx.x + half] = rb;
    }
  }
  if (slot >= 0) {
    const bf16* v = row + static_cast<size_t>(q_heads + kv_heads) * D;
    for (size_t j = threadIdx.x; j < kv_width; j += blockDim.x) v_cache[slot * kv_width + j] = v[j];
  }
}

__global__ void store_kv_kernel(const uint4* qkv, const int32_t* slot_mapping, uint4* k_cache, uint4* v_cache,
                                int row_vecs, int k_offset_vecs, int kv_vecs) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int slot = slot_mapping[t];
  if (slot < 0) return;
  const uint4* src = qkv + static_cast<size_t>(t) * row_vecs + k_offset_vecs;
  for (int i = threadIdx.x; i < 2 * kv_vecs; i += blockDim.x) {
    if (i < kv_vecs) {
      k_cache[static_cast<size_t>(slot) * kv_vecs + i] = src[i];
    } else {
      v_cache[static_cast<size_t>(slot) * kv_vecs + i - kv_vecs] = src[i];
    }
  }
}

__global__ void silu_mul_kernel(const uint4* gu, uint4* out, int vecs_per_row, int64_t total_vecs) {
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
    const float gf = __bfloat162float(g.h[e]);
    // HF rounds silu(gate) to bf16 before the product.
    const float sg = __bfloat162float(__float2bfloat16(gf / (1.0f + __expf(-gf))));
    o.h[e] = __float2bfloat16(sg * __bfloat162float(u.h[e]));
  }
  out[i] = o.u;
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
                                                              float* logprobs) {
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
      // logits[id] - (max + log Σ exp(x - max)) with logits[id] == max; an infinite max
      // is reported as NaN like any other non-finite row (the caller fails the request).
      logprobs[blockIdx.x] = isfinite(acc.m) ? -logf(acc.s) : NAN;
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

void launch_embedding(const void* table, const int32_t* ids, void* out, int T, int H, cudaStream_t stream) {
  if (T == 0) return;
  launch(false, embedding_kernel, dim3(T), dim3(128), 0, stream, static_cast<const uint4*>(table), ids,
         static_cast<uint4*>(out), H / 8);
}

void launch_rms_norm(void* residual, const void* x, const void* w, float eps, void* out, int T, int H,
                     cudaStream_t stream) {
  if (T == 0) return;
  const int vecs = H / 8;
  int threads = ((vecs + 31) / 32) * 32;
  if (threads > 512) threads = 512;
  const int per = (vecs + threads - 1) / threads;
  auto* r = static_cast<bf16*>(residual);
  auto* xx = static_cast<const bf16*>(x);
  auto* ww = static_cast<const bf16*>(w);
  auto* o = static_cast<bf16*>(out);
  if (per <= 1) {
    launch(false, rms_norm_kernel<1>, dim3(T), dim3(threads), 0, stream, r, xx, ww, eps, o, H);
  } else if (per <= 2) {
    launch(false, rms_norm_kernel<2>, dim3(T), dim3(threads), 0, stream, r, xx, ww, eps, o, H);
  } else if (per <= 4) {
    launch(false, rms_norm_kernel<4>, dim3(T), dim3(threads), 0, stream, r, xx, ww, eps, o, H);
  } else {
    launch(false, rms_norm_kernel<8>, dim3(T), dim3(threads), 0, stream, r, xx, ww, eps, o, H);  // H ≤ 32768
  }
}

void launch_rope(void* qkv, const int32_t* positions, const float* inv_freq, int T, int q_heads, int kv_heads,
                 int head_dim, cudaStream_t stream, const int32_t* slot_mapping, void* k_cache, void* v_cache) {
  if (T == 0) return;
  launch(false, rope_kernel, dim3(T), dim3(head_dim / 2), 0, stream, static_cast<bf16*>(qkv), positions, inv_freq,
         q_heads, kv_heads, head_dim, (q_heads + 2 * kv_heads) * head_dim, slot_mapping,
         static_cast<bf16*>(k_cache), static_cast<bf16*>(v_cache));
}

void launch_store_kv(const void* qkv, const int32_t* slot_mapping, void* k_cache, void* v_cache, int T,
                     int q_heads, int kv_heads, int head_dim, cudaStream_t stream) {
  if (T == 0) return;
  const int row_vecs = (q_heads + 2 * kv_heads) * head_dim / 8;
  launch(false, store_kv_kernel, dim3(T), dim3(128), 0, stream, static_cast<const uint4*>(qkv), slot_mapping,
         static_cast<uint4*>(k_cache), static_cast<uint4*>(v_cache), row_vecs, q_heads * head_dim / 8,
         kv_heads * head_dim / 8);
}

void launch_silu_mul(const void* gate_up, void* out, int T, int I, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(T) * (I / 8);
  if (total == 0) return;
  launch(false, silu_mul_kernel, dim3(static_cast<unsigned>((total + 255) / 256)), dim3(256), 0, stream,
         static_cast<const uint4*>(gate_up), static_cast<uint4*>(out), I / 8, total);
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

void launch_argmax_logprob(const float* logits, int R, int V, int32_t* ids, float* logprobs, cudaStream_t stream) {
  if (R == 0) return;
  launch(false, argmax_logprob_kernel, dim3(R), dim3(1024), 0, stream, logits, V, ids, logprobs);
}

void launch_to_bf16(const void* src, bool src_is_f16, bool src_is_f32, void* dst, int64_t n, cudaStream_t stream) {
  if (n == 0 || (!src_is_f16 && !src_is_f32)) return;
  launch(false, to_bf16_kernel, dim3(static_cast<unsigned>((n + 255) / 256)), dim3(256), 0, stream, src,
         src_is_f16 ? 1 : 0, static_cast<bf16*>(dst), n);
}

}  // namespace kr::cuda
