// The layer tail kernel: see cuda_layer_tail.h. Its unit arithmetic is the serving
// stream GEMV's (qgemv_stream_kernel, cuda_qgemm.cu): codes into the mma as stored
// (128 + q), a second mma with an all-ones A for Σx, the group folded as
// s Σ(code x) + beta Σx (decode_fold_meta). The persistent form was measured first
// as a design study (kr-cuda-bench --mega-gemv-bench, mega_gemv_bench.h).
#include "backend/cuda/cuda_layer_tail.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_qgemm_device.cuh"

namespace kr::cuda {
namespace {

constexpr int kWarps = kLayerTailWarps, kThreads = kWarps * 32;
constexpr int kDepth = 4;  // ring units a warp (D 3 / 4 / 6 measured alike in the study)
constexpr int kHVecs = kLayerTailMaxH / (4 * kThreads);  // float4s of h a thread
constexpr int kGluVecs = kLayerTailMaxI / (4 * kThreads);

// A unit of SU 64-column steps (one group): codes [step][tile][lane] uint4, then the
// meta words [tile][row].
template <int SU>
struct Unit {
  static constexpr int kCodeVecs = SU * 2 * 32;
  static constexpr int kBytes = kCodeVecs * 16 + 2 * 16 * 4;
};

__device__ __forceinline__ void cp16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src)
               : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ int ld_acquire(const int* p) {
  int v;
  asm volatile("ld.acquire.gpu.global.s32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ float bfr(float v) { return __bfloat162float(__float2bfloat16(v)); }

// 32-bit arithmetic: units * W < 2^31 (layer_tail_supports).
__device__ __host__ __forceinline__ int range_begin(int units, int w, int W) {
  return static_cast<int>(static_cast<unsigned>(units) * static_cast<unsigned>(w) / static_cast<unsigned>(W));
}

// All CTAs meet (every CTA resident: a cooperative launch). bar[0] counts arrivals,
// bar[32] (its own 128-byte line) is the generation; the last to arrive resets the
// count and moves the generation on, so the barrier is reusable with no reset
// between launches. The CTA's writes before it (the warps' red.add sums) are
// visible to every CTA after it: __syncthreads, then thread 0's fence and arrival.
__device__ __forceinline__ void grid_barrier(int* bar) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const int gen = ld_acquire(bar + 32);
    __threadfence();
    if (atomicAdd(bar, 1) == static_cast<int>(gridDim.x) - 1) {
      atomicExch(bar, 0);
      __threadfence();
      atomicAdd(bar + 32, 1);
    } else {
      while (ld_acquire(bar + 32) == gen) {
      }
    }
  }
  __syncthreads();
}

// Block-wide sum over the kThreads threads (red: kWarps floats); ends with every thread holding it.
__device__ __forceinline__ float cta_sum(float v, float* red) {
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) total += red[w];
  return total;
}

// One unit (a slot) into the warp's sums of rows g and g + 8 of both tiles.
template <int SU, bool kBias>
__device__ __forceinline__ void compute_unit(const uint8_t* slot, const bf16* xs, int grp, float (&acc)[2][2],
                                             int lane, uint32_t magic, bool meta_f16) {
  const int t = lane & 3, g = lane >> 2;
  const uint4* sw = reinterpret_cast<const uint4*>(slot);
  const uint32_t* sm = reinterpret_cast<const uint32_t*>(slot + Unit<SU>::kCodeVecs * 16);
  float part[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}}, psum[4] = {0, 0, 0, 0};
  constexpr uint32_t kOnes = 0x3F803F80u;  // bf16x2 (1, 1)
  const uint32_t ones[4] = {kOnes, kOnes, kOnes, kOnes};
#pragma unroll
  for (int s = 0; s < SU; ++s) {
    const uint4 w0 = sw[(s * 2) * 32 + lane], w1 = sw[(s * 2 + 1) * 32 + lane];
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      // Lane t's 8 columns of chunk c of the step (qgemm_layout.h's lane-contiguous k).
      const uint4 xv = *reinterpret_cast<const uint4*>(xs + (grp * SU + s) * 64 + c * 32 + 8 * t);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint32_t b0 = word_of(xv, 2 * i), b1 = word_of(xv, 2 * i + 1);
        uint32_t af[4];
        a_fragment_raw<QCode::kU4>(af, word_of(w0, 2 * c), word_of(w0, 2 * c + 1), i, magic);
        mma_bf16(part[0], af, b0, b1);
        a_fragment_raw<QCode::kU4>(af, word_of(w1, 2 * c), word_of(w1, 2 * c + 1), i, magic);
        mma_bf16(part[1], af, b0, b1);
        mma_bf16(psum, ones, b0, b1);
      }
    }
  }
  // Every column of B is x, so column 2t of C holds the row's sum on every lane.
