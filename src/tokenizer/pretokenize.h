// Pre-tokenizer: splits normalised text into pieces ("words") before BPE, as
// Hugging Face tokenizers' pre_tokenizers/*.rs do: Split (the GPT-2, GPT-4
// (Llama 3), Qwen2 and tekken regexes, hand-matched; or a literal string),
// Metaspace (SentencePiece style), ByteLevel, and Sequence.
// A configured PreTokenizer is immutable: any thread may call split().
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kr {

// The regex patterns we match by hand (std::regex has no \p{..} and is slow).
enum class SplitPattern {
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // The same with \p{N} instead of \p{N}{1,3} (Qwen2, Qwen3).
  kQwen2,
  // Mistral's tekken (Nemo, Small 3, ...), case-split words, no contractions:
  // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kTekken,
  // GPT-2's: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ (ByteLevel use_regex).
  kGpt2,
};

// Recognises a regex from tokenizer.json; Unimplemented for any other pattern.
StatusOr<SplitPattern> parse_split_pattern(std::string_view regex);

// Byte spans [begin, end) of the successive matches of `pattern` in `text`,
// appended to *matches. These patterns match every character, so the matches
// cover the text. Invalid UTF-8 bytes count as one non-letter character each.
struct PieceSpan {
  uint32_t begin, end;
};
void find_matches(SplitPattern pattern, std::string_view text, std::vector<PieceSpan>* matches);

// What a Split does with the matches of its pattern (Hugging Face's
// SplitDelimiterBehavior): keep them as pieces of their own (Isolated), drop
// them (Removed), glue each to the piece before (MergedWithPrevious) or after
// (MergedWithNext), or merge runs of matches and of non-matches (Contiguous).
enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Metaspace's prepend_scheme: add the replacement character before every
// piece (Always), only before the piece at the start of the input (First), or
// never.
enum class PrependScheme { kAlways, kFirst, kNever };

struct PreTokenizerStep {
  enum class Kind {
    kSplitRegex,   // Split on one of the hand-matched regexes (pattern)
    kSplitString,  // Split on a literal string (literal)
    kMetaspace,    // spaces -> replacement, prepend, split before each replacement
    kByteLevel,    // optional prefix space, GPT-2 regex split; pieces are bytes from here on (last step)
  };
  Kind kind = Kind::kSplitRegex;
  SplitPattern pattern = SplitPattern::kGpt2;
  std::string literal;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  std::string replacement = "\xE2\x96\x81";  // Metaspace: U+2581
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool metaspace_split = true;
  bool add_prefix_space = false;  // ByteLevel
  bool use_regex = true;          // ByteLevel
};

// One piece of text. at_origin: the piece starts where the whole input did
// (Hugging Face: offsets_original().0 == 0), which Metaspace's "first" scheme asks.
struct Piece {
  std::string_view text;
  bool at_origin;
};

class PreTokenizer {
 public:
  // Parses the "pre_tokenizer" object of tokenizer.json (passed as JSON text
  // to keep nlohmann out of this header). "null" means no pre-tokenizer.
  // Supported: Split (a Regex we match by hand, or a String; every behaviour;
  // invert), Metaspace (replacement, prepend_scheme or add_prefix_space, split),
  // ByteLevel (add_prefix_space, use_regex; last), and Sequence of these.
  // Errors name the key: "pre_tokenizer.pretokenizers[0].type: Digits is not supported".
  static StatusOr<PreTokenizer> from_json(std::string_view pre_tokenizer_json);
  PreTokenizer() = default;
  explicit PreTokenizer(std::vector<PreTokenizerStep> steps);

  // Appends the pieces of `text` to *pieces (empty pieces are dropped).
  // Steps that change text (Metaspace, ByteLevel's prefix space) store the new
  // strings in *storage (a deque, so earlier pieces stay valid), which must
  // outlive the pieces' use. at_origin: whether `text` starts at the start of
  // the whole input. *scratch is reused between calls.
  void split(std::string_view text, bool at_origin, std::vector<Piece>* pieces, std::vector<PieceSpan>* scratch,
             std::deque<std::string>* storage) const;
  bool byte_level() const { return byte_level_; }
  bool empty() const { return steps_.empty(); }
  // Whether a step can put text before the first character of a piece
  // (Metaspace prepending, ByteLevel's prefix space).
  bool may_insert_at_head() const;
  // Whether a Metaspace step uses the "first" scheme (which depends on at_origin).
  bool uses_first_scheme() const;

 private:
  std::vector<PreTokenizerStep> steps_;
  bool byte_level_ = false;
};

}  // namespace kr
