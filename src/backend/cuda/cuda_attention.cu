// Paged causal attention, one kernel for prefill, chunked prefill and decode.
//
// A block takes one tile (up to kRows query rows = tile tokens × the q heads of
// one kv head, so each K/V tile read from the cache serves the whole GQA group)
// and walks its keys in tiles of kKeys: K/V go to shared memory as float,
// scores Q·Kᵀ, an online softmax per row, then P·V into register accumulators.
// Decode steps have few rows per tile; there the keys are split over
// blockIdx.z (flash-decoding) and a second kernel merges the splits by
// log-sum-exp.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_kernels.h"

namespace kr::cuda {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kRows = 64;     // query rows per tile
constexpr int kKeys = 32;     // keys per inner tile (= warp size: one lane per key in the softmax)
constexpr int kThreads = 128;

template <int D>
struct Smem {
  static constexpr int kQ = kRows * (D + 1);   // padded: rows land in different banks
  static constexpr int kK = kKeys * (D + 1);
  static constexpr int kV = kKeys * D;
  static constexpr int kP = kRows * kKeys;
  static constexpr size_t bytes = sizeof(float) * (kQ + kK + kV + kP + 4 * kRows);
};

template <int D>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(AttnArgs a) {
  extern __shared__ float smem[];
  float* Qs = smem;
  float* Ks = Qs + Smem<D>::kQ;
  float* Vs = Ks + Smem<D>::kK;
  float* Ps = Vs + Smem<D>::kV;
  float* row_m = Ps + Smem<D>::kP;
  float* row_l = row_m + kRows;
  float* row_alpha = row_l + kRows;
  int* row_pos = reinterpret_cast<int*>(row_alpha + kRows);

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const AttnTile tile = a.tiles[blockIdx.x];
  const int g = blockIdx.y, split = blockIdx.z;
  const int group = a.q_heads / a.kv_heads;
  const int R = (kRows / group) * group < tile.count * group ? (kRows / group) * group : tile.count * group;
  const int width = (a.q_heads + 2 * a.kv_heads) * D;
  const int ctx = a.context_lens[tile.seq];

  // Q rows (scaled) and each row's causal limit.
  for (int i = tid; i < kRows * (D / 8); i += kThreads) {
    const int r = i / (D / 8), c = i % (D / 8);
    float* dst = Qs + r * (D + 1) + c * 8;
    if (r < R) {
      const int token = tile.first + r / group, h = g * group + r % group;
      union {
        uint4 u;
        bf16 h[8];
      } v;
      v.u = *reinterpret_cast<const uint4*>(static_cast<const bf16*>(a.qkv) + static_cast<size_t>(token) * width +
                                            h * D + c * 8);
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = __bfloat162float(v.h[e]) * a.scale;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = 0.0f;
    }
  }
  int kend = 0;  // keys [0, kend) are visible to some row of the tile
  if (tid < kRows) {
    int pos = -1;
    if (tid < R) {
      pos = a.positions[tile.first + tid / group];
      if (pos >= ctx) pos = ctx - 1;
    }
    row_pos[tid] = pos;
    row_m[tid] = -INFINITY;
    row_l[tid] = 0.0f;
  }
  // The last token of a tile has the largest position (tokens of a sequence are in order).
  kend = a.positions[tile.first + tile.count - 1] + 1;
  if (kend > ctx) kend = ctx;
  int kbeg = 0, kstop = kend;
  if (a.num_splits > 1) {
    kbeg = split * a.split_keys;
    kstop = min(kend, kbeg + a.split_keys);
  }

  constexpr int DV = (D + 31) / 32;  // output dims per lane
  float acc[16][DV];
#pragma unroll
  for (int i = 0; i < 16; ++i)
#pragma unroll
    for (int k = 0; k < DV; ++k) acc[i][k] = 0.0f;

  const int32_t* table = a.block_tables + static_cast<size_t>(tile.seq) * a.max_blocks;
  const size_t kv_row = static_cast<size_t>(a.kv_heads) * D;
  for (int kt = kbeg; kt < kstop; kt += kKeys) {
    const int nkeys = min(kKeys, kstop - kt);
    __syncthreads();  // previous tile's Ks/Vs/Ps fully used (and Q/row state written)
    for (int i = tid; i < kKeys * (D / 8); i += kThreads) {
      const int key = i / (D / 8), c = i % (D / 8);
      float* kd = Ks + key * (D + 1) + c * 8;
      float* vd = Vs + key * D + c * 8;
      if (key < nkeys) {
        const int j = kt + key;
        const size_t slot = static_cast<size_t>(table[j / a.block_size]) * a.block_size + j % a.block_size;
        const size_t off = slot * kv_row + static_cast<size_t>(g) * D + c * 8;
        union {
          uint4 u;
          bf16 h[8];
        } kv, vv;
        kv.u = *reinterpret_cast<const uint4*>(static_cast<const bf16*>(a.k_cache) + off);
        vv.u = *reinterpret_cast<const uint4*>(static_cast<const bf16*>(a.v_cache) + off);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          kd[e] = __bfloat162float(kv.h[e]);
          vd[e] = __bfloat162float(vv.h[e]);
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          kd[e] = 0.0f;
          vd[e] = 0.0f;
        }
      }
    }
    __syncthreads();
    // Scores.
    if (R > 16) {
      // 4 rows × 4 keys per thread (keys strided by 8 so the padded rows of Ks spread over banks).
      const int rg = tid >> 3, kg = tid & 7;
      if (rg * 4 < R) {
        float s[4][4] = {};
        for (int d = 0; d < D; ++d) {
          float q[4], k[4];
#pragma unroll
          for (int i = 0; i < 4; ++i) q[i] = Qs[(rg * 4 + i) * (D + 1) + d];
#pragma unroll
          for (int j = 0; j < 4; ++j) k[j] = Ks[(kg + 8 * j) * (D + 1) + d];
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) s[i][j] = fmaf(q[i], k[j], s[i][j]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int r = rg * 4 + i;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int key = kg + 8 * j;
            const bool ok = key < nkeys && kt + key <= row_pos[r];
            Ps[r * kKeys + key] = ok ? s[i][j] : -INFINITY;
          }
        }
      }
    } else {
      // Few rows (decode): one (row, key) pair per thread.
      for (int p = tid; p < R * kKeys; p += kThreads) {
        const int r = p / kKeys, key = p % kKeys;
        float s = 0.0f;
#pragma unroll 16
        for (int d = 0; d < D; ++d) s = fmaf(Qs[r * (D + 1) + d], Ks[key * (D + 1) + d], s);
        const bool ok = key < nkeys && kt + key <= row_pos[r];
        Ps[r * kKeys + key] = ok ? s : -INFINITY;
      }
    }
    __syncthreads();
    // Online softmax: one warp per row, one lane per key.
    for (int r = warp; r < R; r += kThreads / 32) {
      const float s = Ps[r * kKeys + lane];
      float mt = s;
      for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
      const float m_old = row_m[r];
      const float m_new = fmaxf(m_old, mt);
      float p = 0.0f, alpha = 1.0f;
      if (m_new != -INFINITY) {
        p = __expf(s - m_new);
        alpha = __expf(m_old - m_new);
      }
      Ps[r * kKeys + lane] = p;
      float sum = p;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) {
        row_l[r] = row_l[r] * alpha + sum;
        row_m[r] = m_new;
        row_alpha[r] = alpha;
      }
    }
    __syncthreads();
    // P·V: warp w owns rows [16w, 16w + 16), lane owns dims lane + 32k.
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int r = warp * 16 + i;
      if (r < R) {
        const float al = row_alpha[r];
#pragma unroll
        for (int k = 0; k < DV; ++k) acc[i][k] *= al;
      }
    }
    if (warp * 16 < R) {
      for (int key = 0; key < nkeys; ++key) {
        float v[DV];
#pragma unroll
        for (int k = 0; k < DV; ++k) v[k] = (lane + 32 * k < D) ? Vs[key * D + lane + 32 * k] : 0.0f;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          const int r = warp * 16 + i;
          if (r < R) {
            const float p = Ps[r * kKeys + key];
#pragma unroll
            for (int k = 0; k < DV; ++k) acc[i][k] = fmaf(p, v[k], acc[i][k]);
          }
        }
      }
    }
  }
  __syncthreads();
  // Results: normalised rows (and their max/sum when split).
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int r = warp * 16 + i;
    if (r >= R) continue;
    const float l = row_l[r];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    if (a.num_splits == 1) {
      const int token = tile.first + r / group, h = g * group + r % group;
      bf16* o = static_cast<bf16*>(a.out) + static_cast<size_t>(token) * a.q_heads * D + h * D;
#pragma unroll
      for (int k = 0; k < DV; ++k)
        if (lane + 32 * k < D) o[lane + 32 * k] = __float2bfloat16(acc[i][k] * inv);
    } else {
      const size_t p = ((static_cast<size_t>(blockIdx.x) * a.kv_heads + g) * R + r) * a.num_splits + split;
      float* o = a.partial_out + p * D;
#pragma unroll
      for (int k = 0; k < DV; ++k)
        if (lane + 32 * k < D) o[lane + 32 * k] = acc[i][k] * inv;
      if (lane == 0) {
        a.partial_ml[p * 2] = row_m[r];
        a.partial_ml[p * 2 + 1] = l;
      }
    }
  }
}

