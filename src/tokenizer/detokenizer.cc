// IncrementalDetokenizer. Byte-level vocabularies: only a trailing incomplete
// UTF-8 sequence is held back, so that each piece is valid UTF-8 and the
// pieces add up to Tokenizer::decode (lossy decoding never looks past such a
// boundary). Other decoders: DecodeStream, which holds back exactly what a
// later token could still change.
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kr {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer* tok, bool skip_special_tokens)
    : tok_(tok), skip_special_(skip_special_tokens) {
  if (!tok_->decoder_.byte_level()) stream_ = std::make_unique<DecodeStream>(&tok_->decoder_);
}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && tok_->is_special(id)) return {};
  if (stream_) {
    std::string out;
    if (std::optional<std::string_view> t = tok_->decoder_token(id)) stream_->push(*t, &out);
    return out;
  }
  pending_ += tok_->byte_token_view(id);
  const size_t complete = unicode::complete_utf8_prefix(pending_);
  std::string out = unicode::utf8_lossy(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  if (stream_) {
    std::string out;
    stream_->finish(&out);
    return out;
  }
  std::string out = unicode::utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace kr
