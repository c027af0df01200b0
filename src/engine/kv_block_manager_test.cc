#include "engine/kv_block_manager.h"

#include <gtest/gtest.h>

namespace kr {
namespace {

TEST(KvBlockManager, AllocateGrowsByWholeBlocks) {
  KvBlockManager m(4, 16);
  BlockTable t;
  EXPECT_EQ(m.blocks_needed(t, 1), 1);
  EXPECT_EQ(m.blocks_needed(t, 16), 1);
  EXPECT_EQ(m.blocks_needed(t, 17), 2);
  ASSERT_TRUE(m.allocate(&t, 17));
  EXPECT_EQ(t, (BlockTable{0, 1}));
  EXPECT_EQ(m.num_free_blocks(), 2);
  EXPECT_DOUBLE_EQ(m.usage(), 0.5);
  EXPECT_TRUE(m.append_slot(&t, 17));  // position 17 is still in block 1
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(m.append_slot(&t, 32));  // position 32 needs block 2
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(m.tokens_that_fit(t, 33), 64 - 33);
}

TEST(KvBlockManager, RefusesWithoutChangeWhenShort) {
  KvBlockManager m(2, 4);
  BlockTable a, b;
  ASSERT_TRUE(m.allocate(&a, 5));
  EXPECT_FALSE(m.can_allocate(b, 5));
  EXPECT_FALSE(m.allocate(&b, 5));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(m.num_free_blocks(), 0);
  m.free(&a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(m.num_free_blocks(), 2);
  EXPECT_TRUE(m.allocate(&b, 5));
}

TEST(KvBlockManager, SharedBlockReturnsAfterLastReference) {
  KvBlockManager m(3, 4);
  BlockTable a;
  ASSERT_TRUE(m.allocate(&a, 4));
  BlockTable b = a;  // b shares a's block (a prefix cache would do this)
  m.share(b[0]);
  EXPECT_EQ(m.refcount(a[0]), 2);
  m.free(&a);
  EXPECT_EQ(m.refcount(b[0]), 1);
  EXPECT_EQ(m.num_free_blocks(), 2);
  m.free(&b);
  EXPECT_EQ(m.num_free_blocks(), 3);
  EXPECT_EQ(m.refcount(0), 0);
}

}  // namespace
}  // namespace kr