// grid (num_tiles, kv_heads, rows): merges the splits of one row; D threads.
__global__ void combine_splits_kernel(AttnArgs a, int D) {
  const AttnTile tile = a.tiles[blockIdx.x];
  const int g = blockIdx.y, r = blockIdx.z;
  const int group = a.q_heads / a.kv_heads;
  const int R = (kRows / group) * group < tile.count * group ? (kRows / group) * group : tile.count * group;
  if (r >= R) return;
  const size_t base = ((static_cast<size_t>(blockIdx.x) * a.kv_heads + g) * R + r) * a.num_splits;
  float m = -INFINITY;
  for (int s = 0; s < a.num_splits; ++s)
    if (a.partial_ml[(base + s) * 2 + 1] > 0.0f) m = fmaxf(m, a.partial_ml[(base + s) * 2]);
  float num = 0.0f, den = 0.0f;
  for (int s = 0; s < a.num_splits; ++s) {
    const float l = a.partial_ml[(base + s) * 2 + 1];
    if (l <= 0.0f) continue;
    const float w = l * __expf(a.partial_ml[(base + s) * 2] - m);
    num += w * a.partial_out[(base + s) * D + threadIdx.x];
    den += w;
  }
  const int token = tile.first + r / group, h = g * group + r % group;
  static_cast<bf16*>(a.out)[static_cast<size_t>(token) * a.q_heads * D + h * D + threadIdx.x] =
      __float2bfloat16(den > 0.0f ? num / den : 0.0f);
}

