// Byte-level BPE model: maps one pre-tokenized piece (raw bytes) to token ids
// by applying merges in rank order. Built once at load; afterwards immutable,
// so any thread may call encode_word() (scratch space is thread-local).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kr {

// Transparent hash so that maps keyed by std::string accept string_view lookups.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // vocab_bytes: raw bytes of each vocabulary token → id. Every single byte
  // must be in the vocabulary (byte-level BPE has no unknown token).
  // merges: (left id, right id) in rank order (rank = index), each with the
  // id of the merged token.
  struct Merge {
    int32_t left, right, merged;
  };
  BpeModel(StringIdMap vocab_bytes, const std::vector<Merge>& merges, bool ignore_merges);

  // Appends the ids of `word` (raw bytes, non-empty) to *ids.
  void encode_word(std::string_view word, std::vector<int32_t>* ids) const;
  std::optional<int32_t> byte_token(uint8_t b) const;

  // Id of the token whose raw bytes are `bytes`.
  const StringIdMap& vocab_bytes() const { return vocab_bytes_; }

 private:
  struct PairEntry {
    uint64_t key;  // left << 32 | right; kEmpty if unused
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  const PairEntry* find_pair(int32_t left, int32_t right) const;

  StringIdMap vocab_bytes_;
  int32_t byte_ids_[256];
  std::vector<PairEntry> pairs_;  // open addressing, power-of-two size
  uint64_t pair_mask_ = 0;
  bool ignore_merges_ = false;
};

}  // namespace kr
