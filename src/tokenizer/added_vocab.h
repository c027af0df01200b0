// AddedVocab: the "added_tokens" of a tokenizer.json, found in text before
// the model sees it, as tokenizers' AddedVocabulary does: leftmost-longest
// matches over all added tokens; tokens with normalized=false are matched in
// the raw text, those with normalized=true in the normalised text (against
// their normalised content). When special tokens are not to be parsed, a
// special token's match is passed over (it stays plain text) and the search
// goes on after it, as with tokenizers' encode_special_tokens.
//
// Threading: immutable after construction; any thread may call find().
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kr {

// A byte range [begin, end) of a text.
struct TextSpan {
  size_t begin, end;
};

class AddedVocab {
 public:
  struct Token {
    std::string pattern;  // the content, or its normalised form for a normalized token
    int32_t id;
    bool special;
  };
  struct Match {
    size_t begin, end;
    int32_t id;
  };

  AddedVocab() = default;
  explicit AddedVocab(const std::vector<Token>& tokens);

  bool empty() const { return nodes_.size() <= 1; }
  // The first match at or after `pos`, or nullopt. A special token matches
  // only with parse_special and when it overlaps none of `plain` (sorted,
  // disjoint spans of `text` that stay plain text).
  std::optional<Match> find(std::string_view text, size_t pos, bool parse_special,
                            std::span<const TextSpan> plain = {}) const;

 private:
  struct Node {
    int32_t token = -1;  // index into tokens_ when a pattern ends here
  };
  struct Edge {
    uint64_t key;  // node << 8 | byte; kEmpty if unused
    int32_t child;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  int32_t child(int32_t node, uint8_t byte) const;
  void add_edge(int32_t node, uint8_t byte, int32_t child);

  std::vector<Token> tokens_;
  std::vector<Node> nodes_{Node{}};  // nodes_[0]: the root
  std::vector<Edge> edges_;          // open addressing, power-of-two size
  uint64_t edge_mask_ = 0;
  bool first_byte_[256] = {};
};

}  // namespace kr
