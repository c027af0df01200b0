// Reproducible test data for the attention benchmark and checks (attn_bench.cc,
// backend_ops_long.cc): element i of stream `seed` is a splitmix64 draw, uniform
// in [-scale, scale) and rounded to bf16, so any slice can be regenerated alone;
// large buffers are filled on a few host threads. Also the wall clock they time with.
//
// Threading: any thread (pure functions; parallel_ranges joins its own threads).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "backend/dtype_convert.h"

namespace kr::bench_random {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Element i of stream `seed`: uniform in [-scale, scale), rounded to bf16.
inline uint16_t value_bf16(uint64_t seed, uint64_t i, float scale) {
  const double u = static_cast<double>(splitmix(seed * 0x100000001B3ull + i) >> 11) * 0x1.0p-53;
  return f32_to_bf16(static_cast<float>((2.0 * u - 1.0) * scale));
}

// Runs fn(begin, end) over [0, n) on a few threads.
template <typename F>
void parallel_ranges(size_t n, F fn) {
  const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 16u);
  std::vector<std::thread> pool;
  const size_t per = (n + threads - 1) / threads;
  for (unsigned t = 0; t < threads; ++t) {
    const size_t b = std::min(n, t * per), e = std::min(n, b + per);
    if (b < e) pool.emplace_back([=] { fn(b, e); });
  }
  for (std::thread& th : pool) th.join();
}

// Elements [0, n) of stream `seed`.
inline std::vector<uint16_t> random_bf16(size_t n, uint64_t seed, float scale) {
  std::vector<uint16_t> v(n);
  parallel_ranges(n, [&v, seed, scale](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) v[i] = value_bf16(seed, i, scale);
  });
  return v;
}

}  // namespace kr::bench_random
