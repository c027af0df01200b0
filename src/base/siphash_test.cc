#include "base/siphash.h"

#include <gtest/gtest.h>

#include <vector>

namespace kr {
namespace {

// The reference test vectors (github.com/veorq/SipHash, vectors.h, vectors_sip128):
// key 00 01 .. 0f, message i = the bytes 00 01 .. (i-1).
Hash128 expected(const unsigned char (&b)[16]) {
  Hash128 h;
  for (int i = 7; i >= 0; --i) h.lo = (h.lo << 8) | b[i];
  for (int i = 15; i >= 8; --i) h.hi = (h.hi << 8) | b[i];
  return h;
}

TEST(SipHash128, ReferenceVectors) {
  const SipKey key{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
  std::vector<unsigned char> msg(64);
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<unsigned char>(i);
  const unsigned char v0[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
  const unsigned char v1[16] = {0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44,
                                0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45};
  const unsigned char v7[16] = {0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53,
                                0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82, 0x39};
  const unsigned char v8[16] = {0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61,
                                0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97, 0xb4};
  const unsigned char v15[16] = {0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11,
                                 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3, 0xd9};
  const unsigned char v63[16] = {0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a,
                                 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd, 0x7c};
  EXPECT_EQ(siphash128(key, msg.data(), 0), expected(v0));
  EXPECT_EQ(siphash128(key, msg.data(), 1), expected(v1));
  EXPECT_EQ(siphash128(key, msg.data(), 7), expected(v7));
  EXPECT_EQ(siphash128(key, msg.data(), 8), expected(v8));
  EXPECT_EQ(siphash128(key, msg.data(), 15), expected(v15));
  EXPECT_EQ(siphash128(key, msg.data(), 63), expected(v63));
}

TEST(SipHash128, KeyMatters) {
  const int32_t tokens[4] = {1, 2, 3, 4};
  EXPECT_NE(siphash128(SipKey{1, 2}, tokens, sizeof tokens), siphash128(SipKey{1, 3}, tokens, sizeof tokens));
}

}  // namespace
}  // namespace kr
