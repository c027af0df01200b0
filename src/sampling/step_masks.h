// StepMasks: the token masks of one step, computed on a few worker threads
// while the device runs the step's forward.
//
// How the overlap works (ForwardRunner::step, on the engine thread):
//   1. start(): hands the step's constrained rows to the workers and returns
//      at once. The matchers hold every token up to the previous step (the
//      engine accepted them after that step), so the mask of the token this
//      step samples can be computed now;
//   2. the engine thread launches the forward (on CUDA: asynchronous kernel
//      launches / a graph replay; the GPU computes the logits meanwhile);
//   3. wait(): the engine thread computes rows no worker has taken yet, then
//      blocks until the rest are done. The time it blocks (exposed_ns) is
//      what masks add to the step; the rest of their CPU time (compute_ns)
//      was hidden behind the forward;
//   4. the sampler applies the masks to the logits and samples.
// With the CPU backend the forward itself occupies the engine thread (and
// the backend's pool), so the overlap is only partial there.
//
// Buffer: row k of start()'s list (masked_rows()[k]) has its mask at
// masks() + k * words_per_row. A row whose grammar allows nothing (a dead
// end) keeps an all-ones mask there, so the logits stay untouched; the
// engine fails that sequence instead of using its token.
//
// Threading: start/wait and the accessors on one thread (the engine thread);
// the workers only touch the rows' constraints and the buffer between start
// and wait.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "sampling/token_constraint.h"

namespace kr {

class StepMasks {
 public:
  // workers >= 0 threads besides the caller (0: wait() computes every mask).
  explicit StepMasks(int workers);
  ~StepMasks();
  StepMasks(const StepMasks&) = delete;
  StepMasks& operator=(const StepMasks&) = delete;

  // rows[r]: row r's constraint, null or inactive = free. Masks go to
  // `buffer` (at least count_masked(rows) * words_per_row words, e.g. the
  // backend's pinned token_mask_host_buffer) or, when null, to memory of this
  // object. Every active constraint must have mask_words() <= words_per_row.
  void start(std::span<TokenConstraint* const> rows, size_t words_per_row, uint32_t* buffer);
  void wait();

  static size_t count_masked(std::span<TokenConstraint* const> rows);

  // After wait():
  std::span<const int32_t> masked_rows() const { return rows_; }  // ascending
  const uint32_t* masks() const { return buffer_; }
  size_t words_per_row() const { return words_; }
  // Rows whose grammar allows no token (row indices, ascending).
  std::span<const int32_t> dead_ends() const { return dead_ends_; }

  // Totals since construction.
  struct Stats {
    int64_t steps = 0;        // steps with at least one masked row
    int64_t rows = 0;         // masks computed
    int64_t compute_ns = 0;   // wall time spent in fill_mask, all threads
    int64_t exposed_ns = 0;   // engine thread blocked in wait() past its own share
  };
  const Stats& stats() const { return stats_; }

 private:
  void worker_loop();
  // Takes and computes rows until none is left; returns the time spent.
  int64_t run_rows();

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int busy_ = 0;  // workers inside the current generation

  // The current job.
  std::vector<TokenConstraint*> job_;  // [K] the masked rows' constraints
  std::vector<int32_t> rows_;          // [K]
  std::vector<uint8_t> dead_;          // [K]
  std::atomic<size_t> next_{0};
  std::atomic<size_t> done_rows_{0};
  std::atomic<int64_t> compute_ns_{0};
  size_t words_ = 0;
  uint32_t* buffer_ = nullptr;
  std::vector<uint32_t> own_;
  std::vector<int32_t> dead_ends_;
  Stats stats_;
};

}  // namespace kr
