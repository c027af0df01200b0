// What the decode stack kernel takes (cuda_decode_stack.h: stack_takes,
// decode_stack_supports) and its images' sizes, on Llama-3.2-3B's shapes. Whatever
// it refuses runs the kernels a layer (CudaBackend::decode_stack_args), so these
// rules are what keeps a model or a context it was not measured on off it. Host code
// only: no GPU (the image pointers are never dereferenced).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cuda/cuda_decode_stack.h"

namespace kr::cuda {
namespace {

constexpr int kH = 3072, kI = 8192, kHq = 24, kHkv = 8, kD = kStackHeadDim, kLayers = 28;

// An AWQ-like 4-bit weight [N, K] with groups of `group` columns.
QWeight awq(int N, int K, int group = 128) {
  QWeight w;
  w.code = QCode::kU4;
  w.N = w.Np = N;
  w.K = w.Kp = K;
  w.group = group;
  w.groups = K / group;
  w.steps = K / 64;
  w.meta_f16 = true;
  return w;
}

// Every image's address (any non-null address: the host never reads it).
const uint8_t* const kImages = reinterpret_cast<const uint8_t*>(uintptr_t{1} << 32);

StackMatrix matrix(int N, int K, bool swiglu = false, int group = 128) {
  StackMatrix m;
  m.image = kImages;
  m.N = N;
  m.K = K;
  m.groups = K / group;
  m.units = (N / 32) * m.groups;
  m.group_block = m.groups;
  m.swiglu = swiglu;
  m.cta_warps = stack_stream_warps(group, false, false);
  return m;
}

// a's images as built for CTAs of cta_warps streaming warps (the row ring's: kStackRowRingWarps).
void set_cta_warps(DecodeStackArgs& a, int cta_warps) {
  for (int l = 0; l < a.layers; ++l)
    for (StackMatrix* m : {&a.layer[l].qkv, &a.layer[l].o, &a.layer[l].gate_up, &a.layer[l].down})
      m->cta_warps = cta_warps;
}

// The 3B model at a block table of `keys` keys (16-token blocks), Linears of `group`-column
// groups, images for the per-warp rings of warps 1 .. (stack_stream_warps(group, false, false)).
DecodeStackArgs llama_3b(int keys = 512, int group = 128) {
  static char scratch[16];
  DecodeStackArgs a;
  a.layers = kLayers;
  for (int l = 0; l < kLayers; ++l) {
    StackLayer& L = a.layer[l];
    L.qkv = matrix((kHq + 2 * kHkv) * kD, kH, false, group);
    L.o = matrix(kH, kHq * kD, false, group);
    L.gate_up = matrix(2 * kI, kH, true, group);
    L.down = matrix(kH, kI, false, group);
    L.input_norm_w = L.mlp_norm_w = L.k_cache = L.v_cache = scratch;
  }
  a.H = kH;
  a.I = kI;
  a.q_heads = kHq;
  a.kv_heads = kHkv;
  a.residual = a.normed = a.attn_out = scratch;
  a.final_norm_w = scratch;
  a.inv_freq = reinterpret_cast<const float*>(scratch);
  a.position = a.slot = a.block_table = reinterpret_cast<const int32_t*>(scratch);
  a.block_size = 16;
  a.max_blocks = keys / 16;
  a.sums = a.partials = reinterpret_cast<float*>(scratch);
  a.barrier = reinterpret_cast<int*>(scratch);
  return a;
}

TEST(DecodeStackPolicy, TakesFourBitWeightsOfSixtyFourAndOneTwentyEightColumnGroups) {
  EXPECT_TRUE(stack_takes(awq(5120, 3072)));
  EXPECT_TRUE(stack_takes(awq(5120, 3072, 64)));
  EXPECT_FALSE(stack_takes(awq(5120, 3072, 32)));   // the unit is a whole 64-column step
  EXPECT_FALSE(stack_takes(awq(5120, 3072, 3072)));  // per-channel scales
  QWeight w = awq(5120, 3072);
  w.code = QCode::kU8;
  EXPECT_FALSE(stack_takes(w));
  w = awq(5120, 3072);
  const int32_t perm[1] = {0};
  w.perm = perm;  // act-order: x would need gathering first
  EXPECT_FALSE(stack_takes(w));
  w = awq(5120, 3072);
  w.N = 5104;  // not whole tile pairs
  w.Np = 5120;
  EXPECT_FALSE(stack_takes(w));
}

TEST(DecodeStackPolicy, ImagesHoldExactlyTheirUnits) {
  // o_proj of 3B: 96 tile pairs x 24 groups = 2,304 units of 2 KB of codes and 128 B of meta
  // (they had been padded to two rows of 132 x 15 warps: 3,960 units).
  EXPECT_EQ(stack_image_bytes(awq(kH, kH)), size_t{2304} * (2048 + 128));
  // 64-column groups: units of one step.
  EXPECT_EQ(stack_image_bytes(awq(kH, kH, 64)), size_t{96 * 48} * (1024 + 128));
}

// Every unit of every warp's range has its own slot, the slots are exactly 0 .. units - 1,
// and the i-th units of the warps lie side by side (the GPU reads one window at a time).
TEST(DecodeStackPolicy, UnitSlotsAreABijectionInReadOrder) {
  const int Ws[] = {132 * kStackWarps, 132 * kStackRowRingWarps, 78 * kStackRowRingWarps, 7, 1};
  const int unit_counts[] = {1, 6, 7, 2304, 3840, 12288, 6144, 1979, 1980, 1981, 3961};
  for (int W : Ws) {
    for (int units : unit_counts) {
      std::vector<int> owner(units, -1);
      const int n = units / W;
      for (int w = 0; w < W; ++w) {
        const int b = stack_range_begin(units, w, W), e = stack_range_begin(units, w + 1, W);
        ASSERT_TRUE(e - b == n || e - b == n + 1) << units << " units, W " << W << ", warp " << w;
        for (int i = 0; i < e - b; ++i) {
          const int64_t slot = stack_unit_slot(units, W, w, i);
          ASSERT_GE(slot, 0);
          ASSERT_LT(slot, units) << units << " units, W " << W << ", warp " << w << ", unit " << i;
          ASSERT_EQ(owner[slot], -1) << "slot " << slot << " taken twice";
          owner[slot] = w;
          if (i < n) {
            EXPECT_EQ(slot, int64_t{i} * W + w);
          }
        }
      }
      for (int u = 0; u < units; ++u) EXPECT_NE(owner[u], -1) << "slot " << u << " of " << units << " empty";
      // The long warps' last units follow the full rows in warp order.
      int64_t prev = -1;
      for (int w = 0; w < W; ++w) {
        const int len = stack_range_begin(units, w + 1, W) - stack_range_begin(units, w, W);
        if (len == n + 1) {
          const int64_t slot = stack_unit_slot(units, W, w, n);
          EXPECT_GT(slot, prev);
          prev = slot;
        }
      }
    }
  }
}

// The unit order in blocks of groups (stack_unit_pair_group): every (tile pair, group) once;
// pair-major when the block is all the groups (the order before blocks); inside a block, pair
// after pair over the block's groups. The kernel's walk (stack_next_unit from a warp's first
// unit) gives the same units, and a warp's sums go out exactly when the next unit is of another
// pair: with gi == group_block - 1, or at the end of its range.
TEST(DecodeStackPolicy, UnitOrderInGroupBlocksIsABijectionTheKernelWalks) {
  struct Shape {
    int pairs, groups;
  };
  const Shape shapes[] = {{96, 24}, {96, 64}, {96, 48}, {128, 32}, {128, 112}, {3, 5}};
  const int Ws[] = {132 * kStackWarps, 132 * kStackRowRingWarps, 114 * kStackRowRingWarps, 7, 1};
  for (const Shape& sh : shapes) {
    for (int gb = 1; gb <= sh.groups; ++gb) {
      if (sh.groups % gb != 0) continue;
      const int units = sh.pairs * sh.groups;
      std::vector<int> seen(units, 0);
      for (int u = 0; u < units; ++u) {
        int pair = -1, grp = -1;
        stack_unit_pair_group(u, sh.pairs, gb, &pair, &grp);
        ASSERT_TRUE(pair >= 0 && pair < sh.pairs && grp >= 0 && grp < sh.groups) << u << " gb " << gb;
        ++seen[pair * sh.groups + grp];
        if (gb == sh.groups) {
          EXPECT_EQ(pair, u / sh.groups);
          EXPECT_EQ(grp, u % sh.groups);
        }
        EXPECT_EQ(grp / gb, u / (sh.pairs * gb)) << "unit " << u << " outside its block, gb " << gb;
      }
      for (int i = 0; i < units; ++i) ASSERT_EQ(seen[i], 1) << "unit (pair, group) " << i << ", gb " << gb;
      for (int W : Ws) {
        for (int w = 0; w < W; ++w) {
          const int b = stack_range_begin(units, w, W), e = stack_range_begin(units, w + 1, W);
          if (e <= b) continue;
          int pair, grp;
          stack_unit_pair_group(b, sh.pairs, gb, &pair, &grp);
          int gi = grp % gb;
          for (int u = b; u < e; ++u) {
            int p2, g2;
            stack_unit_pair_group(u, sh.pairs, gb, &p2, &g2);
            ASSERT_EQ(pair, p2) << "warp " << w << " unit " << u << " gb " << gb;
            ASSERT_EQ(grp, g2) << "warp " << w << " unit " << u << " gb " << gb;
            ASSERT_EQ(gi, g2 % gb);
            const bool flush = gi == gb - 1;
            stack_next_unit(sh.pairs, gb, &pair, &grp, &gi);
            if (u + 1 < units) {
              int p3, g3;
              stack_unit_pair_group(u + 1, sh.pairs, gb, &p3, &g3);
              EXPECT_EQ(flush, p3 != p2) << "warp " << w << " unit " << u << " gb " << gb;
            }
          }
        }
      }
    }
  }
}

// stack_cta_groups: the column groups a CTA stages hold every group its warps' units read, and
// with the blocks of CudaOptions::decode_stack_local_staging only a few: at 3B on 132 SMs, at
// most 2 of o_proj's 24 heads and 8 of down_proj's 64 groups (every CTA staging all of them
// is what made those stagings slow).
TEST(DecodeStackPolicy, CtaGroupsHoldEveryGroupItsUnitsReadAndFewOthers) {
  struct Case {
    int pairs, groups, gb, max_width;  // max_width at 132 CTAs; 0: not checked
  };
  const Case cases[] = {{96, 24, 24, 0},  {96, 24, stack_o_group_block(24, 128), 2},
                        {96, 48, stack_o_group_block(48, 64), 4},  {96, 64, stack_down_group_block(64, 128), 8},
                        {96, 128, stack_down_group_block(128, 64), 16}, {96, 64, 64, 0}, {3, 5, 5, 0}, {3, 5, 1, 0}};
  EXPECT_EQ(stack_o_group_block(24, 128), 1);
  EXPECT_EQ(stack_o_group_block(48, 64), 2);
  EXPECT_EQ(stack_down_group_block(64, 128), 4);
  EXPECT_EQ(stack_down_group_block(112, 128), 4);
  EXPECT_EQ(stack_down_group_block(224, 64), 8);
  EXPECT_EQ(stack_group_block(30, 8), 6);  // the largest divisor at most 8
  for (const Case& c : cases) {
    const int units = c.pairs * c.groups;
    for (int ctas : {132, 114, 7, 1}) {
     for (int cw : {kStackRowRingWarps, kStackWarps}) {
      const int W = ctas * cw;
      for (int cta = 0; cta < ctas; ++cta) {
        int g0 = -1, g1 = -1;
        stack_cta_groups(units, c.pairs, c.gb, cta, ctas, cw, &g0, &g1);
        ASSERT_TRUE(0 <= g0 && g0 <= g1 && g1 <= c.groups) << g0 << " " << g1;
        for (int w = cta * cw; w < (cta + 1) * cw; ++w) {
          for (int u = stack_range_begin(units, w, W); u < stack_range_begin(units, w + 1, W); ++u) {
            int pair, grp;
            stack_unit_pair_group(u, c.pairs, c.gb, &pair, &grp);
            ASSERT_TRUE(grp >= g0 && grp < g1) << "CTA " << cta << " of " << ctas << " unit " << u << " group " << grp
                                               << " outside [" << g0 << ", " << g1 << "), gb " << c.gb;
          }
        }
        if (ctas == 132 && c.max_width > 0) {
          EXPECT_LE(g1 - g0, c.max_width) << "CTA " << cta << ", gb " << c.gb << ", warps " << cw;
        }
      }
     }
    }
  }
}

// The row ring (DecodeStackArgs::row_ring): the kernel's producer copies each CTA's rows of
// a matrix (cta_rows: n full rows of kStackRowRingWarps slots, then a packed row) in order,
// and streaming warp w takes its unit i from row i at its place (w's index in the CTA), or,
// its last unit when it has n + 1, from the packed row at its pos. Here, for several unit
// counts and grids: the slots the rows hold are exactly the CTA's warps' slots
// (stack_unit_slot), each warp's units found where the kernel reads them, in its order.
TEST(DecodeStackPolicy, RowRingRowsHoldEachWarpsUnitsWhereItReadsThem) {
  for (int units : {3840, 2304, 12288, 6144, 1979, 1980, 1981, 5, 0, 40}) {
    for (int ctas : {132, 114, 7, 1}) {
      const int W = ctas * kStackRowRingWarps;
      for (int cta = 0; cta < ctas; ++cta) {
        const CtaRows r = cta_rows(units, cta, W, cta * kStackRowRingWarps);
        ASSERT_GE(r.packed, 0);
        ASSERT_LE(r.packed, kStackRowRingWarps);
        // The slots of the CTA's rows, in the producer's order.
        std::vector<int64_t> row_slots;
        for (int i = 0; i < r.n; ++i)
          for (int w = 0; w < kStackRowRingWarps; ++w)
            row_slots.push_back(static_cast<int64_t>(i) * W + cta * kStackRowRingWarps + w);
        for (int k = 0; k < r.packed; ++k) row_slots.push_back(r.p0 + k);
        ASSERT_EQ(cta_row_count(r), r.n + (r.packed > 0 ? 1 : 0));
        std::vector<int64_t> warp_slots;
        for (int wi = 0; wi < kStackRowRingWarps; ++wi) {
          const int gw = cta * kStackRowRingWarps + wi;
          const CtaRows rw = cta_rows(units, cta, W, gw);
          ASSERT_EQ(rw.n, r.n);
          ASSERT_EQ(rw.packed, r.packed);
          ASSERT_EQ(rw.p0, r.p0);
          const int n = stack_range_begin(units, gw + 1, W) - stack_range_begin(units, gw, W);
          ASSERT_TRUE(n == r.n || n == r.n + 1) << n;
          for (int i = 0; i < n; ++i) {
            // Where the kernel reads unit i: row i at wi, or the packed row at pos.
            const size_t at = i < r.n ? static_cast<size_t>(i) * kStackRowRingWarps + wi
                                      : static_cast<size_t>(r.n) * kStackRowRingWarps + rw.pos;
            ASSERT_LT(at, row_slots.size()) << "units " << units << " CTA " << cta << " warp " << wi;
            EXPECT_EQ(row_slots[at], stack_unit_slot(units, W, gw, i))
                << "units " << units << " ctas " << ctas << " CTA " << cta << " warp " << wi << " unit " << i;
            warp_slots.push_back(stack_unit_slot(units, W, gw, i));
          }
        }
        std::sort(warp_slots.begin(), warp_slots.end());
        std::vector<int64_t> sorted = row_slots;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(sorted, warp_slots) << "units " << units << " ctas " << ctas << " CTA " << cta;
      }
    }
  }
}

// The flags form (DecodeStackArgs::flags): a consumer waits until its counter holds as many
// units as the producers of its input add, each flush adding the units it summed of its tile
// pair. A target above that total hangs the kernel; one below it reads partial sums. Here,
// for every warp's range at several grids: each counter's total is its target, and each tile
// pair feeds the counter of the consumer that reads its rows.
TEST(DecodeStackPolicy, FlagsCountEveryUnitOfTheirInputs) {
  struct Shape {
    int H, I, Hq, Hkv, group;
  };
  const Shape shapes[] = {{3072, 8192, 24, 8, 128}, {3072, 8192, 24, 8, 64},   // Llama-3.2-3B
                          {4096, 14336, 32, 8, 128},                            // Llama-3.1-8B
                          {2560, 9728, 32, 8, 128},                             // Qwen3-4B
                          {256, 512, 4, 2, 64},      {128, 256, 2, 2, 128}};    // small, MHA
  const int Ws[] = {132 * kStackWarps, 132 * kStackRowRingWarps, 78 * kStackRowRingWarps, 7, 1};
  // Each warp's flushes of a matrix of `units` units in tile pairs of `groups` units:
  // (pair, units of the pair it summed), as the kernel's run_matrix flushes them.
  auto flushes = [](int units, int groups, int W, auto&& emit) {
    for (int w = 0; w < W; ++w) {
      const int b = stack_range_begin(units, w, W), e = stack_range_begin(units, w + 1, W);
      if (b == e) continue;
      int pair = b / groups, summed = 0;
      for (int u = b; u < e; ++u) {
        if (u / groups != pair) {
          emit(pair, summed);
          pair = u / groups;
          summed = 0;
        }
        ++summed;
      }
      emit(pair, summed);
    }
  };
  for (const Shape& sh : shapes) {
    const int G = sh.Hq / sh.Hkv, groups = sh.H / sh.group;
    ASSERT_LE(sh.Hkv, kStackMaxKvHeads);
    ASSERT_LE(sh.I / sh.group, kStackFlags - 2 * kStackMaxKvHeads);
    for (int W : Ws) {
      // qkv: kv head g's attention reads q heads g G .. g G + G - 1, k head g and v head g.
      std::vector<unsigned> qkv(sh.Hkv, 0);
      const int qkv_pairs = (sh.Hq + 2 * sh.Hkv) * kD / 32;
      flushes(qkv_pairs * groups, groups, W, [&](int pair, int summed) {
        const int f = stack_qkv_flag(pair, sh.Hq, sh.Hkv);
        ASSERT_GE(f, 0);
        ASSERT_LT(f, sh.Hkv);
        const int row = pair * 32, head = row / kD;  // the pair's 32 rows lie in one head
        ASSERT_EQ((row + 31) / kD, head);
        const bool read = (head >= f * G && head < f * G + G) || head == sh.Hq + f || head == sh.Hq + sh.Hkv + f;
        ASSERT_TRUE(read) << "qkv pair " << pair << " counted for kv head " << f;
        qkv[f] += static_cast<unsigned>(summed);
      });
      for (int g = 0; g < sh.Hkv; ++g)
        EXPECT_EQ(qkv[g], stack_qkv_flag_units(sh.Hq, sh.Hkv, groups)) << "kv head " << g << ", W " << W;
      // gate_up: down_proj's column group c reads the GLU of gate rows c group .. (c + 1) group - 1.
      std::vector<unsigned> glu(sh.I / sh.group, 0);
      flushes(sh.I / 16 * groups, groups, W, [&](int pair, int summed) {
        const int c = stack_glu_flag(pair, sh.group);
        ASSERT_GE(c, 0);
        ASSERT_LT(c, sh.I / sh.group);
        ASSERT_TRUE(pair * 16 >= c * sh.group && pair * 16 + 16 <= (c + 1) * sh.group) << "gate_up pair " << pair;
        glu[c] += static_cast<unsigned>(summed);
      });
      for (size_t c = 0; c < glu.size(); ++c)
        EXPECT_EQ(glu[c], stack_glu_flag_units(sh.group, groups)) << "column group " << c << ", W " << W;
    }
    // o_proj: column group grp reads q heads of kv head stack_o_flag only.
    for (int grp = 0; grp < sh.Hq * kD / sh.group; ++grp) {
      const int f = stack_o_flag(grp, sh.group, sh.Hq, sh.Hkv);
      ASSERT_GE(grp * sh.group, f * G * kD);
      ASSERT_LE((grp + 1) * sh.group, (f + 1) * G * kD) << "o_proj column group " << grp;
    }
  }
}

TEST(DecodeStackPolicy, LlamaShapesUpToFiveHundredTwelveKeys) {
  EXPECT_TRUE(decode_stack_supports(llama_3b(512)));
  EXPECT_TRUE(decode_stack_supports(llama_3b(16)));
  // Past 512 keys the kernel's attention was slower than the flash decode kernel.
  EXPECT_FALSE(decode_stack_supports(llama_3b(528)));
  // Group 128: the 12-warp form's 11 rings (of DecodeStackArgs::ring_depth 4 here); group 64: 15.
  const size_t smem = decode_stack_smem_bytes(llama_3b());
  EXPECT_EQ(smem, stack_smem_bytes(kH, kI, kHq, kHkv, 128, 4, 11, false, 0));
  EXPECT_GT(smem, size_t{140} << 10);
  EXPECT_LE(smem, size_t{227} << 10);
  EXPECT_TRUE(decode_stack_supports(llama_3b(512, 64)));
  EXPECT_EQ(decode_stack_smem_bytes(llama_3b(512, 64)), stack_smem_bytes(kH, kI, kHq, kHkv, 64, 4, 15, false, 0));
}

// The default ring (CudaOptions::decode_stack_ring_depth 0): 4 units a streaming warp where
// shared memory holds them (3B and 8B at both group sizes, with their streaming warps), else
// the deepest shallower ring that fits, down to kStackMinRingDepth.
TEST(DecodeStackPolicy, AutoRingDepthIsTheDeepestUpToFourThatFits) {
  for (int group : {64, 128}) {
    const int warps = stack_stream_warps(group, false, false);
    EXPECT_EQ(stack_auto_ring_depth(kH, kI, kHq, kHkv, group, warps), kStackAutoRingDepth) << group;
    EXPECT_EQ(stack_auto_ring_depth(4096, 14336, 32, 8, group, warps), kStackAutoRingDepth) << group;
  }
  EXPECT_EQ(kStackAutoRingDepth, 4);
  DecodeStackArgs a = llama_3b();
  a.ring_depth = stack_auto_ring_depth(kH, kI, kHq, kHkv, 128, stack_stream_warps(128, false, false));
  EXPECT_TRUE(decode_stack_supports(a));
  // Wider models: each answer fits, and is 4 or one shallower than a ring that does not fit;
  // the widest needs a shallower ring (the fallback is taken).
  bool shallower = false;
  for (int H : {4096, 8192, 12288, 16384}) {
    const int I = 4 * H, warps = stack_stream_warps(128, false, false);
    const int d = stack_auto_ring_depth(H, I, H / 128, 8, 128, warps);
    ASSERT_GE(d, kStackMinRingDepth) << H;
    ASSERT_LE(d, kStackAutoRingDepth) << H;
    if (d > kStackMinRingDepth) {  // (at the minimum it may not fit: the model is refused)
      EXPECT_LE(stack_smem_bytes(H, I, H / 128, 8, 128, d, warps, false, 0), kStackSmemLimit) << H;
    }
    if (d < kStackAutoRingDepth) {
      EXPECT_GT(stack_smem_bytes(H, I, H / 128, 8, 128, d + 1, warps, false, 0), kStackSmemLimit) << H;
      shallower = true;
    }
  }
  EXPECT_TRUE(shallower);
}

TEST(DecodeStackPolicy, RingDepthAsSharedMemoryAllows) {
  DecodeStackArgs a = llama_3b();
  // 11 warps x depth x 2,176 B of ring next to ~54 KB (of which the threads' cursors 12.5 KB
  // and the residual 6 KB: session 25 took them out of registers): every depth the tuning
  // takes (up to kStackMaxRingDepth) fits; with 15 warps (the 16-warp form) 6 did not.
  for (int depth : {2, 4, 5, 6}) {
    a.ring_depth = depth;
    EXPECT_TRUE(decode_stack_supports(a)) << depth;
  }
  for (int depth : {1, 7}) {
    a.ring_depth = depth;
    EXPECT_FALSE(decode_stack_supports(a)) << depth;
  }
  EXPECT_GT(stack_smem_bytes(kH, kI, kHq, kHkv, 128, 6, 15, false, 0), kStackSmemLimit);
  // The row ring (16 warps a CTA for both group sizes): rows of 15 units as shared memory allows
  // (the same bytes as 15 rings of that depth), up to kStackMaxRingRows, at most as many rows in
  // flight as it has, the barrier form only.
  a = llama_3b();
  a.row_ring = true;
  EXPECT_FALSE(decode_stack_supports(a));  // images for 11 streaming warps
  set_cta_warps(a, kStackRowRingWarps);
  for (int rows : {2, 4, 5}) {
    a.ring_depth = rows;
    for (int in_flight : {1, rows}) {
      a.rows_in_flight = in_flight;
      EXPECT_TRUE(decode_stack_supports(a)) << rows << " " << in_flight;
    }
    a.rows_in_flight = 0;
    EXPECT_FALSE(decode_stack_supports(a)) << rows;
    a.rows_in_flight = rows + 1;
    EXPECT_FALSE(decode_stack_supports(a)) << rows;
  }
  a.ring_depth = 6;  // 15 x 6 x 2,176 B: more than shared memory
  a.rows_in_flight = 2;
  EXPECT_FALSE(decode_stack_supports(a));
  a.ring_depth = 4;
  EXPECT_TRUE(decode_stack_supports(a));
  a.flags = true;
  EXPECT_FALSE(decode_stack_supports(a));
  a.flags = false;
  a.cta_attention = true;
  EXPECT_FALSE(decode_stack_supports(a));
  a.cta_attention = false;
  a.warp_merge = true;
  EXPECT_FALSE(decode_stack_supports(a));
  a.warp_merge = false;
  a.ring_depth = kStackMaxRingRows + 1;
  EXPECT_FALSE(decode_stack_supports(a));
  // The same rules give the backend's refusal its reason.
  EXPECT_EQ(stack_tuning_error(2, false, 0, 0, true, true, false, false), nullptr);  // rows in flight: row ring only
  EXPECT_NE(stack_tuning_error(7, false, 2, -1, false, false, false, false), nullptr);
  EXPECT_EQ(stack_tuning_error(8, true, 8, -1, false, false, false, false), nullptr);
  EXPECT_NE(stack_tuning_error(4, true, 2, 3, false, false, false, false), nullptr);  // window above the rows in flight
  EXPECT_NE(stack_tuning_error(4, true, 2, 0, false, false, false, false), nullptr);
  EXPECT_EQ(stack_tuning_error(4, true, 2, 1, false, false, false, false), nullptr);
  EXPECT_NE(stack_tuning_error(4, true, 2, -1, false, false, false, true), nullptr);
  EXPECT_NE(stack_tuning_error(4, true, 2, -1, true, false, false, false), nullptr);  // warp 0: the producer
  // The flags form's GLU scratch and the warp merge's (room for 16 x 256 B) leave 3B's rings
  // (11 a CTA, or 12 with warp 0 streaming) every depth up to kStackMaxRingDepth. With 15 rings
  // of the 16-warp form they left 5 units, with 16, 4.
  for (bool warp_merge : {false, true}) {
    a = llama_3b();
    a.flags = !warp_merge;
    a.warp_merge = warp_merge;
    a.ring_depth = kStackMaxRingDepth;
    EXPECT_TRUE(decode_stack_supports(a)) << warp_merge;
    EXPECT_EQ(decode_stack_smem_bytes(a),
              stack_smem_bytes(kH, kI, kHq, kHkv, 128, kStackMaxRingDepth, 11, false, 0) + kStackWarps * 256)
        << warp_merge;
    a.warp0_streams = true;
    EXPECT_FALSE(decode_stack_supports(a)) << warp_merge;  // images for 11 streaming warps
    set_cta_warps(a, 12);
    EXPECT_TRUE(decode_stack_supports(a)) << warp_merge;
    EXPECT_LE(stack_smem_bytes(kH, kI, kHq, kHkv, 128, 5, 15, false, 256), kStackSmemLimit);
    EXPECT_GT(stack_smem_bytes(kH, kI, kHq, kHkv, 128, 5, 16, false, 256), kStackSmemLimit);
  }
  EXPECT_EQ(stack_warp_scratch_bytes(false, false), 0);
  EXPECT_EQ(stack_warp_scratch_bytes(true, true), 256);
  // Llama-3.1-8B (I = 14,336: 28 KB of GLU input): 6 units fit with 11 or 12 rings; with 15
  // rings 5 fit, 6 do not; with 16, 4 fit, 5 do not.
  EXPECT_LE(stack_smem_bytes(4096, 14336, 32, 8, 128, 6, 11, false, 0), kStackSmemLimit);
  EXPECT_LE(stack_smem_bytes(4096, 14336, 32, 8, 128, 6, 12, false, 0), kStackSmemLimit);
  EXPECT_LE(stack_smem_bytes(4096, 14336, 32, 8, 128, 5, 15, false, 0), kStackSmemLimit);
  EXPECT_GT(stack_smem_bytes(4096, 14336, 32, 8, 128, 6, 15, false, 0), kStackSmemLimit);
  EXPECT_LE(stack_smem_bytes(4096, 14336, 32, 8, 128, 4, 16, false, 0), kStackSmemLimit);
  EXPECT_GT(stack_smem_bytes(4096, 14336, 32, 8, 128, 5, 16, false, 0), kStackSmemLimit);
}

// The CTA attention runs a key split a warp (up to kStackMaxSplits): the 16-warp forms (group
// 64) only; the 12-warp form of group 128 refuses it.
TEST(DecodeStackPolicy, CtaAttentionUpToFourQHeadsAKvHeadOnSixteenWarps) {
  EXPECT_TRUE(stack_cta_attention_fits(64));
  EXPECT_FALSE(stack_cta_attention_fits(128));
  DecodeStackArgs a = llama_3b(512, 128);
  a.cta_attention = true;
  EXPECT_FALSE(decode_stack_supports(a));
  a = llama_3b(512, 64);  // 3 q heads a kv head
  a.cta_attention = true;
  EXPECT_TRUE(decode_stack_supports(a));
  EXPECT_EQ(decode_stack_smem_bytes(a), decode_stack_smem_bytes(llama_3b(512, 64)));  // its scratch fits in xs
  a = llama_3b(512, 64);
  a.cta_attention = true;
  a.q_heads = 48;  // 6 q heads a kv head: the shared-memory merge takes at most 4
  for (int l = 0; l < kLayers; ++l) {
    a.layer[l].qkv = matrix((48 + 2 * kHkv) * kD, kH, false, 64);
    a.layer[l].o = matrix(kH, 48 * kD, false, 64);
  }
  EXPECT_FALSE(decode_stack_supports(a));
  a.cta_attention = false;
  EXPECT_TRUE(decode_stack_supports(a));
  // A small model: the scratch (16 warps x 4 heads x 2 + 4 x 128 floats) outgrows the
  // matrix inputs (512 bf16) and sets the first region's size.
  EXPECT_GT(stack_smem_bytes(128, 256, 4, 1, 128, 4, 15, true, 0),
            stack_smem_bytes(128, 256, 4, 1, 128, 4, 15, false, 0));
}

// A CTA has 12 warps in the per-warp ring forms of group 128, else 16 (stack_cta_warps); warps
// 1 .. stream, or all of them with warp0_streams (not with the row ring, whose producer warp 0
// is), and an image is read in the order of the warps it was built for: the kernel never runs on
// images of another count (their units would go to the wrong warps).
TEST(DecodeStackPolicy, ImagesAreReadByTheWarpsTheyWereBuiltFor) {
  EXPECT_EQ(stack_cta_warps(128, false), 12);
  EXPECT_EQ(stack_cta_warps(128, true), kStackWarps);
  EXPECT_EQ(stack_cta_warps(64, false), kStackWarps);
  EXPECT_EQ(stack_cta_warps(64, true), kStackWarps);
  EXPECT_EQ(stack_stream_warps(128, false, false), 11);
  EXPECT_EQ(stack_stream_warps(128, false, true), 12);
  EXPECT_EQ(stack_stream_warps(128, true, false), kStackRowRingWarps);
  EXPECT_EQ(stack_stream_warps(64, false, false), kStackWarps - 1);
  EXPECT_EQ(stack_stream_warps(64, false, true), kStackWarps);
  EXPECT_EQ(stack_stream_warps(64, true, false), kStackRowRingWarps);
  // The counts build_stack_image takes: every form's, the row ring's 15 for group 128 too.
  for (int cw : {11, 12, 15}) EXPECT_TRUE(stack_form_stream_warps(128, cw)) << cw;
  for (int cw : {10, 13, 16}) EXPECT_FALSE(stack_form_stream_warps(128, cw)) << cw;
  for (int cw : {15, 16}) EXPECT_TRUE(stack_form_stream_warps(64, cw)) << cw;
  for (int cw : {11, 12, 14}) EXPECT_FALSE(stack_form_stream_warps(64, cw)) << cw;
  // Two mma chains a tile where a form has the registers (12 warps), else one.
  EXPECT_EQ(stack_mma_chains(stack_cta_warps(128, false)), 2);
  EXPECT_EQ(stack_mma_chains(stack_cta_warps(128, true)), 1);
  EXPECT_EQ(stack_mma_chains(stack_cta_warps(64, false)), 1);
  for (int group : {128, 64}) {
    const int cw = stack_cta_warps(group, false);
    DecodeStackArgs a = llama_3b(512, group);
    EXPECT_TRUE(decode_stack_supports(a)) << group;
    a.warp0_streams = true;
    EXPECT_FALSE(decode_stack_supports(a)) << group;  // cw - 1 warp images
    set_cta_warps(a, cw);
    EXPECT_TRUE(decode_stack_supports(a)) << group;
    a.layer[13].o.cta_warps = cw - 1;  // one image of the other order
    EXPECT_FALSE(decode_stack_supports(a)) << group;
    a = llama_3b(512, group);
    a.row_ring = true;
    set_cta_warps(a, kStackRowRingWarps);
    EXPECT_TRUE(decode_stack_supports(a)) << group;
    a.warp0_streams = true;
    set_cta_warps(a, kStackWarps);
    EXPECT_FALSE(decode_stack_supports(a)) << group;
  }
  // Why warp 0 streams: at 3B on 132 SMs the busiest warp of each matrix (qkv, o, gate_up,
  // down) computes 2 / 2 / 6 / 3 units with 16 warps a CTA, 2 / 2 / 7 / 4 with 15, 3 / 2 / 8 / 4
  // with 12 and 3 / 2 / 9 / 5 with 11; every grid barrier waits for the busiest.
  const int units[4] = {3840, 2304, 12288, 6144};
  const int busiest[4][4] = {{2, 2, 6, 3}, {2, 2, 7, 4}, {3, 2, 8, 4}, {3, 2, 9, 5}};
  const int cta_warps[4] = {16, 15, 12, 11};
  for (int k = 0; k < 4; ++k) {
    for (int c = 0; c < 4; ++c) {
      const int W = 132 * cta_warps[c];
      int most = 0;
      for (int w = 0; w < W; ++w)
        most = std::max(most, stack_range_begin(units[k], w + 1, W) - stack_range_begin(units[k], w, W));
      EXPECT_EQ(most, busiest[c][k]) << "matrix " << k << " warps " << cta_warps[c];
    }
  }
}

// stack_warp_range (what the kernel works out once a launch, a warp and a matrix of a layer):
// its first offset and last step walk the warp's units to exactly stack_unit_slot's places, a
// full row (W units) apart but for a last unit in the packed row; its (pair, group, gi) is
// stack_unit_pair_group's of the warp's first unit.
TEST(DecodeStackPolicy, WarpRangesWalkTheImageAsItsSlots) {
  struct Shape {
    int pairs, groups, gb;
  };
  const Shape shapes[] = {{120, 24, 24}, {96, 24, 1}, {512, 24, 24}, {96, 64, 4}, {96, 48, 2}, {3, 5, 5}, {896, 32, 32}};
  for (const Shape& sh : shapes) {
    const int units = sh.pairs * sh.groups;
    for (int W : {132 * kStackWarps, 132 * kStackRowRingWarps, 114 * kStackRowRingWarps, 7, 1}) {
      for (int gw = 0; gw < W; ++gw) {
        const int ub = 2176;
        const StackWarpRange r = stack_warp_range(units, sh.pairs, sh.gb, W, gw, ub);
        const int b = stack_range_begin(units, gw, W);
        ASSERT_EQ(r.n, stack_range_begin(units, gw + 1, W) - b);
        int64_t at = r.first;
        for (int i = 0; i < r.n; ++i) {
          ASSERT_EQ(at, stack_unit_slot(units, W, gw, i) * ub) << units << " units, W " << W << " warp " << gw << " unit " << i;
          at += i + 1 == r.n - 1 ? r.last_step : int64_t{W} * ub;  // the cursor's step
        }
        if (r.n > 0) {
          int pair, grp;
          stack_unit_pair_group(b, sh.pairs, sh.gb, &pair, &grp);
          EXPECT_EQ(r.pair, pair);
          EXPECT_EQ(r.grp, grp);
          EXPECT_EQ(r.gi, grp % sh.gb);
        }
      }
    }
  }
  // The largest shapes the kernel takes keep the ranges' 16-bit fields: gate_up of I =
  // kStackMaxI (2 I / 32 tile pairs) in 64-column groups of K = kStackMaxH, on a small grid.
  const int pairs = 2 * kStackMaxI / 32, groups = kStackMaxH / 64, W = 8 * kStackRowRingWarps;
  for (int gw : {0, W / 2, W - 1}) {
    const StackWarpRange r = stack_warp_range(pairs * groups, pairs, groups, W, gw, 1152);
    int pair, grp;
    stack_unit_pair_group(stack_range_begin(pairs * groups, gw, W), pairs, groups, &pair, &grp);
    EXPECT_EQ(r.n, stack_range_begin(pairs * groups, gw + 1, W) - stack_range_begin(pairs * groups, gw, W));
    EXPECT_EQ(r.pair, pair);
    EXPECT_EQ(r.grp, grp);
  }
}

// Every streaming warp's cluster MLP range of one matrix (stack_cluster_span, _range) walked as
// the kernel walks it: its units in the span's order (stack_unit_pair_group), at the image's
// slots i W + gw, within stack_cluster_rows; every unit in exactly one span. visit(cta, pair,
// grp, gi) sees each unit.
template <class Visit>
void walk_cluster_spans(bool down, int pairs, int groups, int gb, int ctas, int cta_warps, int ub,
                        const std::string& at, Visit visit) {
  const int W = ctas * cta_warps;
  std::vector<int> seen(static_cast<size_t>(pairs) * groups, 0);
  for (int gw = 0; gw < W; ++gw) {
    int b = 0, n = 0;
    stack_cluster_span(down, pairs, groups, gb, cta_warps, gw, &b, &n);
    const StackWarpRange r = stack_cluster_range(down, pairs, groups, gb, W, cta_warps, gw, ub);
    ASSERT_EQ(r.n, n) << at;
    ASSERT_LE(n, stack_cluster_rows(down, pairs, groups, gb, cta_warps)) << at;
    EXPECT_EQ(r.first, gw * ub) << at;
    EXPECT_EQ(r.last_step, W * ub) << at;
    int pair = r.pair, grp = r.grp, gi = r.gi;
    for (int i = 0; i < n; ++i) {
      int p2, g2;
      stack_unit_pair_group(b + i, pairs, gb, &p2, &g2);
      ASSERT_EQ(pair, p2) << at << " warp " << gw << " unit " << i;
      ASSERT_EQ(grp, g2) << at << " warp " << gw << " unit " << i;
      ++seen[static_cast<size_t>(b + i)];
      visit(gw / cta_warps, pair, grp, gi);
      stack_next_unit(pairs, gb, &pair, &grp, &gi);
    }
  }
  for (size_t u = 0; u < seen.size(); ++u) ASSERT_EQ(seen[u], 1) << at << " unit " << u;
}

// The cluster MLP form (stack_cluster_span): on each shape it takes, every unit of gate_up and
// of down_proj is in exactly one warp's span; CTA c's gate_up units are all of tile pairs 4 c ..
// 4 c + 3 (its half of its cluster's slice: every group, so its sums are whole in it); the down
// units of both CTAs of cluster k read only the columns of slice k (the GLU the two make),
// each CTA half the output's tile pairs; the ranges walk the image as its slots (i W + gw).
TEST(DecodeStackPolicy, ClusterMlpSpansPartitionBothMatricesBySlice) {
  struct Shape {
    int H, I, group, ctas, cta_warps;
  };
  const Shape shapes[] = {{3072, 8192, 128, 132, 11}, {3072, 8192, 64, 132, 15}, {2048, 8192, 128, 132, 11},
                          {128, 512, 128, 132, 11},   {3072, 8192, 128, 128, 11}, {256, 768, 64, 12, 15}};
  for (const Shape& sh : shapes) {
    ASSERT_TRUE(stack_cluster_mlp_fits(sh.H, sh.I, sh.group, sh.ctas)) << sh.H << "/" << sh.I;
    const int ub = sh.group == 128 ? 2176 : 1152;
    const std::string at = std::to_string(sh.H) + "/" + std::to_string(sh.I) + " group " + std::to_string(sh.group) +
                           " on " + std::to_string(sh.ctas);
    // gate_up: pairs I / 16 gate tiles with their up tiles, K = H, pair-major: CTA c's units
    // are all of tile pairs 4 c .. 4 c + 3.
    walk_cluster_spans(false, sh.I / 16, sh.H / sh.group, sh.H / sh.group, sh.ctas, sh.cta_warps, ub, at + " gate_up",
                       [&](int cta, int pair, int, int) {
                         EXPECT_EQ(pair / (kStackSliceCols / 32), cta) << at << ": a tile pair of another CTA";
                       });
    // down_proj: pairs H / 32, K = I, blocks of a slice's groups: CTA c's units read only slice
    // c / 2's columns, for half of the output's tile pairs (each of them whole).
    const int pairs = sh.H / 32, gb = stack_cluster_down_group_block(sh.group);
    std::vector<int> pairs_of_cta(static_cast<size_t>(sh.ctas), 0);
    walk_cluster_spans(true, pairs, sh.I / sh.group, gb, sh.ctas, sh.cta_warps, ub, at + " down",
                       [&](int cta, int pair, int grp, int gi) {
                         EXPECT_EQ(grp * sh.group / kStackSliceCols, cta / 2) << at << ": columns of another slice";
                         EXPECT_EQ(pair < pairs / 2 ? 0 : 1, cta % 2) << at << ": the other CTA's half of the output";
                         if (gi == gb - 1) ++pairs_of_cta[static_cast<size_t>(cta)];
                       });
    for (int c = 0; c < sh.ctas; ++c)
      EXPECT_EQ(pairs_of_cta[static_cast<size_t>(c)], c / 2 < sh.I / kStackSliceCols ? pairs / 2 : 0) << at;
  }
  // What it does not take: 8B's 112 slices on 132 CTAs (66 clusters), an odd grid, I not a
  // whole number of slices, an intermediate size without room past H in xs for the sums and GLU.
  EXPECT_FALSE(stack_cluster_mlp_fits(4096, 14336, 128, 132));
  EXPECT_FALSE(stack_cluster_mlp_fits(3072, 8192, 128, 131));
  EXPECT_FALSE(stack_cluster_mlp_fits(3072, 8192 + 64, 128, 132));
  EXPECT_FALSE(stack_cluster_mlp_fits(1024, 1280, 128, 132));
}

TEST(DecodeStackPolicy, RefusesWhatItWasNotBuiltFor) {
  DecodeStackArgs a = llama_3b();
  a.layer[5].qkv = matrix((kHq + 2 * kHkv) * kD, kH, false, 64);  // two group sizes in one model
  EXPECT_FALSE(decode_stack_supports(a));
  a = llama_3b();
  a.layer[27].down.image = nullptr;  // a layer whose weights were not prepared
  EXPECT_FALSE(decode_stack_supports(a));
  a = llama_3b();
  a.layer[0].gate_up.swiglu = false;
  EXPECT_FALSE(decode_stack_supports(a));
  a = llama_3b();
  a.kv_heads = 2;  // 12 q heads a kv head: more than the attention's registers hold
  for (int l = 0; l < kLayers; ++l) a.layer[l].qkv = matrix((kHq + 2 * 2) * kD, kH);
  EXPECT_FALSE(decode_stack_supports(a));
  a = llama_3b();
  a.layers = kStackMaxLayers + 1;
  EXPECT_FALSE(decode_stack_supports(a));
  a = llama_3b();
  a.attn_out = nullptr;
  EXPECT_FALSE(decode_stack_supports(a));
  // A hidden size past the registers that hold the residual (70B's 8,192).
  a = llama_3b();
  a.H = 8192;
  for (int l = 0; l < kLayers; ++l) {
    a.layer[l].qkv = matrix((kHq + 2 * kHkv) * kD, 8192);
    a.layer[l].o = matrix(8192, kHq * kD);
    a.layer[l].gate_up = matrix(2 * kI, 8192, true);
    a.layer[l].down = matrix(8192, kI);
  }
  EXPECT_FALSE(decode_stack_supports(a));
  // The cluster MLP form: only with both MLP images in its order and its group blocks, and not
  // with the row ring or the flags form.
  a = llama_3b();
  a.cluster_mlp = true;
  EXPECT_FALSE(decode_stack_supports(a));  // images in the other order
  for (int l = 0; l < kLayers; ++l) {
    a.layer[l].gate_up.cluster_order = a.layer[l].down.cluster_order = true;
    a.layer[l].down.group_block = stack_cluster_down_group_block(128);
  }
  EXPECT_TRUE(decode_stack_supports(a));
  a.layer[3].down.group_block = a.layer[3].down.groups;  // a block that is not a slice
  EXPECT_FALSE(decode_stack_supports(a));
  a.layer[3].down.group_block = stack_cluster_down_group_block(128);
  a.cluster_mlp = false;  // images in its order, read as the other form's
  EXPECT_FALSE(decode_stack_supports(a));
  a.cluster_mlp = true;
  a.flags = true;
  EXPECT_FALSE(decode_stack_supports(a));
}

// The shared-memory layout the kernel's pointers and the host's size both come from: every
// region 16-byte aligned (cp.async, ldmatrix, uint4 reads) and as large as what it holds, one
// after another; the size is the static part, the regions and the rings.
TEST(DecodeStackPolicy, SharedMemoryRegionsHoldWhatTheyHoldAndDoNotOverlap) {
  struct Shape {
    int H, I, Hq, Hkv;
  };
  for (const Shape& m : {Shape{kH, kI, kHq, kHkv}, Shape{4096, 14336, 32, 8}, Shape{2048, 8192, 32, 8},
                         Shape{128, 256, 4, 1}, Shape{136, 272, 2, 2}}) {
    for (bool cta : {false, true}) {
      for (int scratch : {0, stack_warp_scratch_bytes(false, true)}) {
        const StackSmemLayout l = stack_smem_layout(m.H, m.I, m.Hq, m.Hkv, cta, scratch);
        const int G = m.Hq / m.Hkv;
        const int inputs = 2 * std::max({m.H, m.I, m.Hq * kStackHeadDim});
        const int cta_scratch = cta ? (kStackWarps * G * 2 + G * kStackHeadDim) * 4 : 0;
        const std::string at = std::to_string(m.H) + "/" + std::to_string(m.I) + " cta " + std::to_string(cta) +
                               " scratch " + std::to_string(scratch);
        for (int off : {l.hs, l.red, l.qs, l.stage, l.scratch, l.ring}) EXPECT_EQ(off % 16, 0) << at;
        EXPECT_GE(l.hs, std::max(inputs, cta_scratch)) << at;  // xs
        EXPECT_GE(l.red - l.hs, 2 * m.H) << at;                // the residual
        EXPECT_GE(l.qs - l.red, 32 * 4) << at;                  // red
        EXPECT_GE(l.stage - l.qs, G * kStackHeadDim * 2) << at;
        EXPECT_GE(l.scratch - l.stage, kStackStageBytes) << at;
        EXPECT_GE(l.ring - l.scratch, kStackWarps * scratch) << at;
        for (int cta_warps : {15, 16}) {
          EXPECT_EQ(stack_smem_bytes(m.H, m.I, m.Hq, m.Hkv, 128, 3, cta_warps, cta, scratch),
                    static_cast<size_t>(kStackStaticSmemBytes + l.ring + cta_warps * 3 * 2176))
              << at << " warps " << cta_warps;
        }
      }
    }
  }
}


// The stage merge's arithmetic (stack_merge_softmax): splits merged in any grouping (each of 4
// ways over every 4th split, then the ways pairwise, as the kernel's shuffles do) equal a softmax
// over all the keys, and ways with no split (the lanes of heads past the CTA's, or S < 4) add
// nothing and make no NaN.
TEST(DecodeStackPolicy, SoftmaxMergeOfSplitsInWaysEqualsOneSoftmax) {
  uint32_t seed = 7;
  auto uniform = [&seed]() {  // [0, 1)
    seed = seed * 1664525u + 1013904223u;
    return static_cast<double>(seed >> 8) / 16777216.0;
  };
  for (int S : {1, 2, 3, 5, 13, 16}) {
    const int keys_per_split = 7;
    std::vector<double> score(S * keys_per_split), v(S * keys_per_split * 8);
    for (double& x : score) x = 8.0 * uniform() - 4.0;
    for (double& x : v) x = 2.0 * uniform() - 1.0;
    // Each split's triple, as attend_staged_mma writes it: its own max, sum and weighted V.
    std::vector<float> m(S), l(S), acc(S * 8);
    for (int s = 0; s < S; ++s) {
      double mx = -INFINITY;
      for (int j = 0; j < keys_per_split; ++j) mx = std::max(mx, score[s * keys_per_split + j]);
      double sum = 0.0, a[8] = {};
      for (int j = 0; j < keys_per_split; ++j) {
        const double p = std::exp(score[s * keys_per_split + j] - mx);
        sum += p;
        for (int e = 0; e < 8; ++e) a[e] += p * v[(s * keys_per_split + j) * 8 + e];
      }
      m[s] = static_cast<float>(mx);
      l[s] = static_cast<float>(sum);
      for (int e = 0; e < 8; ++e) acc[s * 8 + e] = static_cast<float>(a[e]);
    }
    // The reference: one softmax over every key, in double.
    double mx = -INFINITY;
    for (double x : score) mx = std::max(mx, x);
    double den = 0.0, ref[8] = {};
    for (int k = 0; k < S * keys_per_split; ++k) {
      const double p = std::exp(score[k] - mx);
      den += p;
      for (int e = 0; e < 8; ++e) ref[e] += p * v[k * 8 + e];
    }
    // The kernel's order: way w over splits w, w + 4, ..; then ways (0, 1), (2, 3), then the pairs.
    constexpr int kWays = 4;
    float M[kWays], D[kWays], N[kWays][8];
    for (int w = 0; w < kWays; ++w) {
      M[w] = -INFINITY;
      D[w] = 0.0f;
      for (float& x : N[w]) x = 0.0f;
      for (int t = w; t < S; t += kWays) {
        float n2[8];
        for (int e = 0; e < 8; ++e) n2[e] = acc[t * 8 + e];
        stack_merge_softmax(M[w], D[w], N[w], m[t], l[t], n2);
      }
    }
    for (int o = 1; o < kWays; o <<= 1) {
      for (int w = 0; w < kWays; w += 2 * o) {
        stack_merge_softmax(M[w], D[w], N[w], M[w + o], D[w + o], N[w + o]);
      }
    }
    ASSERT_FALSE(std::isnan(D[0])) << "S " << S;
    for (int e = 0; e < 8; ++e) EXPECT_NEAR(N[0][e] / D[0], ref[e] / den, 1e-5) << "S " << S << " dim " << e;
  }
  // Two empty triples stay empty, and an empty one leaves the other exactly as it was.
  float M = -INFINITY, den = 0.0f, num[8] = {};
  const float empty[8] = {};
  stack_merge_softmax(M, den, num, -INFINITY, 0.0f, empty);
  EXPECT_EQ(M, -INFINITY);
  EXPECT_EQ(den, 0.0f);
  EXPECT_FALSE(std::isnan(num[0]));
  const float n2[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  stack_merge_softmax(M, den, num, 0.5f, 3.0f, n2);
  EXPECT_EQ(M, 0.5f);
  EXPECT_EQ(den, 3.0f);
  for (int e = 0; e < 8; ++e) EXPECT_EQ(num[e], n2[e]);
}

}  // namespace
}  // namespace kr::cuda