template <int D>
void launch_d(const AttnArgs& a, cudaStream_t stream) {
  static bool configured = false;  // one backend thread: no race
  if (!configured) {
    cudaFuncSetAttribute(paged_attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(Smem<D>::bytes));
    configured = true;
  }
  const dim3 grid(a.num_tiles, a.kv_heads, a.num_splits);
  paged_attention_kernel<D><<<grid, kThreads, Smem<D>::bytes, stream>>>(a);
  if (a.num_splits > 1) {
    const int group = a.q_heads / a.kv_heads;
    const dim3 cgrid(a.num_tiles, a.kv_heads, (kRows / group) * group);
    combine_splits_kernel<<<cgrid, D, 0, stream>>>(a, D);
  }
}

}  // namespace

int attn_tile_tokens(int group) { return group >= kRows ? 1 : kRows / group; }

void launch_paged_attention(const AttnArgs& a, cudaStream_t stream) {
  if (a.num_tiles == 0) return;
  switch (a.head_dim) {
    case 16: launch_d<16>(a, stream); break;
    case 32: launch_d<32>(a, stream); break;
    case 64: launch_d<64>(a, stream); break;
    case 128: launch_d<128>(a, stream); break;
    case 256: launch_d<256>(a, stream); break;
    default: break;
  }
}

}  // namespace kr::cuda
