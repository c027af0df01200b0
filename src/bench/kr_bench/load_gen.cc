#include "bench/kr_bench/load_gen.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <thread>

#include "base/check.h"
#include "base/clock.h"
#include "bench/kr_bench/progress.h"

namespace kr::bench {

std::vector<double> poisson_arrivals_s(int n, double rate_per_s, uint64_t seed) {
  std::vector<double> out(static_cast<size_t>(std::max(n, 0)), 0.0);
  if (rate_per_s <= 0) return out;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate_per_s);
  double t = 0;
  for (int i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = t;
    t += gap(rng);  // the first request goes at once, as in vLLM
  }
  return out;
}

LoadResult run_load(const Endpoint& ep, const LoadOptions& opts,
                    const std::function<ChatRequest(int index)>& make_request) {
  KR_CHECK(opts.concurrency >= 1 && opts.concurrency <= 256);
  LoadResult out;
  out.results.resize(static_cast<size_t>(std::max(opts.requests, 0)));
  const std::vector<double> arrivals = poisson_arrivals_s(opts.requests, opts.rate_per_s, opts.arrival_seed);
  std::unique_ptr<Progress> progress;
  if (!opts.progress_label.empty()) progress = std::make_unique<Progress>(opts.progress_label, opts.requests);
  std::atomic<int> next{0};
  std::atomic<int64_t> last_end_ns{0};
  out.start_ns = steady_now_ns();

  const auto client = [&] {
    for (;;) {
      const int i = next.fetch_add(1);
      if (i >= opts.requests) return;
      const int64_t due_ns = out.start_ns + static_cast<int64_t>(arrivals[static_cast<size_t>(i)] * 1e9);
      if (const int64_t wait_ns = due_ns - steady_now_ns(); wait_ns > 0)
        std::this_thread::sleep_for(std::chrono::nanoseconds(wait_ns));
      RequestResult r = run_chat_request(ep, make_request(i), opts.timeout_ms);
      const int64_t end_ns = steady_now_ns();
      for (int64_t prev = last_end_ns.load(); end_ns > prev && !last_end_ns.compare_exchange_weak(prev, end_ns);) {
      }
      if (progress) progress->tick(r.ok);
      out.results[static_cast<size_t>(i)] = std::move(r);  // each index written by one thread
    }
  };
  const int threads = std::min(opts.concurrency, std::max(opts.requests, 1));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) pool.emplace_back(client);
  for (std::thread& t : pool) t.join();
  out.duration_s = static_cast<double>(std::max(last_end_ns.load(), out.start_ns) - out.start_ns) / 1e9;
  return out;
}

}  // namespace kr::bench
