#include "metrics/rate_window.h"

#include <algorithm>

#include "base/check.h"

namespace kr {
namespace {

constexpr int64_t kNsPerS = 1'000'000'000;
constexpr uint64_t kCountMask = (uint64_t{1} << PerSecondCounter::kCountBits) - 1;
constexpr uint64_t kTagMask = (uint64_t{1} << PerSecondCounter::kTagBits) - 1;

// Floor division so that times before the epoch of the clock still map to
// distinct seconds.
int64_t second_of(int64_t ns) { return ns >= 0 ? ns / kNsPerS : -((-ns + kNsPerS - 1) / kNsPerS); }
uint64_t tag_of(int64_t s) { return static_cast<uint64_t>(s) & kTagMask; }
size_t slot_of(int64_t s) {
  return static_cast<size_t>(static_cast<uint64_t>(s) % PerSecondCounter::kSlots);
}

}  // namespace

PerSecondCounter::PerSecondCounter() {
  // Count 0 under tag 0: reads as zero events whichever second it matches.
  for (auto& s : slots_) s.store(0, std::memory_order_relaxed);
}

void PerSecondCounter::add(int64_t now_ns, uint64_t n) {
  const int64_t sec = second_of(now_ns);
  const uint64_t tag = tag_of(sec);
  std::atomic<uint64_t>& slot = slots_[slot_of(sec)];
  uint64_t cur = slot.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t count = (cur >> kCountBits) == tag ? (cur & kCountMask) : 0;
    const uint64_t next = (tag << kCountBits) | ((count + n) & kCountMask);
    if (slot.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return;
  }
}

uint64_t PerSecondCounter::sum_last(int64_t now_ns, int window_s) const {
  KR_CHECK(window_s >= 1 && window_s <= kMaxWindowS);
  const int64_t now_s = second_of(now_ns);
  uint64_t total = 0;
  for (int64_t s = now_s - window_s + 1; s <= now_s; ++s) {
    const uint64_t v = slots_[slot_of(s)].load(std::memory_order_relaxed);
    if ((v >> kCountBits) == tag_of(s)) total += v & kCountMask;
  }
  return total;
}

double rate_span_s(int64_t start_ns, int64_t now_ns, int window_s) {
  const int64_t now_s = second_of(now_ns);
  const double partial_s = static_cast<double>(now_ns - now_s * kNsPerS) / 1e9;
  const double since_start_s = static_cast<double>(now_ns - start_ns) / 1e9;
  const double span_s = std::min(static_cast<double>(window_s - 1) + partial_s, since_start_s);
  return std::max(span_s, 1.0);
}

}  // namespace kr
