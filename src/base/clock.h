// Clocks. Engine and scheduler code takes a Clock& so tests can use a fake one.
// now_ns() must be thread-safe in every implementation.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace kr {

inline int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;
};

class SteadyClock final : public Clock {
 public:
  int64_t now_ns() const override { return steady_now_ns(); }
};

// Test clock: time moves only when advanced.
class FakeClock final : public Clock {
 public:
  int64_t now_ns() const override { return t_ns_.load(std::memory_order_relaxed); }
  void advance_ns(int64_t d) { t_ns_.fetch_add(d, std::memory_order_relaxed); }
  void advance_ms(double ms) { advance_ns(static_cast<int64_t>(ms * 1e6)); }

 private:
  std::atomic<int64_t> t_ns_{1'000'000'000};
};

}  // namespace kr