#pragma unroll
  for (int ti = 0; ti < 2; ++ti) {
    const float2 m0 = decode_fold_meta<QCode::kU4, kBias>(sm[ti * 16 + g], meta_f16);
    const float2 m1 = decode_fold_meta<QCode::kU4, kBias>(sm[ti * 16 + g + 8], meta_f16);
    acc[ti][0] = fmaf(m0.x, part[ti][0], fmaf(m0.y, psum[0], acc[ti][0]));
    acc[ti][1] = fmaf(m1.x, part[ti][2], fmaf(m1.y, psum[2], acc[ti][1]));
  }
}

__device__ __forceinline__ void pair_tiles(const LayerTailMatrix& m, int pair, int (&tiles)[2]) {
  tiles[0] = m.swiglu ? pair : 2 * pair;
  tiles[1] = m.swiglu ? pair + m.N / 32 : 2 * pair + 1;
}

// The warp's sums of tile pair `pair` added to out (f32 [N]).
__device__ __forceinline__ void flush_pair(const LayerTailMatrix& m, float* out, int pair, const float (&acc)[2][2],
                                           int lane) {
  if ((lane & 3) != 0) return;
  int tiles[2];
  pair_tiles(m, pair, tiles);
  const int g = lane >> 2;
#pragma unroll
  for (int ti = 0; ti < 2; ++ti) {
    atomicAdd(out + tiles[ti] * 16 + g, acc[ti][0]);
    atomicAdd(out + tiles[ti] * 16 + g + 8, acc[ti][1]);
  }
}

// 4 bf16 of p[i..i+3] (8-byte aligned) as floats.
__device__ __forceinline__ float4 load_bf16x4(const void* p, int i) {
  const uint2 v = __ldcg(reinterpret_cast<const uint2*>(static_cast<const bf16*>(p) + i));
  const __nv_bfloat162 a = *reinterpret_cast<const __nv_bfloat162*>(&v.x);
  const __nv_bfloat162 b = *reinterpret_cast<const __nv_bfloat162*>(&v.y);
  return make_float4(__low2float(a), __high2float(a), __low2float(b), __high2float(b));
}
__device__ __forceinline__ uint2 load_raw4(const void* p, int i) {
  return *reinterpret_cast<const uint2*>(static_cast<const bf16*>(p) + i);
}
// norm_apply of 4 values with the weights' 4 bf16 (raw), stored at d.
__device__ __forceinline__ void norm4(const float4& h, float inv, uint2 wr, int kind, bf16* d) {
  const bf16* w = reinterpret_cast<const bf16*>(&wr);
  d[0] = norm_apply(h.x, inv, w[0], kind);
  d[1] = norm_apply(h.y, inv, w[1], kind);
  d[2] = norm_apply(h.z, inv, w[2], kind);
  d[3] = norm_apply(h.w, inv, w[3], kind);
}
__device__ __forceinline__ float4 add_rounded(const float4& r, const float4& o) {
  // residual + bf16(o), rounded to bf16: the unfused norm kernel's residual add.
  return make_float4(bfr(r.x + bfr(o.x)), bfr(r.y + bfr(o.y)), bfr(r.z + bfr(o.z)), bfr(r.w + bfr(o.w)));
}

