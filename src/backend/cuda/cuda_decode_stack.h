// The decode stack kernel (Backend::decode_stack, CudaOptions::decode_stack_kernel):
// all decoder layers of a step of ONE token as one persistent kernel over 4-bit
// weights. Per layer, with the roundings of the unfused ops (the GEMV epilogues of
// cuda_qgemm.cu, the norm and rope kernels of cuda_kernels.cu):
//   x = norm(h, input_norm); [q; k; v] = bf16(qkv · x); q, k rotated (RoPE at the
//   token's position); k, v stored into the paged caches at the token's slot;
//   attn = bf16(softmax(q k^T scale) v) over the cached keys and the new one (GQA);
//   h = bf16(h + bf16(o · attn)); x = norm(h, mlp_norm);
//   act = bf16(bf16(f(bf16 g)) · bf16 u), [g; u] = gate_up · x;
//   h = bf16(h + bf16(down · act))
// and after the last layer normed = norm(h, final_norm), residual = h.
//
// Why one kernel: at batch 1 each GEMV streams a few MB, less than the latency of
// starting, waiting on and draining a kernel (~6.8 us a matrix above streaming on an
// H200, docs/performance.md). A kernel a layer does not help: its CTAs take whole
// SMs, so the kernels around it cannot start early (measured slower than the
// kernels it replaced, docs/performance.md). Here one CTA of 12 or 16 warps an SM
// (stack_cta_warps): warps 1 .. 11 or 15 each keep a cp.async ring of weight units in
// shared memory that runs ahead through every matrix of every layer, so the next
// weights stream while a phase waits for its input; warp 0 runs the attention (and
// with DecodeStackArgs::warp0_streams streams units too; stack_stream_warps). The CTAs
// meet at a grid barrier between phases (5 a layer, on a 64-bit count that only
// grows), and every CTA builds the next matrix's whole input (norm, copy or GLU) in
// shared memory from f32 sums. In the cluster MLP form (DecodeStackArgs::cluster_mlp, the
// default where it fits) gate_up and down_proj meet at a barrier of two CTAs instead
// (stack_cluster_span): 4 grid barriers a layer.
//
// Layout: a unit is one scale group (64 or 128 columns) of one tile pair (two
// 16-row mma tiles of qgemm_layout.h: rows 2p, 2p + 1, or gate tile p with up tile
// p + I / 16). Streaming warp w of the W = grid x stack_stream_warps takes the units
// [U w / W, U (w + 1) / W) of each matrix (split K: its sums go to f32 outputs by
// red.add, so the low bits of a sum depend on the order the adds land in: batch-1
// logits are not bit-for-bit repeatable run to run, as with cuBLAS's split-K).
// The weights are copied at load (build_stack_image) into the order the warps read
// them (stack_unit_slot: the i-th units of all warps side by side), each unit a ring
// slot's image (codes [step][tile][lane] uint4, then the meta words [tile][row]), so
// that at every step the GPU reads one contiguous window. The image is a second copy
// of the matrix (the other kernels keep reading the tiled layout), of exactly its
// units: no padding (the cluster MLP form's images of gate_up and down_proj are padded to
// rows of the busiest warp's units, stack_cluster_rows: 3B's 1.61 GB of images against 1.50).
//
// Attention: warp 0 of CTA i takes item i = (kv head g, split s) of the Hkv x S (S
// splits of ~32 keys, at most kStackMaxSplits), the G = Hq / Hkv q heads of g at once:
// on the tensor cores when the split's keys are all in its stage (mma_keys), else a key
// a lane with an online softmax; the split holding the new key also stores it. The
// first chunk of an item's cached keys is loaded into shared memory before the wait for
// qkv. After the barrier that ends the attention, every CTA merges the splits' (max,
// sum, acc) of the heads its o_proj units read into its copy of o_proj's input
// (stage_merge; without it, the last split of a kv head to finish merges them into
// attn_out). With cta_attention, CTA g takes kv head g instead: its warps a split of up
// to 32 keys each, merged in shared memory.
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_qgemm.h"

