// The row op of RmsNormArgs (cuda_kernels.h: optional norm of x, optional residual
// add, the norm) on one row, shared by rms_norm_kernel (cuda_kernels.cu) and the
// batch-1 GEMV's kAddRmsNorm epilogue (cuda_gemv1.cu), so that the two compute it
// with the same instructions in the same order and agree bit for bit.
//
// The reduction layout: rms_norm_threads(H) "norm threads", thread t owning the
// 16-byte vectors t, t + nt, t + 2 nt, ... of the row, its squares summed in that
// order, then each warp's sums by warp_sum, then the warps' sums by warp_sum in
// warp 0 (zeros past the last warp). A block of B threads stands for threads
// t + B i (i < kI) of that layout; rms_norm_kernel runs with B = nt and kI = 1,
// the GEMV epilogue with B = 128 and kI = 4.
// (Included only by .cu files.)
#pragma once

#include <cuda_bf16.h>

#include <cstddef>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kr::cuda {

// Norm threads of a row of H values: one vector of 8 per thread in whole warps,
// at most 512 (then vectors v and v + 512 ... share a thread).
__host__ __device__ constexpr int rms_norm_threads(int H) {
  const int warps_of_vectors = (H / 8 + 31) / 32;
  return warps_of_vectors * 32 > 512 ? 512 : warps_of_vectors * 32;
}

// Σ ss over the nt norm threads that the block's threads stand for (ss[i]: the
// sum of norm thread threadIdx.x + blockDim.x * i, 0 when it owns nothing), in
// the layout's order; the same value in every thread. scratch: 32 floats of
// shared memory, not written again by the caller.
template <int kI>
__device__ __forceinline__ float norm_block_sum(const float (&ss)[kI], int nt, float* scratch) {
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
#pragma unroll
  for (int i = 0; i < kI; ++i) {
    const float s = warp_sum(ss[i]);
    const int norm_warp = (threadIdx.x >> 5) + warps * i;
    if (lane == 0 && norm_warp < (nt >> 5)) scratch[norm_warp] = s;
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = static_cast<int>(threadIdx.x) < (nt >> 5) ? scratch[threadIdx.x] : 0.0f;
    s = warp_sum(s);
    if (threadIdx.x == 0) scratch[0] = s;
  }
  __syncthreads();
  return scratch[0];
}

// RmsNormArgs' op on the row at element offset `row` of a.x, a.x_normed,
// a.residual and a.out, by the whole block (every thread calls it):
//   x' = pre ? norm(x, pre_w) (written to x_normed) : x
//   residual (when set) = bf16(residual + x'); y = residual or x'
//   out = norm(y, w)
// in the norm-thread layout of nt = rms_norm_threads(a.H) threads, each owning at
// most kJ vectors (nt * kJ * 8 >= a.H) and standing for kI of them per block
// thread (blockDim.x * kI >= nt). Every stage's values are bf16 (the roundings of
// the model), held as such. x and residual are read through L2 (__ldcg: another
// block of the same grid may have written x), both before the first reduction;
// residual must not alias x or x_normed. pre and kind are compile-time constants
// in rms_norm_kernel, runtime values in the GEMV epilogue; the arithmetic is the same.
template <int kI, int kJ>
__device__ __forceinline__ void rms_norm_row(const RmsNormArgs& a, size_t row, bool pre, int kind,
                                             float* scratch, float* scratch_pre) {
  using bf16 = __nv_bfloat16;
  const int H = a.H, vecs = H / 8, nt = rms_norm_threads(H);
  // The vector index of slot (i, j), or vecs when norm thread i of this thread owns none.
  auto vec = [&](int i, int j) {
    const int t = static_cast<int>(threadIdx.x) + static_cast<int>(blockDim.x) * i;
    const int v = t + j * nt;
    return t < nt && v < vecs ? v : vecs;
  };
  const uint4* x = reinterpret_cast<const uint4*>(static_cast<const bf16*>(a.x) + row);
  uint4* res = a.residual != nullptr ? reinterpret_cast<uint4*>(static_cast<bf16*>(a.residual) + row) : nullptr;
  Vec8 y[kI][kJ], r[kI][kJ];
#pragma unroll
  for (int i = 0; i < kI; ++i)
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
      const int v = vec(i, j);
      if (v < vecs) {
        y[i][j].u = __ldcg(x + v);
        if (res != nullptr) r[i][j].u = __ldcg(res + v);
      }
    }
  if (pre) {
    // x' = norm(x, pre_w), rounded to bf16 (Gemma's post-attention/feedforward norm).
    float ss[kI];
#pragma unroll
    for (int i = 0; i < kI; ++i) {
      ss[i] = 0.0f;
#pragma unroll
      for (int j = 0; j < kJ; ++j)
        if (vec(i, j) < vecs) ss[i] = add_squares8(ss[i], y[i][j]);
    }
    const float inv_x = inv_rms(norm_block_sum<kI>(ss, nt, scratch_pre), H, a.eps);
    uint4* xn = reinterpret_cast<uint4*>(static_cast<bf16*>(a.x_normed) + row);
#pragma unroll
    for (int i = 0; i < kI; ++i)
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const int v = vec(i, j);
        if (v < vecs) {
          Vec8 w;
          w.u = reinterpret_cast<const uint4*>(a.pre_w)[v];
#pragma unroll
          for (int e = 0; e < 8; ++e) y[i][j].h[e] = norm_apply(__bfloat162float(y[i][j].h[e]), inv_x, w.h[e], kind);
          xn[v] = y[i][j].u;
        }
      }
  }
  if (res != nullptr) {
#pragma unroll
    for (int i = 0; i < kI; ++i)
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const int v = vec(i, j);
        if (v < vecs) {
          // Residual kept in bf16 like the HF model: round the sum before normalising.
#pragma unroll
          for (int e = 0; e < 8; ++e)
            y[i][j].h[e] = __float2bfloat16(__bfloat162float(r[i][j].h[e]) + __bfloat162float(y[i][j].h[e]));
          res[v] = y[i][j].u;
        }
      }
  }
  float ss[kI];
#pragma unroll
  for (int i = 0; i < kI; ++i) {
    ss[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < kJ; ++j)
      if (vec(i, j) < vecs) ss[i] = add_squares8(ss[i], y[i][j]);
  }
  const float inv = inv_rms(norm_block_sum<kI>(ss, nt, scratch), H, a.eps);
  uint4* out = reinterpret_cast<uint4*>(static_cast<bf16*>(a.out) + row);
#pragma unroll
  for (int i = 0; i < kI; ++i)
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
      const int v = vec(i, j);
      if (v < vecs) {
        Vec8 w, o;
        w.u = reinterpret_cast<const uint4*>(a.w)[v];
#pragma unroll
        for (int e = 0; e < 8; ++e) o.h[e] = norm_apply(__bfloat162float(y[i][j].h[e]), inv, w.h[e], kind);
        out[v] = o.u;
      }
    }
}

}  // namespace kr::cuda
