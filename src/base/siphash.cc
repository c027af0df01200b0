// SipHash-2-4-128, written from the paper's description (section 2 and the
// 128-bit variant's note): initialisation from the key and the four constants,
// two SipRounds per 8-byte word, a final word carrying the length, then four
// rounds per output half.
#include "base/siphash.h"

#include <cstring>

namespace kr {
namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct State {
  uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
  void absorb(uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  uint64_t squeeze() {
    round();
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

inline uint64_t load_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Hash128 siphash128(const SipKey& key, const void* data, size_t bytes) {
  State s{key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull, key.k0 ^ 0x6c7967656e657261ull,
          key.k1 ^ 0x7465646279746573ull};
  s.v1 ^= 0xee;  // the 128-bit variant
  const auto* p = static_cast<const unsigned char*>(data);
  const size_t whole = bytes / 8 * 8;
  for (size_t i = 0; i < whole; i += 8) s.absorb(load_le64(p + i));
  unsigned char last[8] = {};
  std::memcpy(last, p + whole, bytes - whole);
  last[7] = static_cast<unsigned char>(bytes & 0xff);
  s.absorb(load_le64(last));
  s.v2 ^= 0xee;
  Hash128 h;
  h.lo = s.squeeze();
  s.v1 ^= 0xdd;
  h.hi = s.squeeze();
  return h;
}

}  // namespace kr
