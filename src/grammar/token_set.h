// TokenSet: a set of token ids, stored as a bitmask when dense and as a sorted
// id list when sparse; used for precomputed token masks.
// Threading: immutable once built; any thread may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kr::grammar {

struct TokenSet {
  std::vector<uint32_t> bits;  // (V + 31) / 32 words when dense, else empty
  std::vector<int32_t> ids;    // sorted ids when sparse
  size_t count = 0;

  // Builds from a bitmask of `words` words holding `count` set bits.
  static TokenSet from_bits(const uint32_t* mask, size_t words, size_t count);
  static TokenSet from_ids(std::vector<int32_t> ids, size_t words);
  bool dense() const { return !bits.empty(); }
  void or_into(uint32_t* mask) const;
  // Writes the set as the whole mask (words = the vocabulary's mask words).
  void copy_into(uint32_t* mask, size_t words) const;
  size_t memory_bytes() const { return bits.size() * 4 + ids.size() * 4; }
};

}  // namespace kr::grammar
