// Short-context decode attention (cuda_decode_attention.h): one thread-block
// cluster of C blocks (8 warps each) per (token, kv head); the cluster's warps
// share the token's keys, all the q heads of the GQA group at once, so each K/V
// row is read once.
//
// A key row of one kv head (D bf16) is D/8 lanes' 16-byte loads: a warp load
// covers 32/(D/8) keys (1, 2 or 4 for D = 256, 128, 64). A warp takes batches of
// kSlots such loads (4..16 keys, aligned to the batch size), batch b0 + u,
// b0 + u + U, ... (u: the warp's index in the cluster, blocks first; U: the
// cluster's warps), and
// keeps two batches of K/V in flight in registers (their block-table entries one
// batch further ahead). Per batch: dot products on 8 dims per lane, summed over
// the key's lanes by shuffles; an online softmax whose running max is uniform
// over the warp, so that the lanes of different keys can sum their accumulators
// at the end. No shared memory and no barrier until the loop ends; then the
// warps' states merge in shared memory (one barrier), and the blocks' states
// through distributed shared memory (two cluster barriers: one before the reads,
// one so that no block leaves while another still reads it).
//
// Latency, not bandwidth, sets the time here (a 128-key layer reads ~0.5 MB):
// the dependent loads are tile -> (position, context) -> K/V, with the
// block-table entries loaded alongside the position on the guess that no window
// cuts the start (reloaded when one does); with PDL all of that but Q and the
// token's own key happens before pdl_wait.
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_decode_attention.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kv_fp8.cuh"
#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {
namespace {

namespace cg = cooperative_groups;
using bf16 = __nv_bfloat16;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxCluster = 8;  // portable cluster size
constexpr unsigned kFull = 0xffffffffu;

// D: head dim; GM: the GQA group rounded up to 1, 2, 4 or 8 (rows of registers).
template <int D, int GM>
struct Shape {
  static constexpr int kLanesPerKey = D / 8;                  // 8, 16, 32
  static constexpr int kKeysPerLoad = 32 / kLanesPerKey;      // 4, 2, 1
  static constexpr int kSlots = GM >= 8 ? 2 : 4;              // 16-byte K (and V) loads per lane per batch
  static constexpr int kBatchKeys = kSlots * kKeysPerLoad;    // keys per warp batch
  // Shared memory in floats: the warps' accumulators [kWarps][GM][D] and (max, sum)
  // [kWarps][GM][2], then the block's [GM][D] and [GM][2].
  static constexpr int kWarpAcc = kWarps * GM * D;
  static constexpr int kWarpMl = kWarps * GM * 2;
  static constexpr int kBlockAcc = GM * D;
  static constexpr size_t kSmemBytes = sizeof(float) * (kWarpAcc + kWarpMl + kBlockAcc + GM * 2);
};

__device__ __forceinline__ void unpack8(const uint4& u, float (&f)[8]) {
  union {
    uint4 u;
    __nv_bfloat162 h[4];
  } p;
  p.u = u;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(p.h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

// KV: the cache element (KvBf16 or KvFp8, cuda_kv_fp8.cuh). An e4m3 key row is
// D/8 lanes' 8-byte loads (the same lanes and keys as bf16's 16-byte ones),
// widened to bf16 in registers when used.
template <int D, int GM, typename KV>
__global__ void __launch_bounds__(kThreads) decode_attention_kernel(const AttnArgs a) {
  using Sh = Shape<D, GM>;
  constexpr int LPK = Sh::kLanesPerKey, NS = Sh::kSlots, KB = Sh::kBatchKeys, KPL = Sh::kKeysPerLoad;
  extern __shared__ __align__(16) float smem[];
  float* w_acc = smem;                  // [kWarps][GM][D]
  float* w_ml = w_acc + Sh::kWarpAcc;   // [kWarps][GM][2]
  float* b_acc = w_ml + Sh::kWarpMl;    // [GM][D]
  float* b_ml = b_acc + Sh::kBlockAcc;  // [GM][2]

  pdl_launch_dependents();
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int kg = lane / LPK, dl = lane % LPK;  // the lane's key within a load, and its 8 dims [8 dl, 8 dl + 8)
  const int C = gridDim.x;                     // the cluster is the grid's x
  const int g = blockIdx.y;
  // Warp index in the cluster, blocks first: when the context is shorter than the
  // table, the busy warps spread over every block (and SM) of the cluster.
  const int U = C * kWarps, u = warp * C + blockIdx.x;
  const AttnTile tile = a.tiles[blockIdx.z];
  const int group = a.q_heads / a.kv_heads;
  const int bs = a.block_size;
  const int32_t* table = a.block_tables + static_cast<size_t>(tile.seq) * a.max_blocks;

  // Block-table entries of a batch's keys for this lane (0 past the table: never used).
  auto table_load = [&](int batch, int (&blk)[NS]) {
#pragma unroll
    for (int s = 0; s < NS; ++s) {
      const int b = (batch * KB + s * KPL + kg) / bs;
      blk[s] = b < a.max_blocks ? table[b] : 0;
    }
  };
  // The first batches' entries on the guess b0 = 0, alongside the position loads.
  int tc[NS], tn[NS], tnn[NS];
  table_load(u, tc);
  table_load(u + U, tn);
  const int ctx = a.context_lens[tile.seq];
  const int qpos = a.positions[tile.first];
  const int pos = min(qpos, ctx - 1);
  const int kbeg = a.window > 0 ? max(0, pos - a.window + 1) : 0;
  const int kend = pos + 1;  // keys [kbeg, kend)
  const int b0 = kbeg / KB, bend = (kend + KB - 1) / KB;
  if (b0 != 0) {
    table_load(b0 + u, tc);
    table_load(b0 + u + U, tn);
  }
  table_load(b0 + u + 2 * U, tnn);

  const size_t kv_row = static_cast<size_t>(a.kv_heads) * D;
  const size_t lane_off = static_cast<size_t>(g) * D + dl * 8;
  using Chunk = typename KV::Chunk;
  // K/V of the batch's keys in [lo, hi) for this lane; the others become zeros
  // (keep: left as they are).
  auto kv_load = [&](int batch, const int (&blk)[NS], int lo, int hi, Chunk (&K)[NS], Chunk (&V)[NS], bool keep) {
#pragma unroll
    for (int s = 0; s < NS; ++s) {
      const int j = batch * KB + s * KPL + kg;
      if (j >= lo && j < hi) {
        const size_t off = (static_cast<size_t>(blk[s]) * bs + j % bs) * kv_row;
        K[s] = load_chunk<KV>(a.k_cache, lane_off + off);
        V[s] = load_chunk<KV>(a.v_cache, lane_off + off);
      } else if (!keep) {
        K[s] = zero_chunk<KV>();
        V[s] = zero_chunk<KV>();
      }
    }
  };
  // Keys before the token's own position: no kernel of this step writes them.
  const int lim_pre = min(qpos, kend);
  Chunk Kc[NS], Vc[NS], Kn[NS], Vn[NS];
  kv_load(b0 + u, tc, kbeg, lim_pre, Kc, Vc, false);
  kv_load(b0 + u + U, tn, kbeg, lim_pre, Kn, Vn, false);

  pdl_wait();
  // The token's own key (the kernel before stored it) and Q.
  if (lim_pre < kend) {
    kv_load(b0 + u, tc, lim_pre, kend, Kc, Vc, true);
    kv_load(b0 + u + U, tn, lim_pre, kend, Kn, Vn, true);
  }
  // Q stays bf16 in registers (4 per row) and is widened per use; the scale goes on the dot product.
  uint4 q[GM];
  {
    const size_t width = static_cast<size_t>(a.q_heads + 2 * a.kv_heads) * D;
    const bf16* qrow = static_cast<const bf16*>(a.qkv) + static_cast<size_t>(tile.first) * width +
                       static_cast<size_t>(g) * group * D + dl * 8;
#pragma unroll
    for (int r = 0; r < GM; ++r) {
      q[r] = make_uint4(0, 0, 0, 0);
      if (r < group) q[r] = *reinterpret_cast<const uint4*>(qrow + r * D);
    }
  }
  const float scale = a.scale;

  // Online softmax; m is uniform over the warp, l and acc cover this lane's keys.
  float m[GM], l[GM], acc[GM][8];
#pragma unroll
  for (int r = 0; r < GM; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[r][e] = 0.0f;
  }
  const float cap = a.softcap;
  for (int i = b0 + u; i < bend; i += U) {  // warp-uniform trip count
    float s[NS][GM];
#pragma unroll
    for (int sl = 0; sl < NS; ++sl) {
      float kf[8];
      unpack8(KV::widen(Kc[sl]), kf);
#pragma unroll
      for (int r = 0; r < GM; ++r) {
        float qf[8];
        unpack8(q[r], qf);
        float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e += 2) {
          d0 = fmaf(qf[e], kf[e], d0);
          d1 = fmaf(qf[e + 1], kf[e + 1], d1);
        }
        s[sl][r] = d0 + d1;
      }
    }
#pragma unroll
    for (int o = LPK / 2; o > 0; o >>= 1)
#pragma unroll
      for (int sl = 0; sl < NS; ++sl)
#pragma unroll
        for (int r = 0; r < GM; ++r) s[sl][r] += __shfl_xor_sync(kFull, s[sl][r], o);
#pragma unroll
    for (int sl = 0; sl < NS; ++sl) {
      const int j = i * KB + sl * KPL + kg;
      const bool ok = j >= kbeg && j < kend;
#pragma unroll
      for (int r = 0; r < GM; ++r) {
        float x = s[sl][r] * scale;
        if (cap > 0.0f) x = cap * tanhf(x / cap);
        s[sl][r] = ok ? x : -INFINITY;
      }
    }
#pragma unroll
    for (int r = 0; r < GM; ++r) {
      float mx = s[0][r];
#pragma unroll
      for (int sl = 1; sl < NS; ++sl) mx = fmaxf(mx, s[sl][r]);
#pragma unroll
      for (int o = LPK; o < 32; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, o));
      const float mn = fmaxf(m[r], mx);
      float alpha = 1.0f, sum = 0.0f;
      if (mn != -INFINITY) {
        alpha = __expf(m[r] - mn);
#pragma unroll
        for (int sl = 0; sl < NS; ++sl) {
          s[sl][r] = __expf(s[sl][r] - mn);  // now p
          sum += s[sl][r];
        }
      } else {
#pragma unroll
        for (int sl = 0; sl < NS; ++sl) s[sl][r] = 0.0f;
      }
      m[r] = mn;
      l[r] = l[r] * alpha + sum;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] *= alpha;
    }
#pragma unroll
    for (int sl = 0; sl < NS; ++sl) {
      float vf[8];
      unpack8(KV::widen(Vc[sl]), vf);
#pragma unroll
      for (int r = 0; r < GM; ++r)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[r][e] = fmaf(s[sl][r], vf[e], acc[r][e]);
    }
    // Next: batch i + U is in flight; send i + 2U (table entries ready) and fetch i + 3U's entries.
#pragma unroll
    for (int sl = 0; sl < NS; ++sl) {
      Kc[sl] = Kn[sl];
      Vc[sl] = Vn[sl];
    }
    if (i + 2 * U < bend) {
      kv_load(i + 2 * U, tnn, kbeg, kend, Kn, Vn, false);
      table_load(i + 3 * U, tnn);
    }
  }
  // Sum the keys' lanes: the warp's accumulators and sums (m is already common).
#pragma unroll
  for (int o = LPK; o < 32; o <<= 1)
#pragma unroll
    for (int r = 0; r < GM; ++r) {
      l[r] += __shfl_xor_sync(kFull, l[r], o);
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] += __shfl_xor_sync(kFull, acc[r][e], o);
    }
  if (kg == 0) {
#pragma unroll
    for (int r = 0; r < GM; ++r) {
      if (r < group) {
        float4* dst = reinterpret_cast<float4*>(w_acc + (warp * GM + r) * D + dl * 8);
        dst[0] = make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
        dst[1] = make_float4(acc[r][4], acc[r][5], acc[r][6], acc[r][7]);
        if (lane == 0) {
          w_ml[(warp * GM + r) * 2] = m[r];
          w_ml[(warp * GM + r) * 2 + 1] = l[r];
        }
      }
    }
  }
  __syncthreads();

  // The block's state: row r, dims [d, d + 4) per item; weights l_w e^(m_w - M)
  // (0 for a warp without keys).
  bf16* out_tok = static_cast<bf16*>(a.out) + static_cast<size_t>(tile.first) * a.q_heads * D +
                  static_cast<size_t>(g) * group * D;
  for (int it = tid; it < group * (D / 4); it += kThreads) {
    const int r = it / (D / 4), d = (it % (D / 4)) * 4;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
      if (w_ml[(w * GM + r) * 2 + 1] > 0.0f) M = fmaxf(M, w_ml[(w * GM + r) * 2]);
    float4 num = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float den = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float lw = w_ml[(w * GM + r) * 2 + 1];
      const float wt = lw > 0.0f ? __expf(w_ml[(w * GM + r) * 2] - M) : 0.0f;
      const float4 x = *reinterpret_cast<const float4*>(w_acc + (w * GM + r) * D + d);
      den = fmaf(wt, lw, den);
      num.x = fmaf(wt, x.x, num.x);
      num.y = fmaf(wt, x.y, num.y);
      num.z = fmaf(wt, x.z, num.z);
      num.w = fmaf(wt, x.w, num.w);
    }
    if (C == 1) {
      float inv = den > 0.0f ? 1.0f / den : 0.0f;
      if constexpr (KV::kFp8) inv *= a.v_scale;  // V's scale, once per row
      __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(out_tok + r * D + d);
      o[0] = __floats2bfloat162_rn(num.x * inv, num.y * inv);
      o[1] = __floats2bfloat162_rn(num.z * inv, num.w * inv);
    } else {
      *reinterpret_cast<float4*>(b_acc + r * D + d) = num;
      if (d == 0) {
        b_ml[r * 2] = M;
        b_ml[r * 2 + 1] = den;
      }
    }
  }
  if (C == 1) return;

  // The cluster's state: block `rank` writes items rank, rank + C, ... (row r, dims [d, d + 8)).
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  cluster.sync();
  for (int it = rank + C * tid; it < group * (D / 8); it += C * kThreads) {
    const int r = it / (D / 8), d = (it % (D / 8)) * 8;
    float mc[kMaxCluster], lc[kMaxCluster];
    float M = -INFINITY;
#pragma unroll
    for (int c = 0; c < kMaxCluster; ++c) {
      mc[c] = -INFINITY;
      lc[c] = 0.0f;
      if (c < C) {
        const float* ml = cluster.map_shared_rank(b_ml, c) + r * 2;
        mc[c] = ml[0];
        lc[c] = ml[1];
      }
    }
#pragma unroll
    for (int c = 0; c < kMaxCluster; ++c)
      if (lc[c] > 0.0f) M = fmaxf(M, mc[c]);
    float num[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    float den = 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxCluster; ++c) {
      if (c < C) {
        // Read whatever the weight (a block without keys holds zeros), so that these
        // loads need not wait for the (max, sum) ones.
        const float4* x = reinterpret_cast<const float4*>(cluster.map_shared_rank(b_acc, c) + r * D + d);
        const float4 x0 = x[0], x1 = x[1];
        const float wt = lc[c] > 0.0f ? __expf(mc[c] - M) : 0.0f;
        den = fmaf(wt, lc[c], den);
        fma8(num, wt, x0, x1);
      }
    }
    float inv = den > 0.0f ? 1.0f / den : 0.0f;
    if constexpr (KV::kFp8) inv *= a.v_scale;
    union {
      uint4 u;
      __nv_bfloat162 h[4];
    } o;
#pragma unroll
    for (int k = 0; k < 4; ++k) o.h[k] = __floats2bfloat162_rn(num[2 * k] * inv, num[2 * k + 1] * inv);
    *reinterpret_cast<uint4*>(out_tok + r * D + d) = o.u;
  }
  cluster.sync();  // no block leaves while another may still read its shared memory
}

