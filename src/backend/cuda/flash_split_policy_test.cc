// The flash decode kernel's block-shape choice (flash_host::choose_decode_shape)
// on the H200's numbers: 132 SMs, two 4-warp blocks or four 2-warp blocks an SM
// (D = 128, bf16 cache), 128 keys of overhead a block; and the prefill kernel's
// variant by context (flash_prefill_variant_for with CudaOptions' defaults). Host
// code only: no GPU.
#include <cstddef>

#include <gtest/gtest.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_flash_attention.h"
#include "backend/cuda/cuda_flash_host.h"

namespace kr::cuda {
namespace {

constexpr int kSms = 132;
constexpr int kKvHeads = 8;
constexpr size_t kWorkspace = size_t{128} << 20;  // CudaBackend's decode half of its attention scratch

FlashSplit shape_for(int batch, int max_keys, int warps = 0) {
  return flash_host::choose_decode_shape(batch * kKvHeads, max_keys, 2 * kSms, 4 * kSms, kFlashMaxSplits,
                                         2 * kFlashSplitGranule,
                                         flash_workspace_bytes(1, 1, kFlashDecodeRows, 2, 128) / 2, kWorkspace,
                                         flash_host::kDecodeTwoWarpKeyWeight, warps);
}

// Where 4-warp blocks take two waves and 2-warp blocks one, the smaller blocks
// (batch 64 at 200 keys: 27.0 -> 21.2 us a layer on the H200).
TEST(FlashDecodeShape, SmallerBlocksWhereTheyHalveTheWaves) {
  const FlashSplit s = shape_for(64, 208);
  EXPECT_EQ(s.decode_warps, 2);
  EXPECT_EQ(s.num_splits, 1);
  EXPECT_EQ(shape_for(128, 208).decode_warps, 2);
  EXPECT_EQ(shape_for(64, 1024).decode_warps, 2);
}

// Long contexts at many waves stream faster in 4-warp blocks (batch 64 at 4096
// keys 259 against 270 us, batch 256 1,022 against 1,118).
TEST(FlashDecodeShape, LargerBlocksForLongContextsAtManyWaves) {
  EXPECT_EQ(shape_for(64, 4096).decode_warps, 4);
  EXPECT_EQ(shape_for(256, 4096).decode_warps, 4);
}

// Few pairs: one wave either way, so the faster blocks (batch 16 and 32 at 200
// keys, batch 1 at 4096 and 32768 with their splits).
TEST(FlashDecodeShape, LargerBlocksWhenOneWaveHoldsThem) {
  EXPECT_EQ(shape_for(16, 208).decode_warps, 4);
  EXPECT_EQ(shape_for(32, 208).decode_warps, 4);
  const FlashSplit b1 = shape_for(1, 32800);  // a table of 2050 blocks of 16: the context and padding
  EXPECT_EQ(b1.decode_warps, 4);
  EXPECT_EQ(b1.num_splits, 33);
  EXPECT_EQ(shape_for(1, 4096).decode_warps, 4);
}

TEST(FlashDecodeShape, ForcedShapeIsKeptWithItsOwnSplit) {
  const FlashSplit two = shape_for(1, 32800, 2);
  EXPECT_EQ(two.decode_warps, 2);
  EXPECT_EQ(two.num_splits, 65);  // twice the slots: twice the splits for one wave
  const FlashSplit four = shape_for(64, 208, 4);
  EXPECT_EQ(four.decode_warps, 4);
  EXPECT_EQ(four.num_splits, 1);
}

// Prefill launches of at most 2,048 keys run the short-context variant (w8-bc128:
// a 512-token prompt's attention 28 against 86 us on the H200), longer ones the
// default (4,096 tokens: 490 against 512 us); 0 keys turns the policy off.
TEST(FlashPrefillVariant, ShortContextsRunTheShortVariant) {
  const CudaOptions o;
  auto pick = [&](int keys, int short_max) {
    return flash_prefill_variant_for(keys, o.flash_prefill_variant, o.flash_prefill_short_variant, short_max);
  };
  EXPECT_EQ(o.flash_prefill_variant, 1);
  EXPECT_EQ(o.flash_prefill_short_variant, 5);
  EXPECT_EQ(pick(512, o.flash_prefill_short_max_keys), 5);
  EXPECT_EQ(pick(2048, o.flash_prefill_short_max_keys), 5);
  EXPECT_EQ(pick(2049, o.flash_prefill_short_max_keys), 1);
  EXPECT_EQ(pick(32768, o.flash_prefill_short_max_keys), 1);
  EXPECT_EQ(pick(512, 0), 1);
}

}  // namespace
}  // namespace kr::cuda
