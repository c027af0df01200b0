// How much host memory this process may still take: the kernel's MemAvailable,
// capped by the cgroup's limit (v2 memory.max - memory.current, or v1
// memory.limit_in_bytes - memory.usage_in_bytes) where one is set. Used to refuse
// a host KV tier (--kv-offload-gb) that cannot fit, at start-up rather than later.
//
// Threading: any thread (reads files).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kr {

// Bytes available, or nullopt when /proc/meminfo cannot be read.
std::optional<int64_t> available_host_memory_bytes();

// Pieces, for tests: MemAvailable of a /proc/meminfo text (bytes); a cgroup
// limit file's value ("max" or absent: nullopt).
std::optional<int64_t> parse_meminfo_available(std::string_view meminfo);
std::optional<int64_t> parse_cgroup_bytes(std::string_view text);

}  // namespace kr