int rows_for(int group) { return group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : 8; }

template <int D, int GM, typename KV>
void launch_dg(const AttnArgs& a, int cluster, bool pdl, cudaStream_t stream) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(cluster), static_cast<unsigned>(a.kv_heads),
                     static_cast<unsigned>(a.num_tiles));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = Shape<D, GM>::kSmemBytes;
  cfg.stream = stream;
  cudaLaunchAttribute attrs[2] = {pdl_attr(pdl), cluster_x_attr(cluster)};
  cfg.attrs = attrs;
  cfg.numAttrs = cluster > 1 ? 2 : 1;
  KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, decode_attention_kernel<D, GM, KV>, a));
}

template <int D, typename KV>
void launch_dk(const AttnArgs& a, int cluster, bool pdl, cudaStream_t stream) {
  switch (rows_for(a.q_heads / a.kv_heads)) {
    case 1: launch_dg<D, 1, KV>(a, cluster, pdl, stream); break;
    case 2: launch_dg<D, 2, KV>(a, cluster, pdl, stream); break;
    case 4: launch_dg<D, 4, KV>(a, cluster, pdl, stream); break;
    default: launch_dg<D, 8, KV>(a, cluster, pdl, stream); break;
  }
}

template <int D>
void launch_d(const AttnArgs& a, int cluster, bool pdl, cudaStream_t stream) {
  if (a.kv_fp8) {
    launch_dk<D, KvFp8>(a, cluster, pdl, stream);
  } else {
    launch_dk<D, KvBf16>(a, cluster, pdl, stream);
  }
}

