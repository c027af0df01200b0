#include "tokenizer/added_vocab.h"

#include <algorithm>

namespace kr {
namespace {

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

// Whether [b, e) overlaps one of the sorted, disjoint spans.
bool overlaps(std::span<const TextSpan> spans, size_t b, size_t e) {
  // The first span that ends after b.
  auto it = std::upper_bound(spans.begin(), spans.end(), b, [](size_t v, const TextSpan& s) { return v < s.end; });
  return it != spans.end() && it->begin < e;
}

}  // namespace

AddedVocab::AddedVocab(const std::vector<Token>& tokens) {
  size_t total = 0;
  for (const Token& t : tokens) total += t.pattern.size();
  size_t cap = 16;
  while (cap < total * 2) cap *= 2;
  edges_.assign(cap, Edge{kEmpty, 0});
  edge_mask_ = cap - 1;
  for (const Token& t : tokens) {
    if (t.pattern.empty()) continue;  // tokenizers ignores empty added tokens
    int32_t node = 0;
    for (char c : t.pattern) {
      const uint8_t b = static_cast<uint8_t>(c);
      int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_.push_back(Node{});
        add_edge(node, b, next);
      }
      node = next;
    }
    first_byte_[static_cast<uint8_t>(t.pattern[0])] = true;
    // A repeated content: the later token wins, as in tokenizers' map.
    nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(t);
  }
}

int32_t AddedVocab::child(int32_t node, uint8_t byte) const {
  if (edges_.empty()) return -1;
  const uint64_t key = static_cast<uint64_t>(node) << 8 | byte;
  for (uint64_t h = mix(key) & edge_mask_;; h = (h + 1) & edge_mask_) {
    if (edges_[h].key == key) return edges_[h].child;
    if (edges_[h].key == kEmpty) return -1;
  }
}

void AddedVocab::add_edge(int32_t node, uint8_t byte, int32_t child_node) {
  const uint64_t key = static_cast<uint64_t>(node) << 8 | byte;
  for (uint64_t h = mix(key) & edge_mask_;; h = (h + 1) & edge_mask_) {
    if (edges_[h].key == kEmpty) {
      edges_[h] = Edge{key, child_node};
      return;
    }
  }
}

std::optional<AddedVocab::Match> AddedVocab::find(std::string_view text, size_t pos, bool parse_special,
                                                  std::span<const TextSpan> plain) const {
  if (empty()) return std::nullopt;
  for (size_t p = pos; p < text.size();) {
    if (!first_byte_[static_cast<uint8_t>(text[p])]) {
      ++p;
      continue;
    }
    // The longest pattern starting at p.
    int32_t best = -1;
    size_t best_end = 0;
    int32_t node = 0;
    for (size_t q = p; q < text.size(); ++q) {
      node = child(node, static_cast<uint8_t>(text[q]));
      if (node < 0) break;
      const int32_t t = nodes_[static_cast<size_t>(node)].token;
      if (t >= 0) {
        best = t;
        best_end = q + 1;
      }
    }
    if (best < 0) {
      ++p;
      continue;
    }
    const Token& tok = tokens_[static_cast<size_t>(best)];
    if (tok.special && (!parse_special || (!plain.empty() && overlaps(plain, p, best_end)))) {
      p = best_end;  // passed over: the search resumes after it, as tokenizers' iterator does
      continue;
    }
    return Match{p, best_end, tok.id};
  }
  return std::nullopt;
}

}  // namespace kr
