// Normalizer: the "normalizer" of a Hugging Face tokenizer.json, applied to
// each stretch of text between added tokens before pre-tokenization.
// Supported (as Hugging Face tokenizers defines them, normalizers/*.rs):
//   NFC; Prepend {prepend} (only to non-empty text); Replace {pattern: {String},
//   content} (every leftmost non-overlapping occurrence); Sequence of these;
//   null (no normaliser).
// Anything else (NFKC, Lowercase, Strip, Precompiled, a Regex pattern, ...) is
// Unimplemented with the key that names it.
//
// Threading: immutable after from_json(); any thread may call normalize().
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kr {

class Normalizer {
 public:
  // `normalizer_json`: the JSON text of the "normalizer" value ("null" for none).
  // Errors name the key, e.g. "normalizer.normalizers[1].type: Lowercase is not supported".
  static StatusOr<Normalizer> from_json(std::string_view normalizer_json);
  Normalizer() = default;

  bool empty() const { return steps_.empty(); }
  // Whether a step can put text before the first character of its input
  // (Prepend, or a Replace whose content is longer than one character).
  bool may_insert_at_head() const;

  // Writes the normalised `in` to *out. *head_deleted is set when leading
  // characters were removed (a Replace with empty content matched at the start),
  // so that the output no longer begins at the input's first character.
  void normalize(std::string_view in, std::string* out, bool* head_deleted) const;

 private:
  struct Step {
    enum class Kind { kNfc, kPrepend, kReplace } kind;
    std::string text;     // Prepend: the prefix; Replace: the pattern
    std::string content;  // Replace: the replacement
  };
  std::vector<Step> steps_;
};

}  // namespace kr
