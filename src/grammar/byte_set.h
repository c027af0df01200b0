// ByteSet: a set of byte values (256 bits), the terminal alphabet of the grammar
// automata. Value type; any thread.
#pragma once

#include <cstdint>

namespace kr::grammar {

struct ByteSet {
  uint64_t w[4] = {0, 0, 0, 0};

  static ByteSet all() {
    ByteSet s;
    for (auto& x : s.w) x = ~uint64_t{0};
    return s;
  }
  static ByteSet of(uint8_t b) {
    ByteSet s;
    s.set(b);
    return s;
  }
  static ByteSet range(uint8_t lo, uint8_t hi) {
    ByteSet s;
    s.set_range(lo, hi);
    return s;
  }
  void set(uint8_t b) { w[b >> 6] |= uint64_t{1} << (b & 63); }
  void reset(uint8_t b) { w[b >> 6] &= ~(uint64_t{1} << (b & 63)); }
  bool test(uint8_t b) const { return (w[b >> 6] >> (b & 63)) & 1; }
  void set_range(unsigned lo, unsigned hi) {
    for (unsigned b = lo; b <= hi && b < 256; ++b) set(static_cast<uint8_t>(b));
  }
  bool empty() const { return (w[0] | w[1] | w[2] | w[3]) == 0; }
  bool intersects(const ByteSet& o) const {
    return ((w[0] & o.w[0]) | (w[1] & o.w[1]) | (w[2] & o.w[2]) | (w[3] & o.w[3])) != 0;
  }
  int count() const {
    return __builtin_popcountll(w[0]) + __builtin_popcountll(w[1]) + __builtin_popcountll(w[2]) +
           __builtin_popcountll(w[3]);
  }
  ByteSet& operator|=(const ByteSet& o) {
    for (int i = 0; i < 4; ++i) w[i] |= o.w[i];
    return *this;
  }
  ByteSet& operator&=(const ByteSet& o) {
    for (int i = 0; i < 4; ++i) w[i] &= o.w[i];
    return *this;
  }
  ByteSet operator~() const {
    ByteSet s;
    for (int i = 0; i < 4; ++i) s.w[i] = ~w[i];
    return s;
  }
  friend ByteSet operator|(ByteSet a, const ByteSet& b) { return a |= b; }
  friend ByteSet operator&(ByteSet a, const ByteSet& b) { return a &= b; }
  friend bool operator==(const ByteSet& a, const ByteSet& b) {
    return a.w[0] == b.w[0] && a.w[1] == b.w[1] && a.w[2] == b.w[2] && a.w[3] == b.w[3];
  }
  uint64_t hash() const {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (auto x : w) h = (h ^ x) * 0x100000001b3ULL + (h >> 29);
    return h;
  }
};

}  // namespace kr::grammar
