// BPE merging with a min-heap of candidate pairs (rank, then leftmost
// position), as Hugging Face tokenizers does, so long pieces (whitespace runs)
// stay O(n log n).
#include "tokenizer/bpe.h"
#include "tokenizer/scratch.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <cstring>

#include "base/check.h"
#include "tokenizer/unicode.h"

namespace kr {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

struct Symbol {
  int32_t id;
  int32_t prev, next;  // indices into the symbol array, -1 at the ends
  uint32_t bytes;      // 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t left, right, merged;
  // Min-heap order: lowest rank first, then the leftmost position.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

// Direct-mapped cache of recent words, one per thread. An entry is valid for
// the model whose cache_key_ it holds.
struct WordCache {
  static constexpr size_t kEntries = 4096;
  static constexpr size_t kMaxWordBytes = 24;
  static constexpr size_t kMaxIds = 8;
  struct Entry {
    uint64_t model = 0;  // 0 = empty
    uint8_t word_bytes = 0;
    uint8_t n_ids = 0;
    char word[kMaxWordBytes];
    int32_t ids[kMaxIds];
  };
  Entry entries[kEntries];
};

std::atomic<uint64_t> next_cache_key{1};

}  // namespace

StringIdTable::StringIdTable(const std::vector<std::string>* keys, size_t expected_count) : keys_(keys) {
  size_t cap = 16;
  while (cap < expected_count * 2) cap *= 2;
  slots_.assign(cap, -1);
  mask_ = cap - 1;
}

void StringIdTable::insert(int32_t id) {
  const std::string& key = (*keys_)[static_cast<size_t>(id)];
  for (size_t h = std::hash<std::string_view>{}(key) & mask_;; h = (h + 1) & mask_) {
    if (slots_[h] < 0) {
      slots_[h] = id;
      return;
    }
    if ((*keys_)[static_cast<size_t>(slots_[h])] == key) return;
  }
}

std::optional<int32_t> StringIdTable::find(std::string_view key) const {
  if (slots_.empty()) return std::nullopt;
  for (size_t h = std::hash<std::string_view>{}(key) & mask_;; h = (h + 1) & mask_) {
    const int32_t id = slots_[h];
    if (id < 0) return std::nullopt;
    if ((*keys_)[static_cast<size_t>(id)] == key) return id;
  }
}

BpeModel::BpeModel(const std::vector<std::string>* keys, const std::vector<int32_t>& vocab_ids,
                   const std::vector<Merge>& merges, const Options& options)
    : vocab_bytes_(keys, vocab_ids.size()), options_(options), cache_key_(next_cache_key++) {
  for (int32_t id : vocab_ids) vocab_bytes_.insert(id);
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    byte_ids_[b] = options_.byte_level ? vocab_bytes_.find(std::string_view(&c, 1)).value_or(-1) : -1;
    // tokenizers spells a fallback byte format!("<{b:#04X}>"): "<0x0A>".
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    fallback_ids_[b] = !options_.byte_level && options_.byte_fallback
                           ? vocab_bytes_.find(std::string_view(name, sizeof(name))).value_or(-1)
                           : -1;
  }
  if (!options_.byte_level) {
    // Which characters some token joins to a following "▁" (see encode_word).
    const std::string mark = "\xE2\x96\x81";
    split_at_space_ = options_.split_at_space && vocab_bytes_.find(mark).has_value();
    for (int32_t id : vocab_ids) {
      const std::string& k = (*keys)[static_cast<size_t>(id)];
      uint32_t prev = 0;
      for (size_t i = 0; i < k.size();) {
        size_t len = 0;
        const uint32_t cp = unicode::decode_utf8(k, i, &len);
        if (cp == kSpaceMark && i > 0 && prev != kSpaceMark) joins_space_.push_back(prev);
        prev = cp;
        i += len;
      }
    }
    std::sort(joins_space_.begin(), joins_space_.end());
    joins_space_.erase(std::unique(joins_space_.begin(), joins_space_.end()), joins_space_.end());
    // An unknown character becomes <0xNN> tokens or the unknown token: its
    // last symbol's string ends in that string's last character.
    const auto joins = [&](uint32_t cp) { return std::binary_search(joins_space_.begin(), joins_space_.end(), cp); };
    unknown_joins_space_ = joins('>');
    if (options_.unk_id) {
      const std::string& unk = (*keys)[static_cast<size_t>(*options_.unk_id)];
      size_t last = unk.size();
      while (last > 0 && (static_cast<uint8_t>(unk[last - 1]) & 0xC0) == 0x80) --last;
      size_t len = 0;
      if (last > 0) unknown_joins_space_ = unknown_joins_space_ || joins(unicode::decode_utf8(unk, last - 1, &len));
    }
    // One-character tokens below U+10000 in a table: the first lookup of
    // every character of the text.
    bmp_char_ids_.assign(0x10000, -1);
    for (int32_t id : vocab_ids) {
      const std::string& k = (*keys)[static_cast<size_t>(id)];
      size_t len = 0;
      const uint32_t cp = k.empty() ? 0 : unicode::decode_utf8(k, 0, &len);
      if (!k.empty() && len == k.size() && cp < 0x10000 && bmp_char_ids_[cp] < 0 &&
          vocab_bytes_.find(k) == std::optional<int32_t>(id)) {
        bmp_char_ids_[cp] = id;
      }
    }
  }
  size_t cap = 16;
  while (cap < merges.size() * 2) cap *= 2;
  pairs_.assign(cap, PairEntry{kEmpty, 0, 0});
  pair_mask_ = cap - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& m = merges[rank];
    const uint64_t key = pair_key(m.left, m.right);
    for (uint64_t h = mix(key) & pair_mask_;; h = (h + 1) & pair_mask_) {
      if (pairs_[h].key == key) break;  // duplicate merge: the first (lowest rank) wins
      if (pairs_[h].key == kEmpty) {
        pairs_[h] = PairEntry{key, static_cast<int32_t>(rank), m.merged};
        break;
      }
    }
  }
}

