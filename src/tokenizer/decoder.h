// Decoder: the "decoder" of a Hugging Face tokenizer.json (tokenizers'
// decoders/*.rs), turning token strings back into text.
//
// Supported: ByteLevel alone (the tokenizer decodes byte-level vocabularies
// through raw bytes, see Tokenizer); for SentencePiece-style vocabularies a
// Sequence (or one) of
//   Replace {pattern: {String}, content}   every occurrence, per token
//   ByteFallback                           runs of <0xNN> tokens -> their bytes if
//                                          valid UTF-8, else one U+FFFD per byte
//   Fuse                                   join all tokens into one
//   Strip {content, start, stop}           drop up to start leading / stop trailing
//                                          `content` characters of each token
//   Metaspace {replacement, prepend_scheme} replacement -> ' ', and dropped in the
//                                          first token unless the scheme is never
// and null (tokens joined with single spaces, as tokenizers does without a
// decoder). ByteFallback must come before Fuse; Strip with stop > 0 only
// before Fuse. Anything else is Unimplemented, naming the key.
//
// DecodeStream runs the chain over tokens one at a time, each step as a small
// state machine that emits text as soon as no later token can change it, so
// that the text of all push() calls plus finish() equals the chain applied to
// the whole token list (Tokenizer::decode uses it too: one implementation).
//
// Threading: a Decoder is immutable after from_json(); any thread may read it.
// A DecodeStream is one stream's state: one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kr {

class Decoder {
 public:
  // `decoder_json`: the JSON text of the "decoder" value ("null" for none).
  static StatusOr<Decoder> from_json(std::string_view decoder_json);
  Decoder() = default;

  // Exactly a ByteLevel decoder (alone or the only step of a Sequence).
  bool byte_level() const { return byte_level_; }
  // The bytes a token contributes in the middle of a text: the per-token
  // Replace/Metaspace steps applied, and a <0xNN> token as its byte when the
  // chain has ByteFallback (for logprobs' "bytes").
  std::string token_bytes(std::string_view token) const;

  struct Step {
    enum class Kind { kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind;
    std::string from, to;      // Replace; Metaspace: from = replacement
    std::string content;       // Strip: one character
    size_t start = 0, stop = 0;  // Strip
    bool strip_first = false;  // Metaspace: prepend_scheme is not never
    bool fused = false;        // a Fuse comes earlier in the chain
  };
  const std::vector<Step>& steps() const { return steps_; }
  bool none() const { return none_; }

 private:
  std::vector<Step> steps_;
  bool byte_level_ = false;
  bool none_ = true;  // no decoder at all
};

class DecodeStream {
 public:
  // `decoder` must outlive the stream and not be byte_level().
  explicit DecodeStream(const Decoder* decoder);
  // Feeds one token string; appends the text that is now final to *out.
  void push(std::string_view token, std::string* out);
  // Ends the stream: appends what was held back (a pending run of fallback
  // bytes, trailing characters a Strip might drop, a partial Replace match).
  // The stream then continues as if the text went on (it is not reset).
  void finish(std::string* out);

 private:
  struct StepState {
    std::vector<uint8_t> bytes;  // ByteFallback: the pending run
    size_t index = 0;            // elements seen (Metaspace's first token)
    size_t start_left = 0;       // fused Strip: leading characters that may still go
    std::string held;            // fused Replace: a possible partial match; fused Strip: trailing content chars
  };
  void feed(size_t step, std::string_view text, std::string* out);
  void flush(size_t step, std::string* out);
  void emit_run(size_t step, std::string* out);  // ByteFallback: the pending run, as HF groups it

  const Decoder* decoder_;
  std::vector<StepState> state_;
  bool first_token_ = true;  // no decoder: tokens are joined with " "
};

// Hugging Face ByteFallback's reading of a token: "<0xNN>" (exactly six
// bytes, two hex digits) -> the byte; else -1.
int fallback_byte(std::string_view token);

}  // namespace kr
