#include "grammar/token_set.h"

#include <algorithm>
#include <cstring>

namespace kr::grammar {

namespace {
// Sparse below one id per 64 tokens: a list of n ids costs 4n bytes, the mask V/8.
bool should_be_dense(size_t count, size_t words) { return count * 2 > words; }
}  // namespace

TokenSet TokenSet::from_bits(const uint32_t* mask, size_t words, size_t count) {
  TokenSet s;
  s.count = count;
  if (should_be_dense(count, words)) {
    s.bits.assign(mask, mask + words);
  } else {
    s.ids.reserve(count);
    for (size_t w = 0; w < words; ++w) {
      uint32_t x = mask[w];
      while (x) {
        int b = __builtin_ctz(x);
        s.ids.push_back(static_cast<int32_t>(w * 32 + b));
        x &= x - 1;
      }
    }
  }
  return s;
}

TokenSet TokenSet::from_ids(std::vector<int32_t> ids, size_t words) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  TokenSet s;
  s.count = ids.size();
  if (should_be_dense(ids.size(), words)) {
    s.bits.assign(words, 0);
    for (int32_t id : ids) s.bits[id >> 5] |= 1u << (id & 31);
  } else {
    s.ids = std::move(ids);
  }
  return s;
}

void TokenSet::copy_into(uint32_t* mask, size_t words) const {
  if (dense()) {
    std::memcpy(mask, bits.data(), words * sizeof(uint32_t));
  } else {
    std::memset(mask, 0, words * sizeof(uint32_t));
    for (int32_t id : ids) mask[id >> 5] |= 1u << (id & 31);
  }
}

void TokenSet::or_into(uint32_t* mask) const {
  if (dense()) {
    const size_t n = bits.size();
    const uint32_t* src = bits.data();
    for (size_t i = 0; i < n; ++i) mask[i] |= src[i];
  } else {
    for (int32_t id : ids) mask[id >> 5] |= 1u << (id & 31);
  }
}

}  // namespace kr::grammar
