#include "bench/kr_bench/progress.h"

#include <unistd.h>

#include <cstdio>

#include "base/clock.h"

namespace kr::bench {

Progress::Progress(std::string label, int total)
    : label_(std::move(label)), total_(total), tty_(::isatty(2) == 1), start_ns_(steady_now_ns()) {}

Progress::~Progress() {
  if (tty_ && done_.load() > 0) std::fputc('\n', stderr);
}

void Progress::tick(bool ok) {
  const int done = ++done_;
  const int failed = ok ? failed_.load() : ++failed_;
  draw(done, failed);
}

void Progress::draw(int done, int failed) {
  std::lock_guard<std::mutex> lock(mu_);
  const double elapsed_s = static_cast<double>(steady_now_ns() - start_ns_) / 1e9;
  const double frac = total_ > 0 ? static_cast<double>(done) / total_ : 1.0;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::fprintf(stderr, "\r%-24s [%.*s%*s] %d/%d  fail %d  %.1fs", label_.c_str(), filled,
                 "##############################", kWidth - filled, "", done, total_, failed, elapsed_s);
    std::fflush(stderr);
    return;
  }
  const int decile = static_cast<int>(frac * 10);
  if (decile == last_decile_ && done != total_) return;
  last_decile_ = decile;
  std::fprintf(stderr, "%s: %d/%d done, %d failed, %.1fs\n", label_.c_str(), done, total_, failed, elapsed_s);
}

}  // namespace kr::bench
