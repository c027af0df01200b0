// TokenVocabulary: a model's tokens as byte strings, laid out as flat tries
// (depth-first order, each node knowing where its subtree ends) for the token
// mask computations, plus a cache of "region walks" shared by every grammar
// compiled for this vocabulary.
//
// The caller passes the bytes of every token id (no dependency on the
// tokenizer module): "" for ids that must never be produced under a grammar
// (unused ids, control tokens). `eos_ids` are allowed exactly where the grammar
// can end. `special_ids` are never matched as bytes; a grammar can ask for one
// as a token terminal (GBNF `<[id]>` or `<|text|>`), by id or by these bytes.
//
// Region walk: a small deterministic byte automaton (a grammar node and the
// states it reaches without ambiguity, see compiled_grammar.cc) run over the
// whole trie: which tokens stay inside it, and at which trie nodes tokens
// leave it. Many grammar nodes (every JSON string body of every grammar, say)
// have the same region, so the walk, the expensive part of a token mask, is
// done once per region.
//
// Threading: immutable after create(), except the region cache, which is
// internally locked; any number of threads may use one vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "grammar/token_set.h"

namespace kr::grammar {

// A trie over byte strings in depth-first order; node 0 is the root.
class TokenTrie {
 public:
  struct Node {
    uint32_t end;    // first node after this node's subtree
    int32_t token;   // a token ending here, -1 if none (more: tokens_begin/end)
    uint16_t depth;  // bytes from the root
    uint8_t byte;    // the byte leading here
    uint8_t more;    // more than one token ends here
  };
  // `ids` sorted by their bytes in `tokens`.
  void build(const std::vector<std::string>& tokens, const std::vector<int32_t>& ids);
  uint32_t size() const { return static_cast<uint32_t>(nodes_.size()); }
  const Node* nodes() const { return nodes_.data(); }
  const Node& node(uint32_t n) const { return nodes_[n]; }
  const int32_t* tokens_begin(uint32_t n) const { return tokens_.data() + tok_begin_[n]; }
  const int32_t* tokens_end(uint32_t n) const { return tokens_.data() + tok_begin_[n + 1]; }
  uint32_t max_depth() const { return max_depth_; }

 private:
  std::vector<Node> nodes_;
  std::vector<uint32_t> tok_begin_;
  std::vector<int32_t> tokens_;
  uint32_t max_depth_ = 0;
};

// A deterministic automaton over local byte classes. table[q * num_classes + c]
// is the next local state, kExit (the byte leaves the region: the caller
// continues there with the full grammar) or kDead (no continuation at all).
struct RegionKey {
  static constexpr uint16_t kExit = 0xFFFE;
  static constexpr uint16_t kDead = 0xFFFF;
  uint8_t byte_class[256] = {};
  uint32_t num_classes = 0;
  std::vector<uint16_t> table;
  uint64_t hash = 0;

  void compute_hash();
  bool operator==(const RegionKey& o) const;
};

struct RegionWalk {
  TokenSet inside;  // tokens consumed entirely inside the region (from local state 0)
  // Trie nodes whose byte leaves the region, with the local state before that
  // byte; every token in such a node's subtree continues outside the region.
  std::vector<uint32_t> exit_nodes;
  std::vector<uint16_t> exit_states;
  size_t memory_bytes() const;
};

class TokenVocabulary {
 public:
  static StatusOr<std::shared_ptr<const TokenVocabulary>> create(std::vector<std::string> token_bytes,
                                                                 std::vector<int32_t> eos_ids,
                                                                 std::vector<int32_t> special_ids = {});

  size_t size() const { return tokens_.size(); }
  size_t mask_words() const { return (tokens_.size() + 31) / 32; }
  const std::string& token(int32_t id) const { return tokens_[id]; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  bool is_eos(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < size() && kind_[id] == kEos; }
  bool is_special(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < size() && kind_[id] == kSpecial; }
  // Token whose bytes are `text` among the special tokens (-1 if none).
  int32_t find_special(std::string_view text) const;
  uint32_t max_token_length() const { return max_len_; }

  // The tokens matched as bytes (not EOS, special or empty).
  const TokenTrie& trie() const { return trie_; }

  // The region walk for `key`, computed on first use and cached.
  std::shared_ptr<const RegionWalk> region_walk(const RegionKey& key) const;
  struct CacheStats {
    size_t entries = 0;
    size_t bytes = 0;
    size_t hits = 0;
    size_t misses = 0;
  };
  CacheStats region_cache_stats() const;

 private:
  TokenVocabulary() = default;
  RegionWalk walk(const RegionKey& key) const;

  enum Kind : uint8_t { kNormal, kEmpty, kEos, kSpecial };
  std::vector<std::string> tokens_;
  std::vector<uint8_t> kind_;
  std::vector<int32_t> eos_ids_;
  std::vector<int32_t> special_ids_;
  TokenTrie trie_;
  uint32_t max_len_ = 0;

  static constexpr size_t kMaxCacheBytes = size_t{64} << 20;
  mutable std::mutex mu_;
  mutable std::unordered_map<uint64_t, std::vector<std::pair<RegionKey, std::shared_ptr<const RegionWalk>>>> cache_;
  mutable CacheStats stats_;
};

}  // namespace kr::grammar
