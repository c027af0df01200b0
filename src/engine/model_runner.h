// ModelRunner: what the engine asks of a model each step. One forward over a
// batch of sequences (prefill chunks and single decode tokens mixed), then one
// sampled token for every sequence that asks for one.
//
// Threading: engine thread only (it owns the backend and the KV cache).
#pragma once

#include <cstdint>
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
  // SeqStep with sample == true, in order.
  virtual Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) = 0;

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
};

}  // namespace kr