// Clusters of each size 1..8 that fit on the device at once, per instance
// ([cache bf16/fp8][head dim 64/128/256][rows 1/2/4/8][size - 1]), read once on
// the current device (configure_decode_attention).
struct Occupancy {
  bool ready = false;
  int clusters[2][3][4][kMaxCluster] = {};
};
Occupancy g_occupancy;

int d_index(int head_dim) { return head_dim == 64 ? 0 : head_dim == 128 ? 1 : 2; }
int rows_index(int rows) { return rows == 1 ? 0 : rows == 2 ? 1 : rows == 4 ? 2 : 3; }

template <int D, int GM, typename KV>
void configure_dgk() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(decode_attention_kernel<D, GM, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(Shape<D, GM>::kSmemBytes)));
  for (int c = 1; c <= kMaxCluster; ++c) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(c));
    cfg.blockDim = dim3(kThreads);
    cfg.dynamicSmemBytes = Shape<D, GM>::kSmemBytes;
    cudaLaunchAttribute attr = cluster_x_attr(c);
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int n = 0;
    KR_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, decode_attention_kernel<D, GM, KV>, &cfg));
    g_occupancy.clusters[KV::kFp8 ? 1 : 0][d_index(D)][rows_index(GM)][c - 1] = n;
  }
}

