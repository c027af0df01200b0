#include "base/host_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace kr {
namespace {

std::optional<std::string> read_file(const char* path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<int64_t> file_bytes(const char* path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  return parse_cgroup_bytes(*text);
}

}  // namespace

std::optional<int64_t> parse_meminfo_available(std::string_view meminfo) {
  const std::string_view key = "MemAvailable:";
  const size_t pos = meminfo.find(key);
  if (pos == std::string_view::npos) return std::nullopt;
  size_t i = pos + key.size();
  while (i < meminfo.size() && meminfo[i] == ' ') ++i;
  int64_t kib = 0;
  bool any = false;
  while (i < meminfo.size() && meminfo[i] >= '0' && meminfo[i] <= '9') {
    kib = kib * 10 + (meminfo[i++] - '0');
    any = true;
  }
  if (!any) return std::nullopt;
  return kib * 1024;  // the value is in kB (KiB)
}

std::optional<int64_t> parse_cgroup_bytes(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty() || text == "max") return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (INT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v >= (int64_t{1} << 62)) return std::nullopt;  // cgroup v1 writes "no limit" as a huge number
  return v;
}

std::optional<int64_t> available_host_memory_bytes() {
  auto meminfo = read_file("/proc/meminfo");
  if (!meminfo) return std::nullopt;
  std::optional<int64_t> avail = parse_meminfo_available(*meminfo);
  if (!avail) return std::nullopt;
  auto cap = [&](const char* limit_path, const char* usage_path) {
    const auto limit = file_bytes(limit_path);
    if (!limit) return;
    const int64_t used = file_bytes(usage_path).value_or(0);
    *avail = std::min(*avail, std::max<int64_t>(*limit - used, 0));
  };
  cap("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current");
  cap("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes");
  return avail;
}

}  // namespace kr
