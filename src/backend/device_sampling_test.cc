#include "backend/device_sampling.h"

#include <gtest/gtest.h>

#include <vector>

namespace kr {
namespace {

TEST(DeviceSamplingTest, OutputIdsAreCountedAndSorted) {
  const std::vector<int32_t> out = {7, 3, 7, 7, 100, -1, 3};  // 100 and -1 are outside a vocab of 50
  std::vector<int32_t> ids = {42}, counts = {9}, scratch;       // an earlier row's entry stays
  const auto range = append_penalty_entries(nullptr, 0, out.data(), out.size(), false, 50, &ids, &counts, &scratch);
  EXPECT_EQ(range.first, 1);
  EXPECT_EQ(range.second, 3);
  EXPECT_EQ(ids, (std::vector<int32_t>{42, 3, 7}));
  EXPECT_EQ(counts, (std::vector<int32_t>{9, 2, 3}));
}

TEST(DeviceSamplingTest, PromptIdsJoinOnlyWithRepetitionPenalty) {
  const std::vector<int32_t> prompt = {5, 1, 5, 9};
  const std::vector<int32_t> out = {9, 2};
  std::vector<int32_t> ids, counts, scratch;
  auto range = append_penalty_entries(prompt.data(), prompt.size(), out.data(), out.size(), true, 10, &ids, &counts,
                                      &scratch);
  EXPECT_EQ(range.first, 0);
  EXPECT_EQ(range.second, 4);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2, 5, 9}));
  EXPECT_EQ(counts, (std::vector<int32_t>{0, 1, 0, 1}));  // prompt occurrences are not counted
  range = append_penalty_entries(prompt.data(), prompt.size(), out.data(), out.size(), false, 10, &ids, &counts,
                                 &scratch);
  EXPECT_EQ(range.first, 4);
  EXPECT_EQ(range.second, 6);
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 4, ids.end()), (std::vector<int32_t>{2, 9}));
}

TEST(DeviceSamplingTest, EmptyInputsGiveAnEmptyRange) {
  std::vector<int32_t> ids, counts, scratch;
  const auto range = append_penalty_entries(nullptr, 0, nullptr, 0, true, 10, &ids, &counts, &scratch);
  EXPECT_EQ(range.first, range.second);
  EXPECT_TRUE(ids.empty());
}

}  // namespace
}  // namespace kr
