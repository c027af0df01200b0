// FakeRunner: a deterministic ModelRunner for engine and scheduler tests.
// It keeps a fake KV cache (one token id per slot) and computes the next
// token from the whole context read back through the block table, so a wrong
// block table, a block freed too early or a preemption that forgot a token
// changes the output. Tokens are in [3, 1003): never EOS (id 2) unless forced.
//
// Host tier: host slots hold token ids as well. Copies behave like a copy
// stream: they are applied in ticket order, those the engine waited for
// (wait_kv_copies) before the next step's writes, the rest only after the
// step, the latest a real device could run them. So a reload the step does not
// wait for, or a block overwritten before its copy out, changes the output.
//
// Threading: the engine thread; the knobs are atomics set by the test thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <cstdint>
#include <mutex>
#include <map>
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

  // The step sizes the engine asked to warm up (ModelRunner::warm_up), call by call.
  bool warm_up(std::span<const int32_t> step_tokens) override {
    warm_ups.emplace_back(step_tokens.begin(), step_tokens.end());
    return true;
  }
  std::vector<std::vector<int32_t>> warm_ups;

  int64_t kv_block_bytes() const override { return int64_t{block_size_} * 4; }
  Status init_host_tier(int32_t num_slots) override {
    host_.assign(static_cast<size_t>(num_slots) * static_cast<size_t>(block_size_), -1);
    num_host_slots_ = num_slots;
    return Status::Ok();
  }
  int32_t num_host_slots() const override { return num_host_slots_; }
  uint64_t copy_kv_blocks(std::span<const KvBlockCopy> copies, bool to_host) override {
    pending_.push_back({++last_ticket_, std::vector<KvBlockCopy>(copies.begin(), copies.end()), to_host});
    (to_host ? blocks_to_host : blocks_to_device).fetch_add(static_cast<int64_t>(copies.size()));
    return last_ticket_;
  }
  bool kv_copies_done(uint64_t ticket) override { return ticket <= applied_ticket_; }
  void wait_kv_copies(uint64_t ticket) override { wait_ticket_ = std::max(wait_ticket_, ticket); }
  // Applies every copy up to `ticket`, in order.
  void apply_copies(uint64_t ticket) {
    while (!pending_.empty() && pending_.front().ticket <= ticket) {
      const PendingCopy& p = pending_.front();
      for (const KvBlockCopy& c : p.copies) {
        int32_t* dev = &kv_[static_cast<size_t>(c.device_block) * static_cast<size_t>(block_size_)];
        int32_t* host = &host_[static_cast<size_t>(c.host_slot) * static_cast<size_t>(block_size_)];
        if (p.to_host) std::copy(dev, dev + block_size_, host);
        else std::copy(host, host + block_size_, dev);
      }
      applied_ticket_ = p.ticket;
      pending_.pop_front();
    }
  }

  Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) override {
    apply_copies(wait_ticket_);
    struct AfterStep {
      FakeRunner* r;
      ~AfterStep() { r->apply_copies(r->last_ticket_); }  // the copies nobody waited for ran during the step
    } after{this};
    if (step_delay_us.load() > 0) std::this_thread::sleep_for(std::chrono::microseconds(step_delay_us.load()));
    if (fail_next_step.exchange(false)) return Internal("fake step failure");
    steps.fetch_add(1);
    max_seqs_in_step.store(std::max<int32_t>(max_seqs_in_step.load(), static_cast<int32_t>(seqs.size())));
    for (const SeqStep& s : seqs) {
      const int64_t end = s.start_pos + static_cast<int64_t>(s.tokens.size());
      if (static_cast<int64_t>(s.block_table.size()) * block_size_ < end) return InvalidArgument("block table short");
      tokens_fed.fetch_add(static_cast<int64_t>(s.tokens.size()));
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
        const auto it = non_finite_ids_.find(s.seq_id);
        t.non_finite = it != non_finite_ids_.end() && end >= it->second;
      }
      t.id = t.non_finite ? -1 : fake_next_token(ctx);
      t.logprob = -0.5f;
      out->push_back(std::move(t));
    }
    return Status::Ok();
  }

  // Overlapped decode: with `feeds` set, a sampling row without a constraint can be fed
  // (the default ModelRunner::launch then runs each step at launch, in order, as a
  // device stream would).
  bool can_feed(const SeqStep& s) const override { return feeds.load() && s.sample && s.constraint == nullptr; }
  Status launch(std::span<const SeqStep> seqs) override {
    if (!seqs.empty() && seqs[0].fed) {
      if (!feeds.load()) return InvalidArgument("fed step while feeds is off");
      fed_steps.fetch_add(1);
    }
    return ModelRunner::launch(seqs);
  }
  std::atomic<bool> feeds{false};
  std::atomic<int64_t> fed_steps{0};  // launched steps whose tokens were fed

  // The sequence's logits are non-finite from context length `from_context` on.
  void make_non_finite(int64_t seq_id, int64_t from_context = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    non_finite_ids_[seq_id] = from_context;
  }

  std::atomic<int64_t> steps{0};
  std::atomic<int32_t> max_seqs_in_step{0};
  std::atomic<int32_t> step_delay_us{0};
  std::atomic<bool> fail_next_step{false};
  std::atomic<int64_t> tokens_fed{0};  // every token of every step (prefill chunks and decodes)
  std::atomic<int64_t> blocks_to_host{0}, blocks_to_device{0};

 private:
  int32_t& slot(const SeqStep& s, int64_t pos) {
    const int32_t b = s.block_table[static_cast<size_t>(pos / block_size_)];
    return kv_[static_cast<size_t>(b) * static_cast<size_t>(block_size_) + static_cast<size_t>(pos % block_size_)];
  }

  struct PendingCopy {
    uint64_t ticket;
    std::vector<KvBlockCopy> copies;
    bool to_host;
  };

  int32_t block_size_, num_blocks_, max_model_len_;
  std::vector<int32_t> kv_;
  std::vector<int32_t> host_;  // [slots * block_size]
  int32_t num_host_slots_ = 0;
  std::deque<PendingCopy> pending_;
  uint64_t last_ticket_ = 0, applied_ticket_ = 0, wait_ticket_ = 0;
  std::vector<int32_t> eos_{2};
  std::mutex mu_;
  std::map<int64_t, int64_t> non_finite_ids_;  // seq id -> from which context length
};

}  // namespace kr
