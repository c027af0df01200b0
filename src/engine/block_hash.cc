#include "engine/block_hash.h"

#include <cstring>
#include <random>

#include "base/check.h"

namespace kr {
namespace {

void put_le64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

BlockHasher BlockHasher::with_random_key() {
  std::random_device rd;
  auto word = [&rd] { return (static_cast<uint64_t>(rd()) << 32) ^ rd(); };
  return BlockHasher(SipKey{word(), word()});
}

BlockHash BlockHasher::root(const BlockHashExtras& extras) const {
  // "kr-root\0", the adapter id, the salt's length and bytes.
  std::vector<unsigned char> buf(24 + extras.cache_salt.size());
  std::memcpy(buf.data(), "kr-root", 8);
  put_le64(buf.data() + 8, static_cast<uint64_t>(extras.adapter_id));
  put_le64(buf.data() + 16, extras.cache_salt.size());
  if (!extras.cache_salt.empty()) std::memcpy(buf.data() + 24, extras.cache_salt.data(), extras.cache_salt.size());
  return siphash128(key_, buf.data(), buf.size());
}

BlockHash BlockHasher::block(const BlockHash& parent, std::span<const int32_t> tokens) const {
  // The parent's 16 bytes, then each token id as 4 little-endian bytes.
  unsigned char stack_buf[16 + 4 * 64];
  std::vector<unsigned char> heap_buf;
  const size_t bytes = 16 + 4 * tokens.size();
  unsigned char* p = stack_buf;
  if (bytes > sizeof stack_buf) {
    heap_buf.resize(bytes);
    p = heap_buf.data();
  }
  put_le64(p, parent.lo);
  put_le64(p + 8, parent.hi);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto t = static_cast<uint32_t>(tokens[i]);
    for (int b = 0; b < 4; ++b) p[16 + 4 * i + static_cast<size_t>(b)] = static_cast<unsigned char>(t >> (8 * b));
  }
  return siphash128(key_, p, bytes);
}

void BlockHasher::extend(std::span<const int32_t> tokens, int32_t block_size, const BlockHash& root,
                         std::vector<BlockHash>* hashes) const {
  KR_CHECK(block_size > 0);
  const size_t full = tokens.size() / static_cast<size_t>(block_size);
  while (hashes->size() < full) {
    const size_t i = hashes->size();
    const BlockHash& parent = i == 0 ? root : (*hashes)[i - 1];
    hashes->push_back(block(parent, tokens.subspan(i * static_cast<size_t>(block_size), static_cast<size_t>(block_size))));
  }
}

}  // namespace kr
