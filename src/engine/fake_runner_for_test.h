// FakeRunner: a deterministic ModelRunner for engine and scheduler tests.
// It keeps a fake KV cache (one token id per slot) and computes the next
// token from the whole context read back through the block table, so a wrong
// block table, a block freed too early or a preemption that forgot a token
// changes the output. Tokens are in [3, 1003): never EOS (id 2) unless forced.
//
// Threading: the engine thread; the knobs are atomics set by the test thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "engine/model_runner.h"

namespace kr {

inline int32_t fake_next_token(std::span<const int32_t> context) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : context) h = (h ^ static_cast<uint64_t>(t)) * 1099511628211ull;
  return 3 + static_cast<int32_t>(h % 1000);
}

// The greedy continuation the fake gives `prompt` alone.
inline std::vector<int32_t> fake_continuation(std::vector<int32_t> ctx, int32_t n) {
  std::vector<int32_t> out;
  for (int32_t i = 0; i < n; ++i) {
    out.push_back(fake_next_token(ctx));
    ctx.push_back(out.back());
  }
  return out;
}

class FakeRunner final : public ModelRunner {
 public:
  FakeRunner(int32_t block_size, int32_t num_blocks, int32_t max_model_len)
      : block_size_(block_size), num_blocks_(num_blocks), max_model_len_(max_model_len),
        kv_(static_cast<size_t>(block_size) * static_cast<size_t>(num_blocks), -1) {}

  int32_t block_size() const override { return block_size_; }
  int32_t num_kv_blocks() const override { return num_blocks_; }
  int32_t max_model_len() const override { return max_model_len_; }
  std::span<const int32_t> eos_ids() const override { return eos_; }

  Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) override {
    if (step_delay_us.load() > 0) std::this_thread::sleep_for(std::chrono::microseconds(step_delay_us.load()));
    if (fail_next_step.exchange(false)) return Internal("fake step failure");
    steps.fetch_add(1);
    max_seqs_in_step.store(std::max<int32_t>(max_seqs_in_step.load(), static_cast<int32_t>(seqs.size())));
    for (const SeqStep& s : seqs) {
      const int64_t end = s.start_pos + static_cast<int64_t>(s.tokens.size());
      if (static_cast<int64_t>(s.block_table.size()) * block_size_ < end) return InvalidArgument("block table short");
      for (size_t i = 0; i < s.tokens.size(); ++i) slot(s, s.start_pos + static_cast<int64_t>(i)) = s.tokens[i];
    }
    for (const SeqStep& s : seqs) {
      if (!s.sample) continue;
      const int64_t end = s.start_pos + static_cast<int64_t>(s.tokens.size());
      std::vector<int32_t> ctx;
      for (int64_t p = 0; p < end; ++p) ctx.push_back(slot(s, p));
      SampledToken t;
      {
        std::lock_guard<std::mutex> lock(mu_);
        t.non_finite = non_finite_ids_.count(s.seq_id) != 0;
      }
      t.id = t.non_finite ? -1 : fake_next_token(ctx);
      t.logprob = -0.5f;
      out->push_back(std::move(t));
    }
    return Status::Ok();
  }

  void make_non_finite(int64_t seq_id) {
    std::lock_guard<std::mutex> lock(mu_);
    non_finite_ids_.insert(seq_id);
  }

  std::atomic<int64_t> steps{0};
  std::atomic<int32_t> max_seqs_in_step{0};
  std::atomic<int32_t> step_delay_us{0};
  std::atomic<bool> fail_next_step{false};

 private:
  int32_t& slot(const SeqStep& s, int64_t pos) {
    const int32_t b = s.block_table[static_cast<size_t>(pos / block_size_)];
    return kv_[static_cast<size_t>(b) * static_cast<size_t>(block_size_) + static_cast<size_t>(pos % block_size_)];
  }

  int32_t block_size_, num_blocks_, max_model_len_;
  std::vector<int32_t> kv_;
  std::vector<int32_t> eos_{2};
  std::mutex mu_;
  std::set<int64_t> non_finite_ids_;
};

}  // namespace kr