template <int SU, bool kBias>
__global__ void __launch_bounds__(kThreads, 1) layer_tail_kernel(LayerTailArgs a) {
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr int UB = Unit<SU>::kBytes;
  const int H = a.o.N, I = a.down.K;
  const int xs_elems = max(max(a.o.K, H), I);
  bf16* xs = reinterpret_cast<bf16*>(smem);                                    // [xs_elems] the matrix's input
  float* red = reinterpret_cast<float*>(smem + ((xs_elems * 2 + 15) / 16) * 16);  // [kWarps]
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  uint8_t* ring = reinterpret_cast<uint8_t*>(red + 32) + static_cast<size_t>(warp) * kDepth * UB;
  const int W = gridDim.x * kWarps, gw = blockIdx.x * kWarps + warp;
  const size_t stride = static_cast<size_t>(W) * UB;
  const uint32_t magic = opaque(0x43004300u);
  float* const osum = a.sums;
  float* const gusum = a.sums + H;
  float* const dsum = a.sums + H + 2 * I;

  // The ring's cursor through the warp's units of o, gate_up, down (weights only:
  // nothing the kernels before write, so it starts before the PDL wait).
  const LayerTailMatrix* mats[3] = {&a.o, &a.gate_up, &a.down};
  int lm = 0, li = 0, ln = 0;
  const uint8_t* lsrc = nullptr;
  auto enter = [&](int m) {
    ln = range_begin(mats[m]->units, gw + 1, W) - range_begin(mats[m]->units, gw, W);
    li = 0;
    lsrc = static_cast<const uint8_t*>(mats[m]->image) + static_cast<size_t>(gw) * UB;
  };
  auto next_matrix = [&]() {
    while (li >= ln && lm < 3)
      if (++lm < 3) enter(lm);
  };
  enter(0);
  next_matrix();
  int issued = 0;
  auto issue = [&]() {
    if (lm < 3) {
      const uint4* src = reinterpret_cast<const uint4*>(lsrc);
      uint4* dst = reinterpret_cast<uint4*>(ring + (issued % kDepth) * UB);
#pragma unroll
      for (int k = 0; k < Unit<SU>::kCodeVecs / 32; ++k) cp16(dst + lane + 32 * k, src + lane + 32 * k);
      if (lane < 8) cp16(dst + Unit<SU>::kCodeVecs + lane, src + Unit<SU>::kCodeVecs + lane);
      lsrc += stride;
      ++li;
      next_matrix();
    }
    cp_commit();  // an empty group past the end keeps the count
    ++issued;
  };
#pragma unroll 1
  for (int j = 0; j < kDepth; ++j) issue();
  // The norm weights (no kernel writes them), this thread's float4s of h.
  uint2 w_mlp[kHVecs], w_next[kHVecs];
#pragma unroll
  for (int j = 0; j < kHVecs; ++j) {
    const int i = 4 * (tid + j * kThreads);
    w_mlp[j] = i < H ? load_raw4(a.mlp_norm_w, i) : make_uint2(0, 0);
    w_next[j] = i < H ? load_raw4(a.next_norm_w, i) : make_uint2(0, 0);
  }
  pdl_launch_dependents();
  pdl_wait();

  // o_proj's input: attn as it is.
  for (int v = tid; v < a.o.K / 8; v += kThreads)
    reinterpret_cast<uint4*>(xs)[v] = __ldcg(reinterpret_cast<const uint4*>(a.attn) + v);
  __syncthreads();

  float4 h[kHVecs];  // residual after o_proj (bf16 values), this thread's float4s
  int consumed = 0;
#pragma unroll 1
  for (int m = 0; m < 3; ++m) {
    const LayerTailMatrix& mt = *mats[m];
    float* out = m == 0 ? osum : m == 1 ? gusum : dsum;
    if (m == 1) {
      // residual += bf16(o sums); x = norm(residual, mlp_norm).
      grid_barrier(a.barrier);
      float ss = 0.0f;
#pragma unroll
      for (int j = 0; j < kHVecs; ++j) {
        const int i = 4 * (tid + j * kThreads);
        h[j] = make_float4(0, 0, 0, 0);
        if (i < H) h[j] = add_rounded(load_bf16x4(a.residual, i), __ldcg(reinterpret_cast<const float4*>(osum + i)));
        ss += h[j].x * h[j].x + h[j].y * h[j].y + h[j].z * h[j].z + h[j].w * h[j].w;
      }
      const float inv = rsqrtf(cta_sum(ss, red) / static_cast<float>(H) + a.eps);
#pragma unroll
      for (int j = 0; j < kHVecs; ++j) {
        const int i = 4 * (tid + j * kThreads);
        if (i < H) norm4(h[j], inv, w_mlp[j], a.norm_kind, xs + i);
      }
      __syncthreads();
    } else if (m == 2) {
      // x = bf16(bf16(f(bf16 g)) * bf16 u), as the GEMV's GLU epilogue rounds it.
      grid_barrier(a.barrier);
      float4 gv[kGluVecs], uv[kGluVecs];
#pragma unroll
      for (int j = 0; j < kGluVecs; ++j) {
        const int i = 4 * (tid + j * kThreads);
        gv[j] = i < I ? __ldcg(reinterpret_cast<const float4*>(gusum + i)) : make_float4(0, 0, 0, 0);
        uv[j] = i < I ? __ldcg(reinterpret_cast<const float4*>(gusum + I + i)) : make_float4(0, 0, 0, 0);
      }
#pragma unroll
      for (int j = 0; j < kGluVecs; ++j) {
        const int i = 4 * (tid + j * kThreads);
        if (i < I) {
          const float g4[4] = {gv[j].x, gv[j].y, gv[j].z, gv[j].w}, u4[4] = {uv[j].x, uv[j].y, uv[j].z, uv[j].w};
#pragma unroll
          for (int e = 0; e < 4; ++e)
            xs[i + e] = __float2bfloat16(bfr(glu_activation(bfr(g4[e]), a.activation)) * bfr(u4[e]));
        }
      }
      __syncthreads();
    }
    const int b = range_begin(mt.units, gw, W), n = range_begin(mt.units, gw + 1, W) - b;
    const int groups = mt.groups;
    int pair = b / groups, grp = b - pair * groups;
    float acc[2][2] = {{0, 0}, {0, 0}};
#pragma unroll 1
    for (int k = 0; k < n; ++k) {
      cp_wait<kDepth - 1>();
      __syncwarp();
      compute_unit<SU, kBias>(ring + (consumed % kDepth) * UB, xs, grp, acc, lane, magic, mt.meta_f16);
      __syncwarp();
      issue();
      ++consumed;
      if (++grp == groups) {  // the tile pair ends
        flush_pair(mt, out, pair, acc, lane);
        acc[0][0] = acc[0][1] = acc[1][0] = acc[1][1] = 0.0f;
        grp = 0;
        ++pair;
      }
    }
    if (n > 0 && grp != 0) flush_pair(mt, out, pair, acc, lane);
  }
  cp_wait<0>();
  grid_barrier(a.barrier);
  if (blockIdx.x == 0) {
    // residual += bf16(down sums); normed = norm(residual, next_norm); the sums back to zero.
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kHVecs; ++j) {
      const int i = 4 * (tid + j * kThreads);
      if (i < H) {
        float4* dp = reinterpret_cast<float4*>(dsum + i);
        h[j] = add_rounded(h[j], __ldcg(dp));
        __stcg(dp, make_float4(0, 0, 0, 0));
        bf16* r = static_cast<bf16*>(a.residual) + i;
        r[0] = __float2bfloat16(h[j].x);
        r[1] = __float2bfloat16(h[j].y);
        r[2] = __float2bfloat16(h[j].z);
        r[3] = __float2bfloat16(h[j].w);
      }
      ss += h[j].x * h[j].x + h[j].y * h[j].y + h[j].z * h[j].z + h[j].w * h[j].w;
    }
    const float inv = rsqrtf(cta_sum(ss, red) / static_cast<float>(H) + a.eps);
#pragma unroll
    for (int j = 0; j < kHVecs; ++j) {
      const int i = 4 * (tid + j * kThreads);
      if (i < H) norm4(h[j], inv, w_next[j], a.norm_kind, static_cast<bf16*>(a.normed) + i);
    }
  } else {
    // o's and gate_up's sums back to zero (every CTA has read them: the barrier above).
    const int n4 = (H + 2 * I) / 4;
    for (int v = (blockIdx.x - 1) * kThreads + tid; v < n4; v += (gridDim.x - 1) * kThreads)
      __stcg(reinterpret_cast<float4*>(a.sums) + v, make_float4(0, 0, 0, 0));
  }
}

