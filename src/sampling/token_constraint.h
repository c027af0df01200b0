// TokenConstraint: one sequence's output constraint (structured outputs, forced
// tool calls) as the engine uses it: a grammar matcher (src/grammar) that says
// which tokens may come next (fill_mask) and takes the token that came
// (accept). The server compiles the grammar; the engine makes one constraint
// per sequence, StepMasks fills the masks of a step on its workers, the
// sampler applies them (Backend::apply_token_mask) and the engine accepts the
// chosen token after the step.
//
// Trigger: with a reasoning parser on, the grammar applies only to the output
// after "</think>" (vLLM's rule: structured output starts where reasoning
// ends). Until the trigger's bytes have been generated the constraint is
// inactive and the row samples freely; the bytes that follow the trigger in
// the token that completes it are the grammar's first input. The trigger is
// found in the token bytes of the grammar's vocabulary, so it is seen whether
// the model writes it as one token or several.
//
// EOS: the mask allows EOS only where the grammar can end; after EOS only EOS
// (the engine ends the sequence there unless ignore_eos).
//
// Threading: one sequence's. fill_mask runs on a StepMasks worker while the
// engine thread leaves the constraint alone (between StepMasks::start and
// wait); accept and the rest on the engine thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "grammar/compiled_grammar.h"
#include "grammar/matcher.h"

namespace kr {

class TokenConstraint {
 public:
  // `trigger` empty: active from the first output token.
  TokenConstraint(std::shared_ptr<const grammar::CompiledGrammar> grammar, std::string trigger = "");

  // Whether the next token is constrained (the trigger has been seen).
  bool active() const { return active_; }
  // Words of one mask: ceil(vocabulary size / 32).
  size_t mask_words() const { return matcher_.grammar().vocab().mask_words(); }
  // Active only: writes mask_words() words (bit i of word i / 32: token i may
  // come next) and returns how many tokens are allowed; 0: the sequence cannot
  // go on (error() says why).
  size_t fill_mask(uint32_t* words);
  // The token chosen for this sequence. Inactive: scans for the trigger. Active:
  // advances the matcher; false when the grammar refuses the token (the
  // sequence must fail; error() says why).
  bool accept(int32_t id);
  // Why the sequence cannot go on ("" while it can).
  const std::string& error() const { return error_; }
  // The output so far completes the grammar (false while inactive).
  bool can_terminate() const { return active_ && matcher_.can_terminate(); }

 private:
  grammar::GrammarMatcher matcher_;
  std::string trigger_;
  std::string tail_;  // inactive: the last trigger_.size() - 1 output bytes
  bool active_ = true;
  std::string error_;
};

}  // namespace kr