template <int D, int GM>
void configure_dg() {
  configure_dgk<D, GM, KvBf16>();
  configure_dgk<D, GM, KvFp8>();
}

template <int D>
void configure_d() {
  configure_dg<D, 1>();
  configure_dg<D, 2>();
  configure_dg<D, 4>();
  configure_dg<D, 8>();
}

void ensure_configured() {
  if (g_occupancy.ready) return;
  configure_d<64>();
  configure_d<128>();
  configure_d<256>();
  g_occupancy.ready = true;
}

int batch_keys(int head_dim, int group) { return (rows_for(group) >= 8 ? 2 : 4) * (256 / head_dim); }

}  // namespace

bool decode_attention_supported(int q_heads, int kv_heads, int head_dim) {
  if (q_heads <= 0 || kv_heads <= 0 || q_heads % kv_heads != 0) return false;
  const int group = q_heads / kv_heads;
  return (head_dim == 64 || head_dim == 128 || head_dim == 256) && group >= 1 && group <= 8;
}

int decode_attention_cluster(int head_dim, int q_heads, int kv_heads, int max_keys, int num_tiles, bool kv_fp8) {
  ensure_configured();
  // About one batch per warp when the table is full (the merge costs little per
  // block), and no more clusters than fit on the device at once.
  const int group = q_heads / kv_heads;
  const int kb = batch_keys(head_dim, group);
  const int batches = (max_keys + kb - 1) / kb;
  int c = (batches + kWarps - 1) / kWarps;
  c = c < 1 ? 1 : (c > kMaxCluster ? kMaxCluster : c);
  const int64_t pairs = static_cast<int64_t>(num_tiles > 0 ? num_tiles : 1) * kv_heads;
  const int* fit = g_occupancy.clusters[kv_fp8 ? 1 : 0][d_index(head_dim)][rows_index(rows_for(group))];
  while (c > 1 && pairs > fit[c - 1]) --c;
  return c;
}

void configure_decode_attention() { ensure_configured(); }

void launch_decode_attention(const AttnArgs& a, bool pdl, cudaStream_t stream) {
  if (a.num_tiles == 0) return;
  KR_CHECK(a.decode_only && decode_attention_supported(a.q_heads, a.kv_heads, a.head_dim));
  const int cluster =
      decode_attention_cluster(a.head_dim, a.q_heads, a.kv_heads, a.max_blocks * a.block_size, a.num_tiles, a.kv_fp8);
  switch (a.head_dim) {
    case 64: launch_d<64>(a, cluster, pdl, stream); break;
    case 128: launch_d<128>(a, cluster, pdl, stream); break;
    default: launch_d<256>(a, cluster, pdl, stream); break;
  }
}

}  // namespace kr::cuda
