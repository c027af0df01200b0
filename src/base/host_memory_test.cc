#include "base/host_memory.h"

#include <gtest/gtest.h>

namespace kr {
namespace {

TEST(HostMemory, ParsesMeminfo) {
  EXPECT_EQ(parse_meminfo_available("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n"),
            int64_t{2048} * 1024);
  EXPECT_EQ(parse_meminfo_available("MemTotal: 1 kB\n"), std::nullopt);
}

TEST(HostMemory, ParsesCgroupLimits) {
  EXPECT_EQ(parse_cgroup_bytes("max\n"), std::nullopt);
  EXPECT_EQ(parse_cgroup_bytes("1073741824\n"), int64_t{1} << 30);
  EXPECT_EQ(parse_cgroup_bytes("9223372036854771712\n"), std::nullopt);  // v1's "unlimited"
  EXPECT_EQ(parse_cgroup_bytes(""), std::nullopt);
}

TEST(HostMemory, ThisMachineHasSome) {
  const auto avail = available_host_memory_bytes();
  ASSERT_TRUE(avail.has_value());
  EXPECT_GT(*avail, 0);
}

}  // namespace
}  // namespace kr
