// SipHash-2-4 with a 128-bit output: a keyed pseudo-random function (Aumasson and
// Bernstein, "SipHash: a fast short-input PRF", 2012; the reference is
// github.com/veorq/SipHash). Without the key, outputs cannot be predicted or
// steered, so inputs chosen by clients (prompts) cannot be crafted to collide.
// The prefix cache names KV blocks with it (engine/block_hash.h).
//
// Threading: pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kr {

struct SipKey {
  uint64_t k0 = 0, k1 = 0;  // the 16 key bytes, read little-endian
};

struct Hash128 {
  uint64_t lo = 0, hi = 0;  // the output's bytes 0-7 and 8-15, read little-endian
  bool operator==(const Hash128&) const = default;
};

// SipHash-2-4-128 of `bytes` bytes at `data` under `key`.
Hash128 siphash128(const SipKey& key, const void* data, size_t bytes);

}  // namespace kr