const BpeModel::PairEntry* BpeModel::find_pair(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  for (uint64_t h = mix(key) & pair_mask_;; h = (h + 1) & pair_mask_) {
    const PairEntry& e = pairs_[h];
    if (e.key == key) return &e;
    if (e.key == kEmpty) return nullptr;
  }
}

std::optional<int32_t> BpeModel::byte_token(uint8_t b) const {
  if (byte_ids_[b] < 0) return std::nullopt;
  return byte_ids_[b];
}

std::optional<int32_t> BpeModel::fallback_token(uint8_t b) const {
  if (fallback_ids_[b] < 0) return std::nullopt;
  return fallback_ids_[b];
}

int32_t BpeModel::char_id(std::string_view s, uint32_t cp) const {
  // A replacement character from an invalid byte is not the character itself.
  if (cp < 0x10000 && !(cp == 0xFFFD && s.size() != 3)) return bmp_char_ids_[cp];
  return vocab_bytes_.find(s).value_or(-1);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if ((word.size() == 1 && options_.byte_level) || options_.ignore_merges) {
    if (std::optional<int32_t> id = vocab_bytes_.find(word)) {
      ids->push_back(*id);
      return;
    }
  }
  if (!split_at_space_) {
    encode_cached(word, ids);
    return;
  }
  // SentencePiece-style words are whole stretches of text ("▁the▁cat▁...").
  // Cut them before each "▁" that follows a character no token can join to
  // a following "▁" (no vocabulary string holds that pair): no merge can
  // cross such a cut, so the parts merge exactly as the whole would, and
  // the parts are short words the cache knows.
  size_t start = 0;
  bool prev_joins = true;  // the character before i may join a following ▁ (or there is none)
  for (size_t i = 0; i < word.size();) {
    size_t len = 0;
    const uint32_t cp = unicode::decode_utf8(word, i, &len);
    if (cp == kSpaceMark && !prev_joins) {
      encode_cached(word.substr(start, i - start), ids);
      start = i;
    }
    if (cp == kSpaceMark) {
      prev_joins = true;  // ▁▁ may merge
    } else {
      const int32_t id = char_id(word.substr(i, len), cp);
      prev_joins = id < 0 ? unknown_joins_space_ : std::binary_search(joins_space_.begin(), joins_space_.end(), cp);
    }
    i += len;
  }
  encode_cached(word.substr(start), ids);
}

