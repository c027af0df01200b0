// Event counts per wall-clock second in a ring of atomics, for rates over the
// last few seconds (up to kMaxWindowS).
//
// Each slot packs (second tag, count) into one 64-bit word so that moving a
// slot on to a new second and adding to it is one compare-and-swap: no lock,
// and no lost update when two writers race across a second boundary. The tag
// keeps the low kTagBits of the second; a slot untouched for 2^kTagBits
// seconds (about 194 days) could alias, which a rate display can live with.
//
// Threading: add() from any thread (lock-free, no allocation); sum_last()
// from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace kr {

class PerSecondCounter {
 public:
  static constexpr int kSlots = 64;
  static constexpr int kMaxWindowS = kSlots - 2;  // never read a slot being recycled
  static constexpr int kTagBits = 24;
  static constexpr int kCountBits = 64 - kTagBits;  // up to ~1e12 events per second

  PerSecondCounter();
  void add(int64_t now_ns, uint64_t n);
  // Events in the seconds (now_s - window_s, now_s], the current partial second
  // included. window_s in [1, kMaxWindowS].
  uint64_t sum_last(int64_t now_ns, int window_s) const;

 private:
  std::array<std::atomic<uint64_t>, kSlots> slots_;
};

// Seconds covered by sum_last(now_ns, window_s) for a series that started at
// start_ns: the complete seconds plus the current partial one, no more than the
// time since start, and at least 1 s so that a rate in the first moments after
// start is not divided by ~0.
double rate_span_s(int64_t start_ns, int64_t now_ns, int window_s);

}  // namespace kr
