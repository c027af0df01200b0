#include "sampling/step_masks.h"

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "base/clock.h"

namespace kr {

StepMasks::StepMasks(int workers) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

StepMasks::~StepMasks() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

size_t StepMasks::count_masked(std::span<TokenConstraint* const> rows) {
  size_t n = 0;
  for (TokenConstraint* c : rows) n += c != nullptr && c->active();
  return n;
}

void StepMasks::start(std::span<TokenConstraint* const> rows, size_t words_per_row, uint32_t* buffer) {
  job_.clear();
  rows_.clear();
  dead_ends_.clear();
  for (size_t r = 0; r < rows.size(); ++r) {
    TokenConstraint* c = rows[r];
    if (c == nullptr || !c->active()) continue;
    KR_CHECK_MSG(c->mask_words() <= words_per_row, "a constraint's vocabulary is larger than the logits rows");
    job_.push_back(c);
    rows_.push_back(static_cast<int32_t>(r));
  }
  words_ = words_per_row;
  if (job_.empty()) return;
  if (buffer == nullptr) {
    own_.resize(job_.size() * words_per_row);
    buffer = own_.data();
  }
  buffer_ = buffer;
  dead_.assign(job_.size(), 0);
  next_.store(0, std::memory_order_relaxed);
  done_rows_.store(0, std::memory_order_relaxed);
  compute_ns_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    busy_ = static_cast<int>(threads_.size());
  }
  work_cv_.notify_all();
}

int64_t StepMasks::run_rows() {
  const int64_t t0 = steady_now_ns();
  size_t finished = 0;
  for (;;) {
    const size_t k = next_.fetch_add(1, std::memory_order_relaxed);
    if (k >= job_.size()) break;
    uint32_t* words = buffer_ + k * words_;
    TokenConstraint* c = job_[k];
    const size_t own_words = c->mask_words();
    if (c->fill_mask(words) == 0) {
      dead_[k] = 1;  // the engine fails the row; its logits stay as they are
      std::fill(words, words + words_, ~0u);
    } else if (own_words < words_) {
      std::fill(words + own_words, words + words_, 0u);  // ids past the grammar's vocabulary
    }
    ++finished;
  }
  const int64_t spent = steady_now_ns() - t0;
  if (finished > 0) {
    compute_ns_.fetch_add(spent, std::memory_order_relaxed);
    done_rows_.fetch_add(finished, std::memory_order_acq_rel);
  }
  return spent;
}

void StepMasks::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_rows();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
    }
    done_cv_.notify_all();
  }
}

void StepMasks::wait() {
  if (job_.empty()) return;
  run_rows();  // the engine thread takes what the workers have not
  const int64_t t0 = steady_now_ns();
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return busy_ == 0; });
  }
  KR_CHECK(done_rows_.load(std::memory_order_acquire) == job_.size());
  for (size_t k = 0; k < job_.size(); ++k)
    if (dead_[k]) dead_ends_.push_back(rows_[k]);
  stats_.steps += 1;
  stats_.rows += static_cast<int64_t>(job_.size());
  stats_.compute_ns += compute_ns_.load(std::memory_order_relaxed);
  stats_.exposed_ns += steady_now_ns() - t0;
}

}  // namespace kr
