// BlockHash: the name of a full KV block for the prefix cache. A block's hash
// is SipHash-2-4-128 (base/siphash.h), keyed per process, over its parent
// block's hash and its block_size token ids; the first block's parent is the
// sequence's root hash, computed from its extra keys: the request's cache_salt
// (and, later, a LoRA adapter). So a hash names the whole prefix up to the end
// of its block, and requests with different salts never share a block.
//
// Why 128 bits and a keyed PRF: a collision would hand one request another
// prefix's KV, silently. With 128 bits the chance that any two of 2^40 blocks
// ever collide is below 2^-48, so blocks are matched by hash alone (no token
// comparison). The key is random per process, so a client cannot craft prompts
// whose hashes collide (plain 64-bit or MurmurHash-style hashes have known
// seed-independent collisions), and hashes never leave the process.
//
// Threading: a BlockHasher is immutable after construction; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/siphash.h"

namespace kr {

using BlockHash = Hash128;

struct BlockHashHash {
  size_t operator()(const BlockHash& h) const { return static_cast<size_t>(h.lo); }  // already uniform
};

// What besides the tokens decides whether two prefixes may share KV.
struct BlockHashExtras {
  std::string_view cache_salt;  // "" = none
  int64_t adapter_id = 0;       // 0 = the base model (reserved for LoRA adapters)
};

class BlockHasher {
 public:
  explicit BlockHasher(SipKey key) : key_(key) {}
  // A key from std::random_device: the server's.
  static BlockHasher with_random_key();

  BlockHash root(const BlockHashExtras& extras) const;
  BlockHash block(const BlockHash& parent, std::span<const int32_t> tokens) const;
  // Appends to `hashes` the hashes of the full blocks of `tokens` it does not
  // cover yet (hashes[i] names tokens [0, (i + 1) * block_size)).
  void extend(std::span<const int32_t> tokens, int32_t block_size, const BlockHash& root,
              std::vector<BlockHash>* hashes) const;

 private:
  SipKey key_;
};

}  // namespace kr
