// Tokenizer: a byte-level BPE tokenizer read from a Hugging Face tokenizer.json
// (Llama 3, Qwen2/Qwen3 and GPT-2 style): NFC or no normaliser, Split/ByteLevel
// pre-tokenizer, BPE model, added (special) tokens, ByteLevel decoder.
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
#include <vector>

#include "base/status.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"

namespace kr {

class Tokenizer {
 public:
  // Errors: NotFound (no file), InvalidArgument (not valid tokenizer.json),
  // Unimplemented (a component or regex this tokenizer does not support).
  static StatusOr<std::unique_ptr<Tokenizer>> load_from_file(const std::string& tokenizer_json_path);
  // Same, from the file's contents; `name` is used in error messages.
  static StatusOr<std::unique_ptr<Tokenizer>> load_from_json(std::string_view json_text, const std::string& name);

  // Ids of text; parse_special: whether special-token text in `text` becomes
  // those tokens (false for user content: no control-token injection).
  // Non-special added tokens are always matched, as in Hugging Face.
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;
  // Text of ids; invalid UTF-8 becomes U+FFFD; unknown ids are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  std::string token_bytes(int32_t id) const;  // the raw bytes a token stands for ("" if unknown)
  std::string token_text(int32_t id) const;   // the vocab string (e.g. "Ġhello")
  std::optional<int32_t> token_to_id(std::string_view token) const;
  bool is_special(int32_t id) const;
  int32_t vocab_size() const;  // largest id + 1

  // Bytes of a token without a copy (empty for unknown ids).
  std::string_view token_bytes_view(int32_t id) const;

 private:
  struct AddedToken {
    std::string content;
    int32_t id;
    bool special;
  };
  Tokenizer() = default;
  // Encodes text that holds no added token.
  void encode_plain(std::string_view text, std::vector<int32_t>* ids) const;
  // Longest added token starting at text[pos] that may be matched, or nullptr.
  const AddedToken* match_added(std::string_view text, size_t pos, bool parse_special) const;

  BpeModel model_;
  PreTokenizer pre_tokenizer_;
  bool nfc_ = false;
  std::vector<std::string> id_bytes_;  // raw bytes by id
  std::vector<std::string> id_text_;   // vocab string by id
  std::vector<uint8_t> special_;       // by id
  StringIdTable text_to_id_;           // vocab strings and added-token contents (keys: id_text_)
  std::vector<AddedToken> added_;
  // Indices into added_ by first byte, longest content first.
  std::vector<std::vector<uint32_t>> added_by_first_byte_;
};

// Streaming decode: push ids one at a time, get the newly completed text.
// The concatenation of all push() results and flush() equals
// Tokenizer::decode of all the ids. One stream per object; not thread-safe.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer* tok, bool skip_special_tokens);
  // Newly completed, valid UTF-8 text (may be empty while a multi-byte
  // character is still incomplete).
  std::string push(int32_t id);
  // What remains at the end (incomplete bytes -> U+FFFD, as HF does).
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;  // bytes of a character not yet complete (≤ 3)
};

}  // namespace kr
