// Progress of a long run on stderr: a redrawn bar when stderr is a terminal,
// otherwise a plain line at every 10% (and at the end) so logs stay readable.
// tick() may be called from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

namespace kr::bench {

class Progress {
 public:
  Progress(std::string label, int total);
  ~Progress();  // finishes the line
  void tick(bool ok);

 private:
  void draw(int done, int failed);
  std::string label_;
  int total_;
  bool tty_;
  int64_t start_ns_;
  std::atomic<int> done_{0};
  std::atomic<int> failed_{0};
  std::mutex mu_;
  int last_decile_ = -1;  // guarded by mu_
};

}  // namespace kr::bench