// Unit i of warp w's range of w's units into the image, as a ring slot's image:
// block (w, i), Unit::kCodeVecs + 32 threads (the code vectors, then the meta words).
template <int SU>
__global__ void build_image_kernel(QWeight q, LayerTailMatrix m, uint8_t* dst) {
  const int W = gridDim.x, w = blockIdx.x, i = blockIdx.y;
  const int b = range_begin(m.units, w, W), e = range_begin(m.units, w + 1, W);
  const int u = b + i;
  if (u >= e) return;
  const int pair = u / m.groups, grp = u - pair * m.groups;
  int tiles[2];
  pair_tiles(m, pair, tiles);
  uint8_t* slot = dst + (static_cast<size_t>(i) * W + w) * Unit<SU>::kBytes;
  const int t = threadIdx.x;
  if (t < Unit<SU>::kCodeVecs) {
    const int s = t / 64, ti = (t / 32) % 2, lane = t % 32;  // [step][tile][lane]
    reinterpret_cast<uint4*>(slot)[t] =
        static_cast<const uint4*>(q.codes)[q_word_index(tiles[ti], q.steps, SU * grp + s, lane)];
  } else {
    const int j = t - Unit<SU>::kCodeVecs, ti = j / 16, r = j % 16;
    reinterpret_cast<uint32_t*>(slot + Unit<SU>::kCodeVecs * 16)[j] = q.meta[q_meta_index(tiles[ti], q.groups, grp, r)];
  }
}

int steps_a_unit(const QWeight& w) { return w.group / 64; }
int unit_bytes(int su) { return su == 1 ? Unit<1>::kBytes : Unit<2>::kBytes; }
int units_of(const QWeight& w) { return (w.N / 32) * w.groups; }

