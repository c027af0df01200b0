// GrammarMatcher: the state of one generated sequence under a compiled
// grammar. Per step the engine calls fill_mask() for the next token's allowed
// set, samples, then accept_token() with the chosen id.
//
//   fill_mask(bits)     bit i of bits[i / 32] (LSB first) is 1 iff token i may
//                       come next; vocab.mask_words() words are written; returns
//                       how many. EOS tokens are allowed only where the grammar
//                       can end; after EOS only EOS is allowed. 0 means the
//                       sequence cannot go on (error() may say why): end it
//                       with an error.
//   accept_token(id)    advances; false (and no change) if id is not allowed.
//   can_terminate()     the output so far is a complete match.
//   is_finished()       an EOS token was accepted.
//   rollback(k)         undoes the last k accepted tokens (k <= the history
//                       kept, MatcherOptions::max_rollback_tokens).
//
// Threading: one matcher per sequence, used by one thread at a time; matchers
// of the same CompiledGrammar may run concurrently on different threads.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/compiled_grammar.h"
#include "grammar/stack_context.h"

namespace kr::grammar {

struct MatcherOptions {
  int max_rollback_tokens = 32;
  // A grammar this ambiguous (parallel parse stacks) fails the sequence.
  int max_stacks = 1024;
};

class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, MatcherOptions options = {});

  // Writes grammar().vocab().mask_words() words. Returns the number of allowed tokens.
  size_t fill_mask(uint32_t* bits);
  bool accept_token(int32_t id);
  // Advances over raw bytes (tests, forced text); false and no change when rejected.
  bool accept_bytes(std::string_view bytes);
  bool can_terminate() const;
  bool is_finished() const { return finished_; }
  bool rollback(int k);
  void reset();
  // Why tokens were refused beyond the grammar itself: "" or a note that some
  // continuation needed more than max_stacks parse stacks (a grammar too
  // ambiguous to follow there). Such tokens are refused; the mask leaves them
  // out when they leave their rule, but may still offer ones that stay inside
  // it (accept_token then refuses them). Grammars with at most max_stacks
  // parses at a time are unaffected.
  std::string error() const {
    return too_ambiguous_ ? "grammar is too ambiguous: a continuation needs more than " +
                                std::to_string(options_.max_stacks) + " parse stacks"
                          : "";
  }

  const CompiledGrammar& grammar() const { return *grammar_; }
  size_t num_stacks() const { return stacks_.size(); }

 private:
  bool advance_bytes(std::string_view bytes, std::vector<Handle>& out);
  // Sets the bits of nm's uncertain tokens that h accepts; returns how many were new.
  size_t check_uncertain(Handle h, const NodeMask& nm, uint32_t* bits);

  struct Snapshot {
    std::vector<Handle> stacks;
    size_t arena_size;
    bool finished;
  };

  std::shared_ptr<const CompiledGrammar> grammar_;
  MatcherOptions options_;
  StackContext ctx_;       // persistent stacks + scratch for run-time checks
  StackContext mask_ctx_;  // scratch for computing node masks on first use
  std::vector<Handle> stacks_;
  bool finished_ = false;
  std::deque<Snapshot> history_;
  bool too_ambiguous_ = false;

  // Last mask, reused while the stacks stay the same (inside a string, say).
  std::vector<Handle> cached_stacks_;
  std::vector<uint32_t> cached_mask_;
  size_t cached_count_ = 0;
  bool cache_valid_ = false;

  // Scratch for check_uncertain.
  std::vector<Handle> levels_;
  std::vector<uint32_t> level_begin_;
  std::vector<Handle> step_out_;
};

}  // namespace kr::grammar
