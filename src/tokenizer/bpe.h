// BPE model (Hugging Face tokenizers' models/bpe): maps one pre-tokenized
// piece to token ids by applying merges in rank order (lowest rank first,
// then leftmost), starting from
//  - bytes (byte-level BPE: GPT-2, Llama 3, Qwen, tekken): the vocabulary is
//    keyed by raw bytes and every byte has a token; or
//  - Unicode characters (SentencePiece-style BPE: Llama 2, Mistral v0.1-v0.3,
//    Gemma): a character missing from the vocabulary becomes its UTF-8 bytes
//    as <0xNN> tokens (byte_fallback), else the unknown token (consecutive
//    ones fused into one with fuse_unk), else nothing (as Hugging Face drops it).
// Built once at load; afterwards immutable, so any thread may call
// encode_word() (scratch space is thread-local).
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
  // merges: (left id, right id) in rank order (rank = index), each with the
  // id of the merged token.
  struct Merge {
    int32_t left, right, merged;
  };
  struct Options {
    bool byte_level = true;     // symbols are bytes (else Unicode characters)
    bool ignore_merges = false; // a word that is itself in the vocabulary is taken whole
    bool byte_fallback = false; // characters only: unknown characters become <0xNN> tokens
    std::optional<int32_t> unk_id;  // characters only
    bool fuse_unk = false;
    // Character mode: cut words before "▁" where no merge can cross (an
    // exact shortcut; off only to test it against the uncut path).
    bool split_at_space = true;
  };
  // keys: the vocabulary strings by id (must outlive the model): raw bytes in
  // byte-level mode (every single byte must be there: check byte_token()),
  // else the vocabulary's own strings. vocab_ids: the ids of the model's
  // vocabulary (added tokens are not part of it).
  BpeModel() = default;
  BpeModel(const std::vector<std::string>* keys, const std::vector<int32_t>& vocab_ids,
           const std::vector<Merge>& merges, const Options& options);

  // Appends the ids of `word` (non-empty; raw bytes, or valid UTF-8 in
  // character mode) to *ids. Short words are remembered in a small per-thread
  // cache (words repeat a lot in text).
  void encode_word(std::string_view word, std::vector<int32_t>* ids) const;
  std::optional<int32_t> byte_token(uint8_t b) const;   // byte-level: the token of byte b
  std::optional<int32_t> fallback_token(uint8_t b) const;  // character mode: <0xNN>


 private:
  struct PairEntry {
    uint64_t key;  // left << 32 | right; kEmpty if unused
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  const PairEntry* find_pair(int32_t left, int32_t right) const;
  void merge_word(std::string_view word, std::vector<int32_t>* ids) const;
  void encode_cached(std::string_view word, std::vector<int32_t>* ids) const;  // through the word cache
  // Character mode: the id of the one-character string s (code point cp), or -1.
  int32_t char_id(std::string_view s, uint32_t cp) const;

  StringIdTable vocab_bytes_;
  Options options_;
  int32_t byte_ids_[256] = {};      // byte-level: single-byte tokens
  int32_t fallback_ids_[256] = {};  // character mode: <0xNN> tokens
  static constexpr uint32_t kSpaceMark = 0x2581;  // SentencePiece's "▁"
  bool split_at_space_ = false;       // character mode with "▁" in the vocabulary
  std::vector<uint32_t> joins_space_; // sorted: characters that precede "▁" inside some vocabulary string
  bool unknown_joins_space_ = false;  // the symbol string of an unknown character can precede "▁" in one
  std::vector<int32_t> bmp_char_ids_;  // character mode: ids of one-character tokens below U+10000 (-1: none)
  std::vector<PairEntry> pairs_;  // open addressing, power-of-two size
  uint64_t pair_mask_ = 0;
  // Identifies this model in the per-thread word cache (never reused, unlike
  // an address); 0 for a default-constructed model.
  uint64_t cache_key_ = 0;
};

}  // namespace kr