template <int SU, bool kBias>
void configure_one() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(layer_tail_kernel<SU, kBias>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     227 * 1024));
}

}  // namespace

bool layer_tail_takes(const QWeight& w) {
  return w.code == QCode::kU4 && w.perm == nullptr && !w.w8a8 && (w.group == 64 || w.group == 128) &&
         w.N % 32 == 0 && w.K % w.group == 0 && w.Kp == w.K && w.Np == w.N;
}

size_t layer_tail_image_bytes(const QWeight& w, int ctas) {
  const int W = ctas * kWarps;
  const size_t rows = (static_cast<size_t>(units_of(w)) + W - 1) / W;
  return rows * W * unit_bytes(steps_a_unit(w));
}

LayerTailMatrix build_layer_tail_image(const QWeight& w, bool swiglu, int ctas, void* image, cudaStream_t stream) {
  LayerTailMatrix m;
  m.image = image;
  m.N = w.N;
  m.K = w.K;
  m.groups = w.groups;
  m.units = units_of(w);
  m.swiglu = swiglu;
  m.meta_f16 = w.meta_f16;
  const int W = ctas * kWarps;
  const int rows = (m.units + W - 1) / W;
  const int su = steps_a_unit(w);
  if (su == 1) {
    launch(false, build_image_kernel<1>, dim3(W, rows), dim3(Unit<1>::kCodeVecs + 32), 0, stream, w, m,
           static_cast<uint8_t*>(image));
  } else {
    launch(false, build_image_kernel<2>, dim3(W, rows), dim3(Unit<2>::kCodeVecs + 32), 0, stream, w, m,
           static_cast<uint8_t*>(image));
  }
  return m;
}

size_t layer_tail_smem_bytes(const LayerTailArgs& a) {
  const int xs_elems = std::max(std::max(a.o.K, a.o.N), a.down.K);
  const int su = a.o.groups > 0 ? a.o.K / a.o.groups / 64 : 1;
  return static_cast<size_t>((xs_elems * 2 + 15) / 16) * 16 + 32 * sizeof(float) +
         static_cast<size_t>(kWarps) * kDepth * unit_bytes(su);
}

void configure_layer_tail() {
  configure_one<1, false>();
  configure_one<1, true>();
  configure_one<2, false>();
  configure_one<2, true>();
}

bool layer_tail_supports(const LayerTailArgs& a) {
  const int H = a.o.N, I = a.down.K;
  if (a.o.image == nullptr || a.gate_up.image == nullptr || a.down.image == nullptr) return false;
  if (a.down.N != H || a.gate_up.K != H || a.gate_up.N != 2 * I || !a.gate_up.swiglu || a.o.swiglu || a.down.swiglu)
    return false;
  if (H > kLayerTailMaxH || I > kLayerTailMaxI || H % 8 != 0 || I % 16 != 0 || a.o.K % 8 != 0) return false;
  const int g = a.o.K / a.o.groups;  // one group size for the three
  if (a.gate_up.K / a.gate_up.groups != g || a.down.K / a.down.groups != g || (g != 64 && g != 128)) return false;
  if (a.attn == nullptr || a.residual == nullptr || a.normed == nullptr || a.mlp_norm_w == nullptr ||
      a.next_norm_w == nullptr || a.sums == nullptr || a.barrier == nullptr)
    return false;
  return layer_tail_smem_bytes(a) <= 227 * 1024;
}

bool launch_layer_tail(const LayerTailArgs& a, int ctas, bool pdl, cudaStream_t stream) {
  if (!layer_tail_supports(a)) return false;
  // Every CTA waits for all the others at the grid barriers: the cooperative launch
  // makes the driver start the grid only with all of them resident.
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(ctas));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = layer_tail_smem_bytes(a);
  cfg.stream = stream;
  cudaLaunchAttribute attrs[2];
  attrs[0].id = cudaLaunchAttributeCooperative;
  attrs[0].val.cooperative = 1;
  attrs[1] = pdl_attr(pdl);
  cfg.attrs = attrs;
  cfg.numAttrs = 2;
  const bool g128 = a.o.K / a.o.groups == 128;
  if (g128) {
    if (a.bias) {
      KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, layer_tail_kernel<2, true>, a));
    } else {
      KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, layer_tail_kernel<2, false>, a));
    }
  } else if (a.bias) {
    KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, layer_tail_kernel<1, true>, a));
  } else {
    KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, layer_tail_kernel<1, false>, a));
  }
  return true;
}

}  // namespace kr::cuda
