// Pre-tokenizer: splits normalised text into pieces ("words") before BPE.
// Supports what Llama 3 / Qwen2 / Qwen3 / GPT-2 tokenizer.json files use:
// Sequence of Split (the GPT-4-style regex, hand-matched) and ByteLevel.
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

enum class SplitBehavior { kIsolated, kRemoved };

struct SplitStep {
  SplitPattern pattern;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
};

class PreTokenizer {
 public:
  // Parses the "pre_tokenizer" object of tokenizer.json (passed as JSON text
  // to keep nlohmann out of this header). "null" means no pre-tokenizer.
  static StatusOr<PreTokenizer> from_json(std::string_view pre_tokenizer_json);
  PreTokenizer() = default;
  PreTokenizer(std::vector<SplitStep> steps, bool byte_level, bool add_prefix_space)
      : steps_(std::move(steps)), byte_level_(byte_level), add_prefix_space_(add_prefix_space) {}

  // Appends the pieces of `text` to *pieces. With add_prefix_space a piece not
  // starting with ' ' gets one (a copy is stored in *storage, a deque so
  // that earlier pieces stay valid, which must outlive the pieces' use). *scratch is reused between calls.
  void split(std::string_view text, std::vector<std::string_view>* pieces, std::vector<PieceSpan>* scratch,
             std::deque<std::string>* storage) const;
  bool byte_level() const { return byte_level_; }

 private:
  std::vector<SplitStep> steps_;
  bool byte_level_ = false;
  bool add_prefix_space_ = false;
};

}  // namespace kr
