// Micro-benchmark of the recording path: ns per record call with 1 and 4
// writer threads, and the cost of one scrape. Not a test; run by hand:
//   cmake --build BUILD --target metrics_bench && BUILD/bin/metrics_bench
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "metrics/metrics.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Calls per thread of the engine's per-token mix: one inter-token record, and
// every 16th call a step record.
double ns_per_call(kr::Metrics& m, int threads, int calls_per_thread) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&m, calls_per_thread] {
      for (int i = 0; i < calls_per_thread; ++i) {
        if (i % 16 == 0) {
          m.record_step(8, 8, 0.002);
        } else {
          m.record_inter_token(0.015);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  return seconds_since(t0) * 1e9 / calls_per_thread;  // wall ns per call, per thread
}

}  // namespace

int main() {
  kr::SteadyClock clock;
  kr::Metrics m(&clock, kr::MetricsOptions{.model_name = "bench", .vllm_names = true});
  constexpr int kCalls = 2'000'000;
  std::printf("1 writer : %.1f ns/call\n", ns_per_call(m, 1, kCalls));
  std::printf("4 writers: %.1f ns/call (wall, per thread; all share the same atomics)\n",
              ns_per_call(m, 4, kCalls));
  const auto t0 = std::chrono::steady_clock::now();
  size_t bytes = 0;
  constexpr int kScrapes = 200;
  for (int i = 0; i < kScrapes; ++i) bytes = m.render_prometheus().size();
  std::printf("scrape   : %.1f us, %zu bytes\n", seconds_since(t0) * 1e6 / kScrapes, bytes);
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < kScrapes; ++i) (void)m.stats();
  std::printf("stats()  : %.1f us\n", seconds_since(t1) * 1e6 / kScrapes);
  return 0;
}
