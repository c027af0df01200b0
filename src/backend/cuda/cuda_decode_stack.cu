// The decode stack kernel's host side (cuda_decode_stack.h): the weight images, the
// rules of what it takes, and its launch. The kernel is cuda_decode_stack_kernel.cuh;
// this file instantiates its forms with grid barriers between all phases,
// cuda_decode_stack_flags.cu the flags forms.
#include "backend/cuda/cuda_decode_stack.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/cuda_decode_stack_kernel.cuh"
#include "base/check.h"

namespace kr::cuda {
namespace {

// Unit i of warp w's range of w's units into the image, as a ring slot's image:
// block (w, i), Unit::kCodeVecs + 32 threads (the code vectors, then the meta words).
// In the cluster MLP form's order (m.cluster_order), unit i of w's span at slot i W + w.
template <int SU>
__global__ void build_image_kernel(QWeight q, StackMatrix m, uint8_t* dst) {
  const int W = gridDim.x, w = blockIdx.x, i = blockIdx.y;
  int b = 0, n = 0;
  if (m.cluster_order) {
    stack_cluster_span(!m.swiglu, m.N / 32, m.groups, m.group_block, m.cta_warps, w, &b, &n);
  } else {
    b = stack_range_begin(m.units, w, W);
    n = stack_range_begin(m.units, w + 1, W) - b;
  }
  if (i >= n) return;
  const int u = b + i;
  int pair, grp;
  stack_unit_pair_group(u, m.N / 32, m.group_block, &pair, &grp);
  int tiles[2];
  pair_tiles(m, pair, tiles);
  const int64_t at = m.cluster_order ? static_cast<int64_t>(i) * W + w : stack_unit_slot(m.units, W, w, i);
  uint8_t* slot = dst + at * Unit<SU>::kBytes;
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
// The Linears' group size (columns; one for every matrix, decode_stack_supports), 0 without groups.
int decode_stack_group(const DecodeStackArgs& a) {
  const StackMatrix& o = a.layer[0].o;
  return o.groups > 0 ? o.K / o.groups : 0;
}

}  // namespace

bool stack_takes(const QWeight& w) {
  return w.code == QCode::kU4 && w.perm == nullptr && !w.w8a8 && (w.group == 64 || w.group == 128) &&
         w.N % 32 == 0 && w.K % w.group == 0 && w.Kp == w.K && w.Np == w.N;
}

size_t stack_image_bytes(const QWeight& w) {
  return static_cast<size_t>(units_of(w)) * unit_bytes(steps_a_unit(w));
}

size_t stack_cluster_image_bytes(const QWeight& w, bool swiglu, int ctas, int cta_warps) {
  const int group_block = swiglu ? w.groups : stack_cluster_down_group_block(w.group);
  return static_cast<size_t>(stack_cluster_rows(!swiglu, w.N / 32, w.groups, group_block, cta_warps)) * ctas *
         cta_warps * unit_bytes(steps_a_unit(w));
}

StackMatrix build_stack_image(const QWeight& w, bool swiglu, int ctas, int cta_warps, int group_block, void* image,
                              cudaStream_t stream, bool cluster_order) {
  KR_CHECK_MSG(group_block >= 0 && group_block <= w.groups && (group_block == 0 || w.groups % group_block == 0),
               "decode stack image: a group block that does not divide the matrix's groups");
  KR_CHECK_MSG(stack_form_stream_warps(w.group, cta_warps),
               "decode stack image: streaming warps a CTA other than a form's");
  const size_t bytes = cluster_order ? stack_cluster_image_bytes(w, swiglu, ctas, cta_warps) : stack_image_bytes(w);
  KR_CHECK_MSG(bytes < (size_t{1} << 31), "decode stack image: 2 GB or more (32-bit offsets)");
  KR_CHECK_MSG(!cluster_order || (stack_cluster_mlp_fits(swiglu ? w.K : w.N, swiglu ? w.N / 2 : w.K, w.group, ctas) &&
                                  (group_block == 0 ? w.groups : group_block) ==
                                      (swiglu ? w.groups : stack_cluster_down_group_block(w.group))),
               "decode stack image: the cluster MLP order for a shape, grid or group block it does not take");
  StackMatrix m;
  m.image = image;
  m.N = w.N;
  m.K = w.K;
  m.groups = w.groups;
  m.units = units_of(w);
  m.group_block = group_block == 0 ? w.groups : group_block;
  m.swiglu = swiglu;
  m.meta_f16 = w.meta_f16;
  m.cta_warps = cta_warps;
  m.cluster_order = cluster_order;
  const int W = ctas * cta_warps;
  const int rows = cluster_order ? stack_cluster_rows(!swiglu, m.N / 32, m.groups, m.group_block, cta_warps)
                                 : (m.units + W - 1) / W;
  if (steps_a_unit(w) == 1) {
    launch(false, build_image_kernel<1>, dim3(W, rows), dim3(Unit<1>::kCodeVecs + 32), 0, stream, w, m,
           static_cast<uint8_t*>(image));
  } else {
    launch(false, build_image_kernel<2>, dim3(W, rows), dim3(Unit<2>::kCodeVecs + 32), 0, stream, w, m,
           static_cast<uint8_t*>(image));
  }
  return m;
}

size_t stack_smem_bytes(int H, int I, int q_heads, int kv_heads, int group, int ring_depth, int cta_warps,
                        bool cta_attention, int warp_scratch_bytes) {
  const StackSmemLayout lay = stack_smem_layout(H, I, q_heads, kv_heads, cta_attention, warp_scratch_bytes);
  return static_cast<size_t>(kStackStaticSmemBytes) + static_cast<size_t>(lay.ring) +
         static_cast<size_t>(cta_warps) * ring_depth * unit_bytes(group == 128 ? 2 : 1);
}

int stack_auto_ring_depth(int H, int I, int q_heads, int kv_heads, int group, int cta_warps) {
  int depth = kStackAutoRingDepth;
  while (depth > kStackMinRingDepth &&
         stack_smem_bytes(H, I, q_heads, kv_heads, group, depth, cta_warps, false, 0) > kStackSmemLimit)
    --depth;
  return depth;
}

size_t decode_stack_smem_bytes(const DecodeStackArgs& a) {
  const int group = decode_stack_group(a);
  return stack_smem_bytes(a.H, a.I, a.q_heads, a.kv_heads, group, a.ring_depth,
                          stack_stream_warps(group, a.row_ring, a.warp0_streams), a.cta_attention,
                          stack_warp_scratch_bytes(a.flags, a.warp_merge));
}

void configure_decode_stack() {
  configure_forms<false>();
  configure_decode_stack_flags_forms();
}

bool stack_shapes_supported(int H, int I, int q_heads, int kv_heads, int layers) {
  return layers >= 1 && layers <= kStackMaxLayers && H > 0 && I > 0 && q_heads > 0 && kv_heads > 0 &&
         q_heads % kv_heads == 0 && q_heads / kv_heads <= kStackMaxGroup && kv_heads <= kStackMaxKvHeads &&
         H <= kStackMaxH && I <= kStackMaxI && H % 8 == 0 && I % 16 == 0;
}

static_assert(kStackMinRingDepth == 2 && kStackMaxRingRows == 8 && kStackMaxRingDepth == 6,
              "stack_tuning_error's messages name these ranges");
const char* stack_tuning_error(int ring_depth, bool row_ring, int rows_in_flight, int window_rows_in_flight,
                               bool warp0_streams, bool flags, bool cta_attention, bool warp_merge) {
  if (ring_depth < kStackMinRingDepth || ring_depth > (row_ring ? kStackMaxRingRows : kStackMaxRingDepth))
    return row_ring ? "ring rows out of range (2 .. 8)" : "ring depth out of range (2 .. 6)";
  if (!row_ring) return nullptr;
  if (warp0_streams) return "warp 0 streaming with the row ring (warp 0 is its producer)";
  if (rows_in_flight < 1 || rows_in_flight > ring_depth) return "rows in flight out of range (1 .. the ring's rows)";
  if (window_rows_in_flight != -1 && (window_rows_in_flight < 1 || window_rows_in_flight > rows_in_flight))
    return "window rows in flight out of range (1 .. the rows in flight, or -1)";
  if (flags || cta_attention || warp_merge) return "the row ring with the flags form, the CTA attention or the warp merge";
  return nullptr;
}

bool decode_stack_supports(const DecodeStackArgs& a) {
  const int H = a.H, I = a.I, Hq = a.q_heads, Hkv = a.kv_heads, D = kStackHeadDim;
  if (!stack_shapes_supported(H, I, Hq, Hkv, a.layers)) return false;
  if (a.max_blocks <= 0 || a.block_size <= 0 || static_cast<int64_t>(a.max_blocks) * a.block_size > kStackMaxKeys)
    return false;
  if (stack_tuning_error(a.ring_depth, a.row_ring, a.rows_in_flight, a.window_rows_in_flight, a.warp0_streams,
                         a.flags, a.cta_attention, a.warp_merge) != nullptr)
    return false;
  if (a.cta_attention && a.q_heads / a.kv_heads > kStackCtaMaxGroup) return false;
  const int g = decode_stack_group(a);  // one group size
  if (g != 64 && g != 128) return false;
  if (a.cta_attention && !stack_cta_attention_fits(g)) return false;
  for (int l = 0; l < a.layers; ++l) {
    const StackLayer& L = a.layer[l];
    const StackMatrix* mats[4] = {&L.qkv, &L.o, &L.gate_up, &L.down};
    for (const StackMatrix* m : mats) {
      if (m->image == nullptr || m->groups <= 0 || m->K / m->groups != g || m->group_block <= 0 ||
          m->groups % m->group_block != 0 || m->cta_warps != stack_stream_warps(g, a.row_ring, a.warp0_streams))
        return false;
    }
    // (Every layer's matrices have the same N, K and group, so the same units: the row ring
    // counts a CTA's rows of a matrix from layer 0's, run_matrix.)
    if (L.qkv.N != (Hq + 2 * Hkv) * D || L.qkv.K != H || L.o.N != H || L.o.K != Hq * D || L.gate_up.N != 2 * I ||
        L.gate_up.K != H || L.down.N != H || L.down.K != I || !L.gate_up.swiglu || L.qkv.swiglu || L.o.swiglu ||
        L.down.swiglu)
      return false;
    if (L.input_norm_w == nullptr || L.mlp_norm_w == nullptr || L.k_cache == nullptr || L.v_cache == nullptr)
      return false;
    // The cluster MLP form: both MLP images in its order, the others not.
    if (L.gate_up.cluster_order != a.cluster_mlp || L.down.cluster_order != a.cluster_mlp || L.qkv.cluster_order ||
        L.o.cluster_order)
      return false;
    if (a.cluster_mlp && (L.gate_up.group_block != L.gate_up.groups ||
                          L.down.group_block != stack_cluster_down_group_block(g)))
      return false;
  }
  if (a.cluster_mlp && (a.row_ring || a.flags)) return false;
  if (a.residual == nullptr || a.normed == nullptr || a.final_norm_w == nullptr || a.inv_freq == nullptr ||
      a.position == nullptr || a.slot == nullptr || a.block_table == nullptr || a.sums == nullptr ||
      a.partials == nullptr || a.barrier == nullptr || a.attn_out == nullptr)
    return false;
  return decode_stack_smem_bytes(a) <= kStackSmemLimit;
}

namespace {
template <int SU, bool kBias>
int max_active_clusters(const cudaLaunchConfig_t& cfg) {
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, decode_stack_kernel<SU, kBias, false, false, false>, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}
}  // namespace

bool stack_cluster_mlp_resident(int H, int I, int q_heads, int kv_heads, int group, bool bias, int ring_depth,
                                int ctas) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(ctas));
  cfg.blockDim = dim3(static_cast<unsigned>(stack_cta_warps(group, false) * 32));
  cfg.dynamicSmemBytes = stack_smem_bytes(H, I, q_heads, kv_heads, group, ring_depth,
                                          stack_stream_warps(group, false, false), false, 0) -
                         kStackStaticSmemBytes;
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = 2;
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  const int n = group == 128 ? (bias ? max_active_clusters<2, true>(cfg) : max_active_clusters<2, false>(cfg))
                             : (bias ? max_active_clusters<1, true>(cfg) : max_active_clusters<1, false>(cfg));
  return 2 * n >= ctas;
}