void BpeModel::encode_cached(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() > WordCache::kMaxWordBytes) {
    merge_word(word, ids);
    return;
  }
  thread_local std::unique_ptr<WordCache> cache = std::make_unique<WordCache>();
  WordCache::Entry& e = cache->entries[std::hash<std::string_view>{}(word) % WordCache::kEntries];
  if (e.model == cache_key_ && e.word_bytes == word.size() && std::memcmp(e.word, word.data(), word.size()) == 0) {
    ids->insert(ids->end(), e.ids, e.ids + e.n_ids);
    return;
  }
  const size_t first = ids->size();
  merge_word(word, ids);
  const size_t n = ids->size() - first;
  if (n <= WordCache::kMaxIds) {
    e.model = cache_key_;
    e.word_bytes = static_cast<uint8_t>(word.size());
    std::memcpy(e.word, word.data(), word.size());
    e.n_ids = static_cast<uint8_t>(n);
    std::copy(ids->begin() + static_cast<ptrdiff_t>(first), ids->end(), e.ids);
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>* ids) const {
  thread_local std::vector<Symbol> syms;
  thread_local std::vector<Candidate> heap;
  syms.clear();
  heap.clear();
  const auto add = [&](int32_t id, uint32_t len) {
    const int32_t i = static_cast<int32_t>(syms.size());
    if (i > 0) syms.back().next = i;
    syms.push_back(Symbol{id, i - 1, -1, len});
  };
  if (options_.byte_level) {
    for (size_t i = 0; i < word.size(); ++i) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(word[i])];
      // Load checked that every byte has a token.
      KR_CHECK(id >= 0);
      add(id, 1);
    }
  } else {
    // tokenizers' BPE::merge_word: each character is a token, or its bytes
    // as <0xNN> tokens, or (a run of them fused) the unknown token. Like
    // there, a pending unknown token is added after fallback bytes that
    // follow it, and characters with no token at all are dropped.
    int32_t unk_len = 0;  // bytes of the pending unknown token (0: none)
    for (size_t i = 0; i < word.size();) {
      size_t len = 0;
      const uint32_t cp = unicode::decode_utf8(word, i, &len);
      const std::string_view ch = word.substr(i, len);
      i += len;
      const int32_t id = char_id(ch, cp);
      if (id >= 0) {
        if (unk_len > 0) add(*options_.unk_id, static_cast<uint32_t>(unk_len));
        unk_len = 0;
        add(id, static_cast<uint32_t>(len));
        continue;
      }
      if (options_.byte_fallback) {
        bool all = true;
        for (char b : ch) all = all && fallback_ids_[static_cast<uint8_t>(b)] >= 0;
        if (all) {
          for (char b : ch) add(fallback_ids_[static_cast<uint8_t>(b)], 1);
          continue;
        }
      }
      if (options_.unk_id) {
        if (unk_len > 0 && !options_.fuse_unk) {
          add(*options_.unk_id, static_cast<uint32_t>(unk_len));
          unk_len = 0;
        }
        unk_len += static_cast<int32_t>(len);
      }
    }
    if (unk_len > 0) add(*options_.unk_id, static_cast<uint32_t>(unk_len));
    if (syms.empty()) return;
  }
  const auto push_candidate = [&](int32_t pos) {
    const int32_t next = syms[pos].next;
    if (next < 0) return;
    if (const PairEntry* e = find_pair(syms[pos].id, syms[next].id)) {
      heap.push_back(Candidate{e->rank, pos, syms[pos].id, syms[next].id, e->merged});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) push_candidate(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = syms[c.pos];
    // Stale if either side changed since the candidate was queued (a
    // symbol's id identifies its bytes, so equal ids mean unchanged).
    if (left.bytes == 0 || left.id != c.left || left.next < 0) continue;
    Symbol& right = syms[left.next];
    if (right.id != c.right) continue;
    left.id = c.merged;
    left.bytes += right.bytes;
    right.bytes = 0;
    left.next = right.next;
    if (left.next >= 0) syms[left.next].prev = c.pos;
    if (left.prev >= 0) push_candidate(left.prev);
    push_candidate(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) ids->push_back(syms[i].id);
  release_if_large(syms);
  release_if_large(heap);
}

}  // namespace kr
