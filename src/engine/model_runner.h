// ModelRunner: what the engine asks of a model each step. One forward over a
// batch of sequences (prefill chunks and single decode tokens mixed), then one
// sampled token for every sequence that asks for one.
//
// Threading: engine thread only (it owns the backend and the KV cache).
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "backend/kv_block_copy.h"
#include "base/status.h"
#include "engine/step_cost.h"
#include "sampling/sampled_token.h"
#include "sampling/sampler.h"
#include "sampling/token_constraint.h"

namespace kr {

struct SeqStep {
  int64_t seq_id = 0;
  std::span<const int32_t> tokens;       // new tokens fed this step (prefill chunk or 1 decode token)
  int32_t start_pos = 0;                 // tokens already in the KV cache = position of tokens[0]
  std::span<const int32_t> block_table;  // KV blocks covering [0, start_pos + tokens.size())
  bool sample = false;                   // produce a token after the last new token
  SampleInput sampling;                  // when sample: params, history, the request's rng
  // When sample: the sequence's output constraint (null: free). The runner
  // fills its mask and samples within it; the engine accepts the token after
  // the step. A row whose grammar allows nothing comes back no_allowed_token.
  TokenConstraint* constraint = nullptr;
  // Overlapped decode (ModelRunner::launch): the one token fed is the one this
  // sequence samples in the step launched just before, not known to the host yet;
  // `tokens` holds a placeholder of size 1.
  bool fed = false;
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual int32_t block_size() const = 0;     // tokens per KV block
  virtual int32_t num_kv_blocks() const = 0;  // blocks in the paged cache
  virtual int32_t max_model_len() const = 0;  // context length limit
  virtual std::span<const int32_t> eos_ids() const = 0;
  // What a step costs on this runner's device (engine/step_cost.h), for the
  // scheduler's time budget; the default is unknown (token budget only).
  virtual StepCostModel step_cost_model() const { return {}; }
  // Prepares steps of each size in `step_tokens` where the device is slow to run a
  // shape the first time (Model::warm_up_matmuls); false: nothing to do here.
  virtual bool warm_up(std::span<const int32_t> step_tokens) {
    (void)step_tokens;
    return false;
  }
  // Runs one step. `out`, empty on entry, gets one SampledToken per
  // SeqStep with sample == true, in order. Not while a launched step is uncollected.
  virtual Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) = 0;

  // ---- overlapped decode: step t + 1 launched before step t's tokens are read ----
  // launch: a step's work, enqueued; collect: the tokens of the oldest launched step
  // (as step() gives them), waiting for it. At most two launched steps uncollected. A
  // step whose SeqSteps are `fed` (all or none) must follow a launched step of the same
  // sequences in the same order, each sampling and each can_feed. A launch that fails
  // enqueued nothing. The default runs step() at launch (fed tokens taken from the
  // previous launch's results) and keeps the tokens for collect.
  // Whether s's sampled token can feed the next step without the host seeing it first
  // (its sampling needs no host work: plain greedy, no constraint). Default: no.
  virtual bool can_feed(const SeqStep& s) const {
    (void)s;
    return false;
  }
  virtual Status launch(std::span<const SeqStep> seqs);
  virtual Status collect(std::vector<SampledToken>* out);
  // Launched steps not yet collected.
  virtual int num_launched() const { return static_cast<int>(launched_.size()); }

  // ---- the KV cache's host tier (--kv-offload-gb, engine/kv_host_tier.h); defaults: none ----
  // Bytes of one KV block over all layers, K and V: the size of a host slot (0: no host tier).
  virtual int64_t kv_block_bytes() const { return 0; }
  // Allocates `num_slots` host slots (pinned memory where the device has it); an error
  // (nothing allocated) when refused. Called once, before the engine starts.
  virtual Status init_host_tier(int32_t num_slots) {
    (void)num_slots;
    return FailedPrecondition("this model runner has no host KV tier");
  }
  virtual int32_t num_host_slots() const { return 0; }
  // Enqueues copies of whole blocks, device -> host slot (to_host) or back, after every
  // copy enqueued before. Returns a ticket; tickets grow; 0: the copies are done already.
  virtual uint64_t copy_kv_blocks(std::span<const KvBlockCopy> copies, bool to_host) {
    (void)copies, (void)to_host;
    return 0;
  }
  // Whether the copies of `ticket` (and of every earlier one) are done.
  virtual bool kv_copies_done(uint64_t ticket) {
    (void)ticket;
    return true;
  }
  // The next step's forward runs after the copies of `ticket` (the device waits, not the host).
  virtual void wait_kv_copies(uint64_t ticket) { (void)ticket; }

 private:
  // The default launch's results, oldest first, with the sequences they belong to.
  struct Launched {
    std::vector<int64_t> seq_ids;  // of the sampling SeqSteps
    std::vector<SampledToken> tokens;
  };
  std::deque<Launched> launched_;
};

inline Status ModelRunner::launch(std::span<const SeqStep> seqs) {
  if (launched_.size() >= 2) return FailedPrecondition("launch: two launched steps are uncollected");
  Launched l;
  std::vector<SeqStep> fed_seqs;
  std::vector<int32_t> fed_tokens;
  const bool fed = !seqs.empty() && seqs[0].fed;
  if (fed) {
    // The previous launch's tokens, row for row.
    const Launched* prev = launched_.empty() ? nullptr : &launched_.back();
    if (prev == nullptr || prev->seq_ids.size() != seqs.size())
      return InvalidArgument("launch: fed sequences do not follow a launched step of the same sequences");
    fed_seqs.assign(seqs.begin(), seqs.end());
    fed_tokens.resize(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (!seqs[i].fed || seqs[i].tokens.size() != 1 || prev->seq_ids[i] != seqs[i].seq_id)
        return InvalidArgument("launch: fed sequences do not follow a launched step of the same sequences");
      fed_tokens[i] = prev->tokens[i].id;
      fed_seqs[i].tokens = std::span<const int32_t>(&fed_tokens[i], 1);
      fed_seqs[i].fed = false;
    }
    seqs = fed_seqs;
  } else {
    for (const SeqStep& s : seqs)
      if (s.fed) return InvalidArgument("launch: fed and unfed sequences in one step");
  }
  KR_RETURN_IF_ERROR(step(seqs, &l.tokens));
  for (const SeqStep& s : seqs)
    if (s.sample) l.seq_ids.push_back(s.seq_id);
  launched_.push_back(std::move(l));
  return Status::Ok();
}

inline Status ModelRunner::collect(std::vector<SampledToken>* out) {
  if (launched_.empty()) return FailedPrecondition("collect: no launched step");
  out->swap(launched_.front().tokens);
  launched_.pop_front();
  return Status::Ok();
}

}  // namespace kr