bool launch_decode_stack(const DecodeStackArgs& a, int ctas, bool pdl, cudaStream_t stream) {
  if (!decode_stack_supports(a) || (a.cta_attention && a.kv_heads > ctas)) return false;
  if (a.cluster_mlp && !stack_cluster_mlp_fits(a.H, a.I, decode_stack_group(a), ctas)) return false;
  // Every CTA waits for all the others at the grid barriers: the cooperative launch
  // makes the driver start the grid only with all of them resident.
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(ctas));
  cfg.blockDim = dim3(static_cast<unsigned>(stack_cta_warps(decode_stack_group(a), a.row_ring) * 32));
  cfg.dynamicSmemBytes = decode_stack_smem_bytes(a) - kStackStaticSmemBytes;  // the static part is the kernel's
  cfg.stream = stream;
  cudaLaunchAttribute attrs[3];
  attrs[0].id = cudaLaunchAttributeCooperative;
  attrs[0].val.cooperative = 1;
  attrs[1] = pdl_attr(pdl);
  cfg.attrs = attrs;
  cfg.numAttrs = 2;
  if (a.cluster_mlp) {  // CTAs 2k and 2k + 1 share their GLU (stack_cluster_span)
    attrs[2].id = cudaLaunchAttributeClusterDimension;
    attrs[2].val.clusterDim.x = 2;
    attrs[2].val.clusterDim.y = 1;
    attrs[2].val.clusterDim.z = 1;
    cfg.numAttrs = 3;
  }
  if (a.flags) {
    launch_decode_stack_flags_form(cfg, a);
  } else {
    launch_form<false>(cfg, a);
  }
  return true;
}

}  // namespace kr::cuda
