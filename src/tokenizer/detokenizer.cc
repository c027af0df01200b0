// IncrementalDetokenizer: holds back only a trailing incomplete UTF-8
// sequence, so that each piece is valid UTF-8 and the pieces add up to
// Tokenizer::decode (lossy decoding never looks past such a boundary).
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kr {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer* tok, bool skip_special_tokens)
    : tok_(tok), skip_special_(skip_special_tokens) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && tok_->is_special(id)) return {};
  pending_ += tok_->token_bytes_view(id);
  const size_t complete = unicode::complete_utf8_prefix(pending_);
  std::string out = unicode::utf8_lossy(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out = unicode::utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace kr
