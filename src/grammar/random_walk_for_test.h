// Test and benchmark helper: generates a document by random choices among the
// tokens a matcher allows (as a random-weight model would), timing each
// fill_mask call.
//
// Choice policy (to finish in reasonable time on a 128k vocabulary, where
// most allowed tokens would otherwise extend a string): with probability
// `structural_bias` pick among allowed tokens containing JSON punctuation
// (" { } [ ] , :) when there are any; after `soft_max_tokens`, prefer tokens
// that close something (" ] }). EOS is taken with probability `eos_prob` when
// allowed (always when it is the only choice).
//
// Threading: pure function of its arguments; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "grammar/compiled_grammar.h"

namespace kr::grammar {

struct WalkOptions {
  int max_tokens = 2000;
  int soft_max_tokens = 300;
  double structural_bias = 0.6;
  double eos_prob = 0.5;
};

struct WalkResult {
  std::string text;
  bool finished = false;    // EOS accepted
  bool mask_error = false;  // the matcher rejected a token its mask allowed (a bug)
  std::vector<double> mask_us;       // fill_mask CPU time of this thread per step
  std::vector<double> mask_wall_us;  // the same, wall clock (includes preemption)
  std::vector<int32_t> tokens;
};

// Token classes used by the policy (computed once per vocabulary).
struct WalkTokenClasses {
  std::vector<uint32_t> structural;
  std::vector<uint32_t> closing;
  static WalkTokenClasses for_vocab(const TokenVocabulary& v);
};

WalkResult random_walk(const std::shared_ptr<const CompiledGrammar>& grammar, const WalkTokenClasses& classes,
                       std::mt19937_64& rng, const WalkOptions& options = {});

}  // namespace kr::grammar
