// Facts recorded with every report: UTC timestamp, GPU name (the commit is the
// binary's own, base/build_info.h).
// Also small file helpers. Any thread (they run child processes via popen).
#pragma once

#include <string>

#include "base/status.h"

namespace kr::bench {

std::string utc_timestamp();  // "2026-11-29T02:41:00Z"
std::string gpu_name();       // first nvidia-smi GPU, "" when none
Status write_file(const std::string& path, const std::string& content);
Status make_dirs(const std::string& path);

}  // namespace kr::bench