namespace kr::cuda {

constexpr int kStackWarps = 16;       // a CTA's warps at most (stack_cta_warps); one CTA an SM
constexpr int kStackMaxLayers = 64;   // layers in the kernel's parameters
constexpr int kStackMaxH = 4096;      // hidden size (the residual: bf16 [H] in shared memory)
constexpr int kStackMaxI = 16384;     // intermediate size (the CTA's GLU: up to 8 float4s of g and u a thread)
constexpr int kStackHeadDim = 128;    // the attention phase's head dim (4 dims a lane)
constexpr int kStackMaxGroup = 8;     // q heads a kv head
constexpr int kStackMaxSplits = 16;   // key splits a kv head
// Block-table widths (keys) the kernel takes: longer contexts run slower here than on the
// flash decode kernel (3B AWQ batch 1 on an H200 at 1,024 / 4,000 keys: 460 / 208 tok/s
// against 560 / 567; docs/performance.md), so those steps take the kernels a layer.
constexpr int kStackMaxKeys = 512;
constexpr int kStackPartFloats = kStackHeadDim + 4;  // a split's (max, sum, -, -, acc[D]): 16-byte aligned acc
constexpr int kStackMaxKvHeads = 64;  // kv heads (the tickets' and flags' room in DecodeStackArgs::barrier)
// DecodeStackArgs::barrier, ints: [0, 2) the grid barrier's u64 count, [32, 34) its u64 base,
// [kStackTicketsAt, + Hkv) the attention splits' tickets, and the flags form's u32 counters
// (DecodeStackArgs::flags), one a 128-byte line (kStackFlagStride ints: the warps that poll
// one do not queue at the L2 slice of another): from kStackQkvFlagsAt, kv head g's qkv units
// done; from kStackAttnFlagsAt, kv head g's attention merged; from kStackGluFlagsAt, down_proj's
// column group c's gate_up units done.
constexpr int kStackTicketsAt = 64;
constexpr int kStackFlagStride = 32;
constexpr int kStackFlags = 2 * kStackMaxKvHeads + kStackMaxI / 64;  // counters
constexpr int kStackQkvFlagsAt = kStackTicketsAt + kStackMaxKvHeads;
constexpr int kStackAttnFlagsAt = kStackQkvFlagsAt + kStackMaxKvHeads * kStackFlagStride;
constexpr int kStackGluFlagsAt = kStackAttnFlagsAt + kStackMaxKvHeads * kStackFlagStride;
constexpr int kStackBarrierInts = kStackGluFlagsAt + kStackMaxI / 64 * kStackFlagStride;
// A CTA's warps in the form for Linears of `group`-column groups: 12 in the per-warp ring
// forms of group 128 (units of 2 steps), so that __launch_bounds__ leaves ptxas 168 registers a
// thread instead of 128, which compute_unit spends on two mma chains a tile (stack_mma_chains);
// kStackWarps (16) otherwise: group 64's units of one step ran 5% slower with 12 warps, and
// the row ring's producer and the CTA attention's splits (one a warp, up to kStackMaxSplits)
// take 16 (docs/performance.md, session 36).
KR_HD constexpr int stack_cta_warps(int group, bool row_ring) { return group == 128 && !row_ring ? 12 : kStackWarps; }
// Warps a CTA that stream weights: warps 1 .. stack_cta_warps - 1 (warp 0 runs the attention
// items; with the row ring it is also the ring's producer), or all of them with
// DecodeStackArgs::warp0_streams (not with the row ring). With 15 a CTA, 3B's matrices (3,840 /
// 2,304 / 12,288 / 6,144 units over 1,980 warps) have busiest warps of 2 / 2 / 7 / 4 units
// against means of 1.94 / 1.16 / 6.21 / 3.10; with 16 (2,112 warps), 2 / 2 / 6 / 3
// (docs/performance.md, session 30); with 11 and 12, 3 / 2 / 9 / 5 and 3 / 2 / 8 / 4. A
// matrix's image is built for one of them (StackMatrix::cta_warps).
constexpr int kStackRowRingWarps = kStackWarps - 1;
KR_HD constexpr int stack_stream_warps(int group, bool row_ring, bool warp0_streams) {
  return stack_cta_warps(group, row_ring) - (row_ring || !warp0_streams ? 1 : 0);
}
// Whether some form streams with cta_warps warps a CTA for `group`-column Linears (the per-warp
// rings without and with warp 0 streaming, the row ring): the counts an image may be built for.
KR_HD constexpr bool stack_form_stream_warps(int group, int cta_warps) {
  return cta_warps == stack_stream_warps(group, false, false) || cta_warps == stack_stream_warps(group, false, true) ||
         cta_warps == stack_stream_warps(group, true, false);
}
// compute_unit's mma chains a tile in a form of cta_warps warps: two (each SU * 2 deep) where
// the form has the registers for them (fewer than kStackWarps warps a CTA), else one (SU * 4).
KR_HD constexpr int stack_mma_chains(int cta_warps) { return cta_warps < kStackWarps ? 2 : 1; }
// Whether the CTA attention (DecodeStackArgs::cta_attention) runs in the form for
// `group`-column Linears: it runs one key split a warp, up to kStackMaxSplits of them.
KR_HD constexpr bool stack_cta_attention_fits(int group) { return stack_cta_warps(group, false) >= kStackMaxSplits; }
constexpr int kStackMinRingDepth = 2, kStackMaxRingDepth = 6;  // ring units a streaming warp
constexpr int kStackMaxRingRows = 8;     // rows of the row ring (DecodeStackArgs::row_ring)
constexpr int kStackCtaMaxGroup = 4;     // q heads a kv head of the CTA attention (DecodeStackArgs::cta_attention)
// The trace (DecodeStackArgs::trace): per layer and CTA, the globaltimer (ns) at these points.
enum StackTracePoint : int {
  kTraceLayerStart,  // the layer's first instruction
  kTraceArrive0,     // the first barrier of the layer: the CTA's arrival (its warps done), then its exit
  kTraceExit0 = kTraceArrive0 + 1,
  // barriers 1..4 of the layer follow as (arrive, exit) pairs; barrier 0 is the one before the
  // input norm of layers 1.., after the last layer's down_proj (layer 0 has none: its pair stays 0).
  // The flags form (DecodeStackArgs::flags) has barriers 0 and 3 only, and no kTraceOStaged
  // or kTraceDownStaged: those marks stay 0.
  kTraceQkvStaged = kTraceArrive0 + 10,  // x = norm(h) in shared memory
  kTraceOStaged,                         // attention's output in shared memory
  kTraceGateUpStaged,                    // x = norm(h) in shared memory
  kTraceDownStaged,                      // the GLU in shared memory
  kTraceAttentionDone,                   // warp 0's attention items done (and merged, in the flags form)
  kTraceFinalArrive,                     // the last layer's row only: the barrier after its down_proj
  kTraceFinalExit,
  // Inside warp 0's last attention item of the layer (attention_item; 0 where the CTA has none):
  kTraceAttnQ,       // q rotated and the new key stored: its keys next
  kTraceAttnKeys,    // its keys attended, the partial stored
  kTraceAttnTicket,  // the fence and the ticket taken (the merge, if it is the last split, next)
  // Streaming warp 1 (lane 0) in each matrix of the layer (qkv, o, gate_up, down in order):
  // its range worked out (before its first wait), its first unit in its ring slot (after the
  // wait), and its last unit computed (before its last flush).
  kTraceQkvSetup,
  kTraceQkvUnit = kTraceQkvSetup + 4,
  kTraceQkvLast = kTraceQkvUnit + 4,
  kStackTracePoints = kTraceQkvLast + 4
};

// The kernel's dynamic shared memory, byte offsets from its start (each 16-byte aligned):
// xs at 0 (the matrix's input, bf16 [max(H, Hq D, I)], which is also the CTA attention's
// scratch, f32 [kStackWarps][G][2] + [G][D]), the residual hs (bf16 [H]), red (f32 [32]), warp
// 0's q (bf16 [G][D]) and stage (kStackStageBytes: 32 K rows and 32 V rows of D bf16, each
// padded by 16 bytes), the streaming warps' input scratch (scratch_bytes each,
// stack_warp_scratch_bytes; room for kStackWarps), then their rings. One function for the
// kernel's pointers and the host's size (stack_smem_bytes), so that the two agree.
constexpr int kStackStageBytes = 2 * 32 * (kStackHeadDim * 2 + 16);
// The kernel's static shared memory, kept apart from the dynamic part above: the threads' ring
// cursors (512 x 24 B), the streaming warps' ranges (16 x 4 x 16 B), the grid barrier's target
// (u64), the row ring's barriers and signals and the CTA's columns of o_proj's and down_proj's
// inputs (4 ints), rounded up to 256 bytes.
constexpr int kStackStaticSmemBytes = 13568;
struct StackSmemLayout {
  int hs = 0, red = 0, qs = 0, stage = 0, scratch = 0, ring = 0;
};
KR_HD int stack_round16(int bytes) { return (bytes + 15) / 16 * 16; }
KR_HD StackSmemLayout stack_smem_layout(int H, int I, int Hq, int Hkv, bool cta_attention, int scratch_bytes) {
  const int G = Hkv > 0 ? Hq / Hkv : 0;
  const int elems = H > Hq * kStackHeadDim ? (H > I ? H : I) : (Hq * kStackHeadDim > I ? Hq * kStackHeadDim : I);
  const int cta_scratch = cta_attention ? (kStackWarps * G * 2 + G * kStackHeadDim) * 4 : 0;
  StackSmemLayout l;
  l.hs = stack_round16(elems * 2 > cta_scratch ? elems * 2 : cta_scratch);
  l.red = l.hs + stack_round16(H * 2);
  l.qs = l.red + 32 * 4;
  l.stage = l.qs + G * kStackHeadDim * 2;
  l.scratch = l.stage + kStackStageBytes;
  l.ring = l.scratch + kStackWarps * scratch_bytes;
  return l;
}

// Where unit i of streaming warp w's range of a matrix of `units` units sits in the
// matrix's image, in units, for W streaming warps. Warp w takes the units
// [stack_range_begin(w), stack_range_begin(w + 1)): n = units / W or n + 1 of them.
// The i-th units of every warp lie side by side (i W + w) for i < n; the (n + 1)-th
// units of the warps that have one follow, packed in warp order. build_stack_image
// writes this layout and the kernel reads it; the image holds exactly `units` units.
KR_HD int stack_range_begin(int units, int w, int W) {  // 32-bit: units * W < 2^31
  return static_cast<int>(static_cast<unsigned>(units) * static_cast<unsigned>(w) / static_cast<unsigned>(W));
}
KR_HD int64_t stack_unit_slot(int units, int W, int w, int i) {
  const int n = units / W;
  if (i < n) return static_cast<int64_t>(i) * W + w;
  return static_cast<int64_t>(n) * W + (stack_range_begin(units, w, W) - w * n);  // the long warps before w
}

// The order of a matrix's units (tile pair, scale group) in unit index u, by blocks of
// group_block groups (which divide `groups`): block after block, in a block pair after pair,
// in a pair its block's groups. group_block == groups is the plain pair-major order (pair
// u / groups, group u % groups). Smaller blocks keep each CTA's units (a stretch of u) in a
// few column groups, so that it stages only those columns of the matrix's input (the
// attention's merge for o_proj, the GLU for down_proj; stack_cta_groups); a warp's sums still
// go out once per tile pair it leaves.
KR_HD void stack_unit_pair_group(int u, int pairs, int group_block, int* pair, int* grp) {
  const int block_units = pairs * group_block;
  const int block = u / block_units, r = u - block * block_units;
  *pair = r / group_block;
  *grp = block * group_block + (r - *pair * group_block);
}
// From unit u's (pair, grp) to unit u + 1's, gi being grp's place in its block (grp %
// group_block): the kernel's walk through a warp's range. Unit u is the last of its tile
// pair in the block (the warp's sums of the pair go out) when gi == group_block - 1.
KR_HD void stack_next_unit(int pairs, int group_block, int* pair, int* grp, int* gi) {
  ++*grp;
  if (++*gi < group_block) return;
  *gi = 0;
  *grp -= group_block;
  if (++*pair == pairs) {  // the next block
    *pair = 0;
    *grp += group_block;
  }
}
// A streaming warp's range of a matrix (stack_range_begin over W warps) as the kernel walks it,
// for units of unit_bytes: worked out once a launch for each of a layer's four matrices (their
// units are the same in every layer), not at every matrix (the 32-bit divisions of
// stack_range_begin, stack_unit_slot and stack_unit_pair_group lay on the path from each grid
// barrier to the warp's first unit, and, for a warp with a unit in the packed last row, in the
// ring's refill after a unit: session 30's profile).
// 16 bytes (the kernel keeps 16 x 4 of them in static shared memory): n, pair and grp are below
// 2^15 for the shapes and grids the kernel takes (at most kStackMaxI / 16 tile pairs and 256
// groups, so at most 2^16 units over W >= 15 warps).
struct StackWarpRange {
  int first = 0;      // its first unit's byte offset in the image (stack_unit_slot x unit_bytes)
  int last_step = 0;  // bytes from its unit n - 2 to unit n - 1: W unit_bytes, or into the packed row
  short n = 0;        // its units
  short pair = 0, grp = 0, gi = 0;  // its first unit's (tile pair, group), grp's place in its block
};
// r's first unit (tile pair, group, the group's place in its block) for unit index b.
KR_HD void stack_range_first_unit(StackWarpRange* r, int b, int pairs, int group_block) {
  int pair, grp;
  stack_unit_pair_group(b, pairs, group_block, &pair, &grp);
  r->pair = static_cast<short>(pair);
  r->grp = static_cast<short>(grp);
  r->gi = static_cast<short>(grp % group_block);
}
KR_HD StackWarpRange stack_warp_range(int units, int pairs, int group_block, int W, int gw, int unit_bytes) {
  StackWarpRange r;
  const int b = stack_range_begin(units, gw, W), n = stack_range_begin(units, gw + 1, W) - b;
  r.n = static_cast<short>(n);
  r.first = static_cast<int>(stack_unit_slot(units, W, gw, 0) * unit_bytes);
  r.last_step = n >= 2 ? static_cast<int>((stack_unit_slot(units, W, gw, n - 1) -
                                           stack_unit_slot(units, W, gw, n - 2)) * unit_bytes)
                       : W * unit_bytes;
  if (n > 0) stack_range_first_unit(&r, b, pairs, group_block);
  return r;
}

// The cluster MLP form (DecodeStackArgs::cluster_mlp): no grid barrier between gate_up and
// down_proj. The grid's CTAs pair into clusters of two (CTA c is rank c % 2 of cluster c / 2);
// cluster k takes the intermediate columns [kStackSliceCols k, kStackSliceCols (k + 1)) (a
// slice) of both matrices. CTA h of it sums gate_up's rows of half the slice over all of K
// (kStackSliceCols / 32 tile pairs, gate tile p with up tile p: tile pairs 4 c .. 4 c + 3),
// makes their GLU and writes it into the shared memory of both CTAs (DSMEM); after a cluster
// barrier each takes the slice's groups of down_proj for half of its output tile pairs, its
// sums going to the output by red.add as in the other forms. Clusters past the slices take no
// unit of either matrix. A warp's units are a stretch of the matrix's unit order
// (stack_unit_pair_group: gate_up pair-major, down_proj by blocks of a slice's groups), split
// evenly over the CTA's streaming warps (stack_cluster_span); the image holds them row-major,
// unit i of warp gw at slot i W + gw, stack_cluster_rows rows (slots past a warp's units stay
// unwritten and unread). The CTA's gate_up sums (f32 [kStackSliceCols]) and its cluster's GLU
// (bf16 [kStackSliceCols]) sit in the matrix inputs' region xs past its first H values (gate_up's
// input), which I >= H + 3 kStackSliceCols leaves room for.
constexpr int kStackSliceCols = 128;
// Whether the form takes intermediate size I, hidden size H and `group`-column groups on a
// grid of `ctas` CTAs: every slice has its cluster, and down_proj's tile pairs split in two.
KR_HD constexpr bool stack_cluster_mlp_fits(int H, int I, int group, int ctas) {
  return ctas % 2 == 0 && I % kStackSliceCols == 0 && I / kStackSliceCols <= ctas / 2 && H % 64 == 0 &&
         I >= H + 3 * kStackSliceCols && (group == 64 || group == 128);
}
// down_proj's group_block in the form: a slice's groups.
KR_HD constexpr int stack_cluster_down_group_block(int group) { return kStackSliceCols / group; }
// The units [*b, *b + *n) of streaming warp gw (cta_warps a CTA) of gate_up (down == false:
// pairs = I / 16, pair-major, group_block == groups) or down_proj (pairs = H / 32,
// group_block = stack_cluster_down_group_block).
KR_HD void stack_cluster_span(bool down, int pairs, int groups, int group_block, int cta_warps, int gw, int* b,
                              int* n) {
  const int cta = gw / cta_warps, sw = gw - cta * cta_warps, k = cta >> 1, h = cta & 1;
  int u0 = 0, cu = 0;  // the CTA's first unit and its units
  if (!down) {
    constexpr int per = kStackSliceCols / 32;  // tile pairs of half a slice
    if ((k + 1) * 2 * per <= pairs) {
      u0 = cta * per * groups;
      cu = per * groups;
    }
  } else if (k < groups / group_block) {
    const int p0 = pairs * h / 2, p1 = pairs * (h + 1) / 2;
    u0 = (k * pairs + p0) * group_block;
    cu = (p1 - p0) * group_block;
  }
  *b = u0 + cu * sw / cta_warps;
  *n = u0 + cu * (sw + 1) / cta_warps - *b;
}
// Rows of the form's image: the most units a warp has.
KR_HD int stack_cluster_rows(bool down, int pairs, int groups, int group_block, int cta_warps) {
  const int cu = down ? (pairs + 1) / 2 * group_block : kStackSliceCols / 32 * groups;
  return (cu + cta_warps - 1) / cta_warps;
}
// The form's StackWarpRange of streaming warp gw of W (W / cta_warps CTAs).
KR_HD StackWarpRange stack_cluster_range(bool down, int pairs, int groups, int group_block, int W, int cta_warps,
                                         int gw, int unit_bytes) {
  int b = 0, n = 0;
  stack_cluster_span(down, pairs, groups, group_block, cta_warps, gw, &b, &n);
  StackWarpRange r;
  r.n = static_cast<short>(n);
  r.first = gw * unit_bytes;
  r.last_step = W * unit_bytes;
  if (n > 0) stack_range_first_unit(&r, b, pairs, group_block);
  return r;
}

// The column groups [*g0, *g1) that the units of CTA `cta` (its cta_warps streaming warps'
// ranges, stack_range_begin over W = ctas x cta_warps) read: whole blocks of
// group_block groups, from the block of its first unit to that of its last; empty (g0 ==
// g1) for a CTA without units.
KR_HD void stack_cta_groups(int units, int pairs, int group_block, int cta, int ctas, int cta_warps, int* g0,
                            int* g1) {
  const int W = ctas * cta_warps;
  const int u0 = stack_range_begin(units, cta * cta_warps, W);
  const int u1 = stack_range_begin(units, (cta + 1) * cta_warps, W);
  if (u1 <= u0) {
    *g0 = *g1 = 0;
    return;
  }
  const int block_units = pairs * group_block;
  *g0 = u0 / block_units * group_block;
  *g1 = ((u1 - 1) / block_units + 1) * group_block;
}
// The row ring (DecodeStackArgs::row_ring): CTA cta's rows of a matrix of `units` units, in
// the order of its streaming warps' units (W = grid x kStackRowRingWarps): n = units / W full
// rows, row i holding unit i of each of its kStackRowRingWarps warps side by side (slots
// i W + its first warp, stack_unit_slot), then, when some of its warps have one unit more,
// one packed row of those units (their slots in the image's last row, contiguous: a CTA's
// warps are consecutive). The kernel's producer copies these rows in this order, and each
// streaming warp takes its units from them (decode_stack_policy_test checks the two agree).
struct CtaRows {
  int n = 0;       // full rows
  int packed = 0;  // units in the packed row (0: no packed row)
  int p0 = 0;      // the packed row's first slot
  int pos = 0;     // streaming warp gw's place in the packed row (when it has a unit there)
};
KR_HD CtaRows cta_rows(int units, int cta, int W, int gw) {
  CtaRows r;
  const int c0 = cta * kStackRowRingWarps, c1 = c0 + kStackRowRingWarps;
  r.n = units / W;
  // Warp w's units before it in the packed row: stack_range_begin(w) - w n (stack_unit_slot).
  const int before0 = stack_range_begin(units, c0, W) - c0 * r.n;
  r.packed = stack_range_begin(units, c1, W) - c1 * r.n - before0;
  r.p0 = r.n * W + before0;
  r.pos = stack_range_begin(units, gw, W) - gw * r.n - before0;
  return r;
}
KR_HD int cta_row_count(const CtaRows& r) { return r.n + (r.packed > 0 ? 1 : 0); }

// The largest divisor of `groups` that is at most `want` (at least 1): a matrix's group_block.
// (M, den, num): a softmax's running max, sum of exp(score - M) and the exp-weighted sums of V
// (N dims) over some keys, taking in another such triple (m2, l2, n2) over other keys: the
// result is the triple over both. An empty triple (max -inf, sums 0) adds nothing, and two
// empty ones stay empty (no exp(-inf - -inf)). Every merge of the attention splits' partials
// (merge_partials, stage_merged_attention).
template <int N>
KR_HD void stack_merge_softmax(float& M, float& den, float (&num)[N], float m2, float l2, const float (&n2)[N]) {
  const float Mn = M > m2 ? M : m2;
  const float c = M == -INFINITY ? 0.0f : expf(M - Mn), w = m2 == -INFINITY ? 0.0f : expf(m2 - Mn);
  den = fmaf(w, l2, den * c);
  for (int e = 0; e < N; ++e) num[e] = fmaf(w, n2[e], num[e] * c);
  M = Mn;
}

KR_HD int stack_group_block(int groups, int want) {
  int b = want < groups ? want : groups;
  while (b > 1 && groups % b != 0) --b;
  return b < 1 ? 1 : b;
}

// The flags form's counters (DecodeStackArgs::flags). Each layer, a counter's producers add
// the units they summed of the tile pairs that feed it, and its consumers wait for all of them:
// - qkv tile pair `pair` (rows 32 pair ..; q heads, then k heads, then v heads, D rows each)
//   feeds kv head stack_qkv_flag's attention, which waits for stack_qkv_flag_units;
// - gate_up tile pair `pair` (gate rows 16 pair ..) feeds down_proj's column group
//   stack_glu_flag (its GLU inputs), which waits for stack_glu_flag_units;
// - o_proj's column group grp (o_group columns) reads the attention of kv head
//   stack_o_flag, merged once a layer.
KR_HD int stack_qkv_flag(int pair, int q_heads, int kv_heads) {
  const int head = pair / (kStackHeadDim / 32);
  const int group = q_heads / kv_heads;
  return head < q_heads ? head / group : head < q_heads + kv_heads ? head - q_heads : head - q_heads - kv_heads;
}
KR_HD unsigned stack_qkv_flag_units(int q_heads, int kv_heads, int qkv_groups) {
  return static_cast<unsigned>((q_heads / kv_heads + 2) * (kStackHeadDim / 32) * qkv_groups);
}
KR_HD int stack_glu_flag(int pair, int down_group) { return pair * 16 / down_group; }
KR_HD unsigned stack_glu_flag_units(int down_group, int gate_up_groups) {
  return static_cast<unsigned>(down_group / 16 * gate_up_groups);
}
KR_HD int stack_o_flag(int grp, int o_group, int q_heads, int kv_heads) {
  return grp * o_group / (kStackHeadDim * (q_heads / kv_heads));
}

// One matrix's image (build_stack_image) and what the kernel reads of its QWeight.
struct StackMatrix {
  const void* image = nullptr;  // device, stack_image_bytes
  int N = 0, K = 0;
  int groups = 0;  // K / group
  int units = 0;   // tile pairs x groups
  int group_block = 0;  // the unit order's blocks of groups (stack_unit_pair_group; groups: pair-major)
  int cta_warps = 0;    // the streaming warps a CTA of the read order (stack_stream_warps)
  bool swiglu = false;
  bool meta_f16 = false;
  // The cluster MLP form's order (stack_cluster_span; gate_up when swiglu, else down_proj)
  // instead of stack_unit_slot's.
  bool cluster_order = false;
};

// Whether the kernel takes w: 4-bit integer codes (zero points or MLX biases), no
// act-order permutation, groups of 64 or 128 columns, N a multiple of 32.
bool stack_takes(const QWeight& w);
// Bytes of w's image: its units (stack_unit_slot), whatever the grid.
size_t stack_image_bytes(const QWeight& w);
// Bytes of w's image in the cluster MLP form's order (stack_cluster_rows x ctas x cta_warps
// units; swiglu: w is gate_up, else down_proj).
size_t stack_cluster_image_bytes(const QWeight& w, bool swiglu, int ctas, int cta_warps);
// Fills `image` (stack_image_bytes, below 2 GB: the kernel's offsets are 32-bit) from w's tiled
// layout, in the read order of a grid of `ctas` CTAs of cta_warps streaming warps
// (stack_stream_warps of the form the kernel runs; it must be launched on as many CTAs);
// swiglu: w is [gate; up]
// and a unit's tile pair is gate tile p with up tile p + N / 32. group_block: the unit
// order's blocks (a divisor of w's groups, stack_unit_pair_group; 0: all groups, pair-major).
// cluster_order: the cluster MLP form's order (stack_cluster_span; image of
// stack_cluster_image_bytes; group_block as that form has it).
StackMatrix build_stack_image(const QWeight& w, bool swiglu, int ctas, int cta_warps, int group_block, void* image,
                              cudaStream_t stream, bool cluster_order = false);
// The group_block of o_proj and down_proj for CudaOptions::decode_stack_local_staging: a head's
// columns (kStackHeadDim) for o_proj, 512 columns for down_proj (other blocks were no faster:
// docs/performance.md, session 27), in groups of `group` columns (as divisors of their groups allow).
KR_HD int stack_o_group_block(int o_groups, int group) { return stack_group_block(o_groups, kStackHeadDim / group); }
KR_HD int stack_down_group_block(int down_groups, int group) { return stack_group_block(down_groups, 512 / group); }

struct StackLayer {
  StackMatrix qkv, o, gate_up, down;  // [(Hq + 2 Hkv) D, H], [H, Hq D], [2 I, H], [H, I]
  const void* input_norm_w = nullptr;  // [H] bf16
  const void* mlp_norm_w = nullptr;    // [H] bf16
  void* k_cache = nullptr;             // [slots, Hkv, D] bf16
  void* v_cache = nullptr;
};

struct DecodeStackArgs {
  int layers = 0;
  StackLayer layer[kStackMaxLayers];
  bool bias = false;  // MLX biases (QWeight::has_bias), for every matrix; one group size for all
  int H = 0, I = 0, q_heads = 0, kv_heads = 0;
  void* residual = nullptr;             // [H] bf16: in, the embedding; out, h after the last layer
  void* normed = nullptr;               // [H] bf16: out, norm(h, final_norm)
  const void* final_norm_w = nullptr;   // [H] bf16
  float eps = 0.0f;
  int norm_kind = 0;   // kNormTimesWeight / kNormTimesOnePlusWeight (cuda_kernels.h)
  int activation = 0;  // kActSilu / kActGeluTanh
  float scale = 0.0f;  // attention scale
  const float* inv_freq = nullptr;     // [D / 2] RoPE
  // The step (device, the backend's step metadata): the token's position and slot,
  // its sequence's block table [max_blocks] and the cache's block size.
  const int32_t* position = nullptr;
  const int32_t* slot = nullptr;
  const int32_t* block_table = nullptr;
  int max_blocks = 0, block_size = 0;
  // Scratch, zero before the first launch; every launch leaves `sums` and the flags zero:
  float* sums = nullptr;     // f32 [stack_sum_floats]: qkv's [(Hq + 2 Hkv) D], o's [2][H], gate_up's [2 I],
                             // down's [2][H] outputs (o's and down's by layer parity in the flags form)
  float* partials = nullptr; // f32 [Hq][kStackMaxSplits][kStackPartFloats]: the attention splits' (max, sum, acc)
  void* attn_out = nullptr;  // bf16 [Hq D]: the merged attention, o_proj's input
  int* barrier = nullptr;    // [kStackBarrierInts], zero before the first launch: the grid barrier's
                             // count and base, the attention splits' tickets, the flags (kStackTicketsAt ..)
  // Tuning (CudaOptions): ring units a streaming warp (kStackMinRingDepth ..
  // kStackMaxRingDepth, as shared memory allows; the backend's default is
  // stack_auto_ring_depth), or with row_ring the ring's rows (kStackMinRingDepth ..
  // kStackMaxRingRows).
  int ring_depth = 4;
  // The row ring: instead of each streaming warp keeping its own ring of units filled by its
  // lanes' cp.async after each unit it computes (so that a ring is refilled only while its warp
  // computes, and at each barrier the grid's rings hold what they hold), warp 0's lane 0 of
  // each CTA fills ONE ring of ring_depth rows (a row: the kStackRowRingWarps units of one i of
  // a matrix that the CTA's warps take, side by side in the image, by one cp.async.bulk
  // completed on the row's mbarrier) through every matrix of the launch, whatever phase the
  // other warps are in, keeping at most rows_in_flight rows requested and not landed; the
  // streaming warps wait on a row's barrier and release it on another. Warp 0 still runs the
  // attention items, on its own: the CTA's shared work (norms, stagings, the grid barrier's
  // arrival) is done by warps 1-15, who meet at a named barrier. The barrier form only
  // (not flags, cta_attention, warp_merge or warp0_streams).
  bool row_ring = false;
  int rows_in_flight = 2;  // 1 .. ring_depth
  // Warp 0 streams weight units too, beside its attention items (its wait for an item's keys
  // then also waits for its units in flight): 16 streaming warps a CTA instead of 15
  // (stack_stream_warps), so that the busiest warp of a matrix has fewer units. Not with the
  // row ring, whose producer warp 0 is. The images must be built for it (StackMatrix::cta_warps).
  bool warp0_streams = false;
  // The row ring's rows in flight while the crew is between matrices (from its arrival at a
  // grid barrier to its next matrix's first unit: the barriers, stagings and attention, whose
  // L2 round trips queue behind the weights' reads): 1 .. rows_in_flight (not 0: the rows of
  // a matrix some warps are still in may not all be issued yet); -1: rows_in_flight.
  int window_rows_in_flight = -1;
  // The splits' partials merged by every CTA as it stages o_proj's input (after the barrier
  // that ends the attention), instead of by the last split of each kv head after a fence
  // and an atomic ticket (then attn_out is not written). The default form only: the flags
  // form and the CTA attention merge as before.
  bool stage_merge = true;
  // o_proj's input merged by each streaming warp for its own units (the barrier form, not
  // the CTA attention): a unit's columns (64 or 128 dims of one head) from the splits'
  // partials into the warp's scratch, instead of every CTA merging all Hq heads (the stage
  // merge) and meeting at a __syncthreads before o_proj. At 3B a warp has one or two o_proj
  // units, so this is one L2 round trip a warp where the CTA's stage merge takes two.
  bool warp_merge = false;
  // An item's keys, when they are all in its stage (a split of at most 32 keys on the CTA
  // that prefetched them: every item when the grid has a CTA an item), on the tensor cores
  // (attend_staged_mma) instead of a key a lane on the CUDA cores (attend_keys).
  bool mma_keys = true;
  // The attention a kv head a CTA (attention_cta: the block table's keys split over
  // its warps, merged in shared memory; at most kStackCtaMaxGroup q heads a kv head)
  // instead of splits of ~32 keys over the CTAs' warps 0 merged through global memory.
  bool cta_attention = false;
  // The flags form: three of a layer's five grid barriers (after qkv, the attention and
  // gate_up) replaced by counters that only the phases' consumers wait on. A streaming
  // warp that flushes qkv (gate_up) sums adds the units it summed to kv head g's (down's
  // column group c's) counter by a release; an attention item waits for its kv head's
  // qkv rows, its merge bumps the head's counter, and o_proj's (down_proj's) units wait
  // for the counter of their input's head (column group) and read that input from L2
  // (the merged attention; the GLU computed from gate_up's sums) instead of from a copy
  // every CTA stages. The norms still need all of h: the barriers after o_proj and down_proj stay.
  bool flags = false;
  // The cluster MLP form (stack_cluster_span): gate_up's sums, GLU and down_proj within
  // clusters of two CTAs, without the grid barrier between them. The barrier form only (not
  // flags or the row ring); launched with clusters of 2; gate_up's and down_proj's images
  // built in its order (StackMatrix::cluster_order).
  bool cluster_mlp = false;
  // When not null, u64 [layers][grid][kStackTracePoints]: the globaltimer at each
  // StackTracePoint of every layer and CTA (thread 0's view), written by every launch.
  unsigned long long* trace = nullptr;
};

// Floats of DecodeStackArgs::sums for a model of these sizes.
constexpr size_t stack_sum_floats(int H, int I, int q_heads, int kv_heads) {
  return static_cast<size_t>(q_heads + 2 * kv_heads) * kStackHeadDim + 4 * static_cast<size_t>(H) +
         2 * static_cast<size_t>(I);
}

// Whether the kernel takes a model of these sizes: H <= kStackMaxH, I <= kStackMaxI,
// H % 8 == 0, I % 16 == 0, Hq / Hkv <= kStackMaxGroup, Hkv <= kStackMaxKvHeads, 1 .. kStackMaxLayers layers.
bool stack_shapes_supported(int H, int I, int q_heads, int kv_heads, int layers);

// Shared memory a CTA uses, static and dynamic (configure_decode_stack sets the kernels'
// limit, kStackSmemLimit), for a model of these sizes (group: 64 or 128 columns) and a ring
// of ring_depth units for each of cta_warps streaming warps (stack_stream_warps; with the row
// ring: ring_depth rows of kStackRowRingWarps units), in the form cta_attention chooses, with
// warp_scratch_bytes (stack_warp_scratch_bytes) a streaming warp; decode_stack_smem_bytes: for a's.
constexpr size_t kStackSmemLimit = 227 * 1024;
// The ring depth of CudaOptions::decode_stack_ring_depth 0 (the default):
// kStackAutoRingDepth units a streaming warp, or the deepest below it (down to
// kStackMinRingDepth) whose shared memory (stack_smem_bytes, the default form's) fits
// kStackSmemLimit for a model of these sizes with cta_warps streaming warps of `group`-column
// units: the fastest measured for both group sizes since every flush is a 16-byte reduction
// (docs/performance.md, session 40).
constexpr int kStackAutoRingDepth = 4;
int stack_auto_ring_depth(int H, int I, int q_heads, int kv_heads, int group, int cta_warps);
// Bytes of a streaming warp's input scratch: a unit's GLU (the flags form) or merged attention
// (warp_merge), up to 128 columns of bf16.
KR_HD int stack_warp_scratch_bytes(bool flags, bool warp_merge) { return flags || warp_merge ? 256 : 0; }
size_t stack_smem_bytes(int H, int I, int q_heads, int kv_heads, int group, int ring_depth, int cta_warps,
                        bool cta_attention, int warp_scratch_bytes);
size_t decode_stack_smem_bytes(const DecodeStackArgs& a);
// Sets the kernels' shared-memory limit; once, outside any graph capture.
void configure_decode_stack();
// Why the kernel does not take this tuning (DecodeStackArgs::ring_depth, row_ring, rows_in_flight,
// window_rows_in_flight, warp0_streams beside the form's flags, cta_attention and warp_merge), or
// nullptr when it does: decode_stack_supports and the backend's refusal both ask it.
const char* stack_tuning_error(int ring_depth, bool row_ring, int rows_in_flight, int window_rows_in_flight,
                               bool warp0_streams, bool flags, bool cta_attention, bool warp_merge);
// Whether launch_decode_stack runs these shapes (stack_takes for each matrix, one group
// size, H <= kStackMaxH, I <= kStackMaxI, D = kStackHeadDim, Hq / Hkv <= kStackMaxGroup,
// at most kStackMaxKeys keys in the block table, the shared memory fits, every image built
// for the form's streaming warps: StackMatrix::cta_warps == stack_stream_warps(group,
// a.row_ring, a.warp0_streams), the CTA attention only where stack_cta_attention_fits).
bool decode_stack_supports(const DecodeStackArgs& a);
// Whether the cluster MLP form's clusters of two all fit on the device at once for a grid of
// `ctas` CTAs (cudaOccupancyMaxActiveClusters of the default form's kernel at this ring depth):
// its grid barriers need every CTA resident.
bool stack_cluster_mlp_resident(int H, int I, int q_heads, int kv_heads, int group, bool bias, int ring_depth,
                                int ctas);
// Launches the kernel on `ctas` CTAs (the images' grid; every CTA resident at once:
// a cooperative launch), with programmatic dependent launch when pdl. False
// (nothing launched) when !decode_stack_supports.
bool launch_decode_stack(const DecodeStackArgs& a, int ctas, bool pdl, cudaStream_t stream);

}  // namespace kr::cuda
