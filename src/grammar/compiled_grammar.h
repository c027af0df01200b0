// CompiledGrammar: a pushdown automaton bound to one vocabulary, with the
// adaptive token masks of its nodes (XGrammar's idea): for a parse stack whose
// top is node n, the tokens split into
//   accepted  - consumed entirely by n's rule and the rules it calls, whatever
//               lies below n on the stack (context-independent);
//   uncertain - tokens that must pop n's rule to be consumed; they are checked
//               at run time against the real stack (few: the first byte after
//               the pop is filtered by the rule's possible followers, and the
//               rest of the token by every place the rule is called from);
//   rejected  - everything else.
// A node's mask is computed on first use (lazily, so compiling stays cheap)
// from a region walk shared through the vocabulary (vocabulary.h) plus a walk
// of the trie nodes where tokens leave the region.
//
// Threading: immutable apart from the lazily filled masks, which are published
// with atomics; any number of matchers on any threads may share one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "grammar/automaton.h"
#include "grammar/stack_context.h"
#include "grammar/token_set.h"
#include "grammar/vocabulary.h"

namespace kr::grammar {

struct NodeMask {
  // Accepted tokens: region->inside (no region: none), plus `accepted`.
  std::shared_ptr<const RegionWalk> region;
  std::vector<int32_t> accepted;              // accepted beyond region.inside
  std::vector<int32_t> uncertain;             // in trie (byte) order
  std::vector<uint16_t> uncertain_lcp;        // common prefix with the previous uncertain token
  // How it was computed (diagnostics, benchmarks).
  uint32_t region_states = 0;
  uint32_t exits = 0;
  uint64_t walked_trie_nodes = 0;
  double compute_us = 0;  // CPU time of the computing thread
  double region_us = 0;   // of which getting the region walk (0 when cached)
};

class CompiledGrammar {
 public:
  // Resolves token terminals against `vocab` (an error names one that is not
  // a special or EOS token of the vocabulary).
  static StatusOr<std::shared_ptr<const CompiledGrammar>> create(std::shared_ptr<const Pda> pda,
                                                                 std::shared_ptr<const TokenVocabulary> vocab);
  ~CompiledGrammar();
  CompiledGrammar(const CompiledGrammar&) = delete;
  CompiledGrammar& operator=(const CompiledGrammar&) = delete;

  const Pda& pda() const { return *pda_; }
  const TokenVocabulary& vocab() const { return *vocab_; }
  // Token id of each token terminal of the PDA.
  const std::vector<int32_t>& terminal_tokens() const { return terminal_tokens_; }
  // The token terminals naming this token id (usually none or one).
  std::vector<uint32_t> terminals_of(int32_t token) const;

  // The mask of node n, computed on first use with `ctx` as scratch space
  // (ctx must be a StackContext over this grammar's PDA, used by one thread).
  const NodeMask& node_mask(uint32_t n, StackContext& ctx) const;
  size_t computed_masks() const { return computed_.load(std::memory_order_relaxed); }
  // The mask of n if already computed, else null (diagnostics).
  const NodeMask* peek_mask(uint32_t n) const { return masks_[n].load(std::memory_order_acquire); }

 private:
  CompiledGrammar() = default;
  NodeMask compute(uint32_t n, StackContext& ctx) const;

  std::shared_ptr<const Pda> pda_;
  std::shared_ptr<const TokenVocabulary> vocab_;
  std::vector<int32_t> terminal_tokens_;
  std::vector<std::pair<int32_t, int32_t>> token_terminal_;  // (token id, terminal), sorted
  uint8_t class_rep_[256] = {};
  std::unique_ptr<std::atomic<const NodeMask*>[]> masks_;
  mutable std::atomic<size_t> computed_{0};
};

}  // namespace kr::grammar
