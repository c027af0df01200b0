// Tokenizer: a BPE tokenizer read from a Hugging Face tokenizer.json that
// encodes and decodes exactly as the Hugging Face `tokenizers` library does:
//  - byte-level BPE (Llama 3, Qwen2/2.5/3, GPT-2, Mistral tekken): NFC or no
//    normaliser; Split (hand-matched regexes) and ByteLevel pre-tokenizers;
//    ByteLevel decoder;
//  - SentencePiece-style BPE (Llama 2, Mistral v0.1-v0.3, Gemma): Prepend /
//    Replace normalisers; Metaspace or Split-on-a-string pre-tokenizers;
//    BPE over Unicode characters with byte_fallback and unk; Replace /
//    ByteFallback / Fuse / Strip / Metaspace decoders.
// Added tokens (special or not) are matched before the model, as tokenizers
// does. The post_processor (TemplateProcessing) gives the ids that
// add_special_tokens=True adds, unless tokenizer_config.json sets
// add_bos_token / add_eos_token (see TokenizerConfig below).
// Every pipeline component is in normalizer.h, pretokenize.h, bpe.h and
// decoder.h; anything else in a tokenizer.json is an error naming the key.
//
// Threads: load_from_file() builds an immutable object; afterwards every const
// method may be called from any number of threads at once.
// IncrementalDetokenizer holds one stream's state: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer_config.h"

namespace kr {

namespace tokenizer_json {
struct Parsed;
}

class Tokenizer {
 public:
  // Errors: NotFound (no file), InvalidArgument (not valid tokenizer.json),
  // Unimplemented (a component or regex this tokenizer does not support);
  // messages start with the file name and name the key.
  // `config`: the model's tokenizer_config.json, when there is one. As
  // transformers 5 (TokenizersBackend) does: when it has an add_bos_token or
  // add_eos_token key, those (with its bos_token / eos_token) decide the
  // special tokens added around a text; otherwise the post_processor does.
  static StatusOr<std::unique_ptr<Tokenizer>> load_from_file(const std::string& tokenizer_json_path,
                                                             const TokenizerConfig* config = nullptr);
  // Same, from the file's contents; `name` is used in error messages.
  static StatusOr<std::unique_ptr<Tokenizer>> load_from_json(std::string_view json_text, const std::string& name,
                                                             const TokenizerConfig* config = nullptr);
  // Same, from an already parsed file (tokenizer_json.h; consumed). For tests
  // that build variants of one large file without parsing it again.
  static StatusOr<std::unique_ptr<Tokenizer>> load_from_parsed(tokenizer_json::Parsed parsed, const std::string& name,
                                                               const TokenizerConfig* config = nullptr);

  // Ids of text; parse_special: whether special-token text in `text` becomes
  // those tokens (false for user content: no control-token injection).
  // Non-special added tokens are always matched, as in Hugging Face.
  // add_special_tokens: add the post-processor's tokens (e.g. <s> / <bos>
  // before the text), as Hugging Face's encode(add_special_tokens=True).
  std::vector<int32_t> encode(std::string_view text, bool parse_special, bool add_special_tokens = false) const;
  // encode(text, /*parse_special=*/true) except that special tokens are not
  // parsed where they overlap one of `plain` (sorted, disjoint byte ranges of
  // text): a rendered chat prompt's client-written contents stay plain text
  // while the template's own special tokens become tokens, and the whole
  // rendering is otherwise encoded as one text, as Hugging Face encodes it.
  // (A special added token with normalized=true is not parsed at all in a
  // stretch of text that touches a plain range.)
  std::vector<int32_t> encode_with_plain_spans(std::string_view text, std::span<const TextSpan> plain) const;
  // The first special token's text in `text` at or after `pos` (leftmost-
  // longest among all added tokens, as encode matches them), or nullopt.
  std::optional<TextSpan> find_special_text(std::string_view text, size_t pos) const;
  // Text of ids, as Hugging Face's decode; unknown ids are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  // The bytes a token stands for in the middle of a text ("" if unknown): a
  // byte-level token's bytes; a SentencePiece token with its "▁" as spaces,
  // or a <0xNN> token's byte.
  std::string token_bytes(int32_t id) const;
  std::string token_text(int32_t id) const;  // the vocab string (e.g. "Ġhello", "▁hello")
  std::optional<int32_t> token_to_id(std::string_view token) const;
  bool is_special(int32_t id) const;
  int32_t vocab_size() const;  // largest id + 1
  // What add_special_tokens puts before and after a text's ids.
  const std::vector<int32_t>& special_prefix() const { return special_prefix_; }
  const std::vector<int32_t>& special_suffix() const { return special_suffix_; }
  // Byte-level BPE (tokens are bytes) rather than SentencePiece-style.
  bool byte_level() const { return decoder_.byte_level(); }

 private:
  friend class IncrementalDetokenizer;
  Tokenizer() = default;
  // Encodes text that holds no raw-text added token; at_origin: it starts the input.
  void encode_impl(std::string_view text, bool parse_special, std::span<const TextSpan> plain,
                   std::vector<int32_t>* ids) const;
  void encode_segment(std::string_view text, bool at_origin, bool parse_special, std::vector<int32_t>* ids) const;
  void encode_pieces(std::string_view text, bool at_origin, std::vector<int32_t>* ids) const;
  // The token string the decoder sees (the normalised content of a normalized
  // added token, as tokenizers does), or nullopt for an unknown id.
  std::optional<std::string_view> decoder_token(int32_t id) const;
  // Byte-level tokens: their raw bytes (empty view for unknown ids).
  std::string_view byte_token_view(int32_t id) const;

  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  BpeModel model_;
  Decoder decoder_;
  AddedVocab added_raw_;         // normalized=false added tokens
  AddedVocab added_normalized_;  // normalized=true ones, by their normalised content
  AddedVocab added_contents_;    // all added tokens by their content (find_special_text)
  std::vector<std::string> id_bytes_;  // byte-level: raw bytes by id (the model's keys); else empty
  std::vector<std::string> id_text_;   // vocab string / added-token content by id
  std::unordered_map<int32_t, std::string> decoder_text_;  // normalized added tokens whose normalised form differs
  std::vector<uint8_t> special_;       // by id
  StringIdTable text_to_id_;           // vocab strings and added-token contents (keys: id_text_)
  std::vector<int32_t> special_prefix_, special_suffix_;
};

// Streaming decode: push ids one at a time, get the newly final text. The
// concatenation of all push() results and flush() equals Tokenizer::decode of
// all the ids, and every piece is valid UTF-8 ending on a character boundary.
// What is held back: a byte-level token's incomplete UTF-8 character; a run of
// SentencePiece <0xNN> byte tokens until the next other token (Hugging Face
// decodes the run as a whole: valid UTF-8, or one U+FFFD per byte).
// One stream per object; not thread-safe.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer* tok, bool skip_special_tokens);
  // Newly final, valid UTF-8 text (may be empty while text is held back).
  std::string push(int32_t id);
  // What remains at the end (an incomplete character -> U+FFFD, as HF does).
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;  // byte-level: bytes of a character not yet complete (≤ 3)
  std::unique_ptr<DecodeStream> stream_;  // SentencePiece-style decoders
};

}  // namespace kr
