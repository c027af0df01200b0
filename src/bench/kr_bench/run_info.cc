#include "bench/kr_bench/run_info.h"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace kr::bench {
namespace {

std::string first_line_of(const char* cmd) {
  FILE* p = ::popen(cmd, "r");
  if (p == nullptr) return "";
  char buf[512];
  std::string out;
  if (std::fgets(buf, sizeof buf, p) != nullptr) out = buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string gpu_name() {
  return first_line_of("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null");
}

Status write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Internal("cannot write " + path);
  out << content;
  out.close();
  if (!out) return Internal("write failed: " + path);
  return Status::Ok();
}

Status make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Internal("cannot create " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace kr::bench
