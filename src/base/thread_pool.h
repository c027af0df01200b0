// ThreadPool: a fixed set of worker threads for data-parallel loops (the CPU
// backend's ops, dummy-weight generation). parallel_for() splits [0, n) into
// contiguous chunks, runs them on the workers and on the calling thread, and
// returns when all are done.
//
// Threading: one caller at a time (the thread that owns the pool, e.g. the
// engine thread); parallel_for() is not re-entrant (do not call it from inside
// a task). Tasks must not throw.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kr {

class ThreadPool {
 public:
  // threads <= 0: std::thread::hardware_concurrency(). threads == 1: no workers,
  // everything runs on the caller.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // fn(begin, end) over disjoint chunks covering [0, n); chunks are at least
  // min_chunk long (to keep tiny loops on one thread).
  void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;  // bumped for each parallel_for
  bool stop_ = false;
  int busy_workers_ = 0;     // workers still inside the current generation

  // Current job (valid while a parallel_for runs).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int64_t next_chunk_ = 0;   // guarded by mu_
};

}  // namespace kr
