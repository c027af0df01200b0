// Byte-level BPE model: maps one pre-tokenized piece (raw bytes) to token ids
// by applying merges in rank order. Built once at load; afterwards immutable,
// so any thread may call encode_word() (scratch space is thread-local).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kr {

// Hash index from strings to ids whose strings live elsewhere (keys[id]):
// no string copies or node allocations, so building 150k entries is cheap.
class StringIdTable {
 public:
  StringIdTable() = default;
  // keys must outlive the table and not change for the indexed ids.
  explicit StringIdTable(const std::vector<std::string>* keys, size_t expected_count);
  // Adds id (keys[id]); a key already present keeps its first id.
  void insert(int32_t id);
  std::optional<int32_t> find(std::string_view key) const;

 private:
  const std::vector<std::string>* keys_ = nullptr;
  std::vector<int32_t> slots_;  // -1 = empty; open addressing, power-of-two size
  size_t mask_ = 0;
};

class BpeModel {
 public:
  // Every single byte must be in the vocabulary (byte-level BPE has no
  // unknown token): check byte_token() after construction.
  // merges: (left id, right id) in rank order (rank = index), each with the
  // id of the merged token.
  struct Merge {
    int32_t left, right, merged;
  };
  // id_bytes: raw bytes by id (must outlive the model); vocab_ids: the ids of
  // the model's vocabulary (added tokens are not part of it).
  BpeModel() = default;
  BpeModel(const std::vector<std::string>* id_bytes, const std::vector<int32_t>& vocab_ids,
           const std::vector<Merge>& merges, bool ignore_merges);

  // Appends the ids of `word` (raw bytes, non-empty) to *ids. Short words
  // are remembered in a small per-thread cache (words repeat a lot in text).
  void encode_word(std::string_view word, std::vector<int32_t>* ids) const;
  std::optional<int32_t> byte_token(uint8_t b) const;


 private:
  struct PairEntry {
    uint64_t key;  // left << 32 | right; kEmpty if unused
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  const PairEntry* find_pair(int32_t left, int32_t right) const;
  void merge_word(std::string_view word, std::vector<int32_t>* ids) const;

  StringIdTable vocab_bytes_;
  int32_t byte_ids_[256] = {};
  std::vector<PairEntry> pairs_;  // open addressing, power-of-two size
  uint64_t pair_mask_ = 0;
  bool ignore_merges_ = false;
  // Identifies this model in the per-thread word cache (never reused, unlike
  // an address); 0 for a default-constructed model.
  uint64_t cache_key_ = 0;
};

}  // namespace kr
