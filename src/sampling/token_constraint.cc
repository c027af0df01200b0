#include "sampling/token_constraint.h"

#include <utility>

namespace kr {

TokenConstraint::TokenConstraint(std::shared_ptr<const grammar::CompiledGrammar> grammar, std::string trigger)
    : matcher_(std::move(grammar)), trigger_(std::move(trigger)), active_(trigger_.empty()) {}

size_t TokenConstraint::fill_mask(uint32_t* words) {
  const size_t allowed = matcher_.fill_mask(words);
  if (allowed == 0 && error_.empty()) {
    const std::string why = matcher_.error();
    error_ = why.empty() ? "the output grammar allows no token after this output" : why;
  }
  return allowed;
}

bool TokenConstraint::accept(int32_t id) {
  const grammar::TokenVocabulary& vocab = matcher_.grammar().vocab();
  if (!active_) {
    if (id < 0 || static_cast<size_t>(id) >= vocab.size()) return true;  // no bytes: nothing to scan
    std::string seen = tail_ + vocab.token(id);
    const size_t at = seen.find(trigger_);
    if (at == std::string::npos) {
      const size_t keep = trigger_.size() - 1;
      tail_ = seen.size() > keep ? seen.substr(seen.size() - keep) : seen;
      return true;
    }
    active_ = true;
    tail_.clear();
    // What follows the trigger in this token starts the constrained output;
    // whitespace there (a "</think>\n\n" token) is the reasoning's, not the grammar's.
    std::string rest = seen.substr(at + trigger_.size());
    size_t ws = 0;
    while (ws < rest.size() && (rest[ws] == ' ' || rest[ws] == '\n' || rest[ws] == '\t' || rest[ws] == '\r')) ++ws;
    rest.erase(0, ws);
    if (!rest.empty() && !matcher_.accept_bytes(rest)) {
      error_ = "the output after '" + trigger_ + "' does not match the output grammar";
      return false;
    }
    return true;
  }
  // After EOS the mask allows only EOS (the sequence goes on only with ignore_eos).
  if (matcher_.is_finished() && vocab.is_eos(id)) return true;
  if (!matcher_.accept_token(id)) {
    const std::string why = matcher_.error();
    error_ = "token " + std::to_string(id) + " is not allowed by the output grammar" + (why.empty() ? "" : ": " + why);
    return false;
  }
  return true;
}

}  // namespace kr
