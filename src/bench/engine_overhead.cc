// kr-engine-overhead: the engine's own host time per token, with the GPU
// scheduler on and off, and nothing else. A null runner answers every step at
// once (or after --step-us of busy waiting, to stand in for a device), so what
// is measured is the engine thread (inbox, scheduler, step bookkeeping,
// metrics, events) and the hand-off of each token event to a waiting client
// thread. The workload is the 50-questions shape: sequential requests of
// --tokens tokens each.
//
// Rounds alternate on and off (so drift hits both alike); the report gives per
// configuration the mean time per token and per request (submit -> first
// token), and the on - off difference per round with a 95% confidence interval
// (normal approximation over the rounds). --out writes the same as JSON.
//
//   kr-engine-overhead [--rounds 30] [--requests 50] [--tokens 50] [--step-us 0] [--out FILE.json]
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/parse_number.h"
#include "engine/engine.h"
#include "metrics/metrics.h"

namespace {

struct Args {
  int rounds = 30, requests = 50, tokens = 50;
  int64_t step_ns = 0;
  std::string out;
};

class NullRunner final : public kr::ModelRunner {
 public:
  explicit NullRunner(int64_t step_ns) : step_ns_(step_ns) {}
  int32_t block_size() const override { return 16; }
  int32_t num_kv_blocks() const override { return 4096; }
  int32_t max_model_len() const override { return 65536; }
  std::span<const int32_t> eos_ids() const override { return eos_; }
  kr::Status step(std::span<const kr::SeqStep> seqs, std::vector<kr::SampledToken>* out) override {
    out->clear();
    if (step_ns_ > 0) {
      const int64_t until = kr::steady_now_ns() + step_ns_;
      while (kr::steady_now_ns() < until) {
      }
    }
    for (const kr::SeqStep& s : seqs) {
      if (!s.sample) continue;
      kr::SampledToken t;
      t.id = 42;
      t.logprob = -1.0f;
      out->push_back(std::move(t));
    }
    return kr::Status::Ok();
  }

 private:
  int64_t step_ns_;
  std::vector<int32_t> eos_{2};
};

struct RoundResult {
  double ns_per_token = 0;
  double ttft_ns = 0;  // mean submit -> first token event
};

RoundResult run_round(NullRunner* runner, bool scheduler_on, const Args& a) {
  kr::EngineConfig config;
  config.scheduler_on = scheduler_on;
  kr::SteadyClock clock;
  kr::Metrics metrics(&clock, kr::MetricsOptions{});
  kr::Engine engine(runner, config, &clock, &metrics);
  engine.start();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int64_t first_ns = 0;
  double ttft_sum = 0;
  const std::vector<int32_t> prompt(17, 1000);
  const int64_t t0 = clock.now_ns();
  for (int q = 0; q < a.requests; ++q) {
    kr::GenerationRequest r;
    r.id = q + 1;
    r.prompt_ids = prompt;
    r.max_tokens = a.tokens;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    r.on_event = [&](kr::TokenEvent&& ev) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_ns == 0 && !ev.tokens.empty()) first_ns = clock.now_ns();
      if (ev.finished) done = true;
      cv.notify_one();
    };
    {
      std::lock_guard<std::mutex> lock(mu);
      done = false;
      first_ns = 0;
    }
    const int64_t submit_ns = clock.now_ns();
    if (!engine.submit(std::move(r)).ok()) std::abort();
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    ttft_sum += static_cast<double>(first_ns - submit_ns);
  }
  const int64_t t1 = clock.now_ns();
  engine.stop(0);
  RoundResult res;
  res.ns_per_token = static_cast<double>(t1 - t0) / (static_cast<double>(a.requests) * a.tokens);
  res.ttft_ns = ttft_sum / a.requests;
  return res;
}

struct Summary {
  double mean = 0, ci95 = 0;
};

Summary summarize(const std::vector<double>& v) {
  Summary s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  const double sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0;
  s.ci95 = 1.96 * sd / std::sqrt(static_cast<double>(v.size()));
  return s;
}

int usage(const char* msg) {
  std::fprintf(stderr,
               "%s\nusage: kr-engine-overhead [--rounds 30] [--requests 50] [--tokens 50] [--step-us 0] "
               "[--out FILE.json]\n",
               msg);
  return 2;
}

bool parse_positive(const char* s, int* out) {
  int64_t v = 0;
  if (!kr::parse_int(s, 0, 1'000'000, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--out" && i + 1 < argc) {
      a.out = argv[++i];
      continue;
    }
    int* target = k == "--rounds" ? &a.rounds : k == "--requests" ? &a.requests : k == "--tokens" ? &a.tokens : nullptr;
    int step_us = 0;
    if (k == "--step-us") target = &step_us;
    if (target == nullptr) return usage(("unknown argument " + k).c_str());
    if (i + 1 >= argc || !parse_positive(argv[++i], target)) return usage(("bad value for " + k).c_str());
    if (k == "--step-us") a.step_ns = static_cast<int64_t>(step_us) * 1000;
  }
  if (a.rounds < 2 || a.requests < 1 || a.tokens < 1) return usage("--rounds >= 2, --requests and --tokens >= 1");
  NullRunner runner(a.step_ns);
  run_round(&runner, true, a);  // warm-up
  std::vector<double> on_tok, off_tok, diff_tok, on_ttft, off_ttft, diff_ttft;
  for (int r = 0; r < a.rounds; ++r) {
    const bool on_first = r % 2 == 0;
    const RoundResult x = run_round(&runner, on_first, a);
    const RoundResult y = run_round(&runner, !on_first, a);
    const RoundResult& on = on_first ? x : y;
    const RoundResult& off = on_first ? y : x;
    on_tok.push_back(on.ns_per_token);
    off_tok.push_back(off.ns_per_token);
    diff_tok.push_back(on.ns_per_token - off.ns_per_token);
    on_ttft.push_back(on.ttft_ns);
    off_ttft.push_back(off.ttft_ns);
    diff_ttft.push_back(on.ttft_ns - off.ttft_ns);
  }
  const Summary son = summarize(on_tok), soff = summarize(off_tok), sd = summarize(diff_tok);
  const Summary ton = summarize(on_ttft), toff = summarize(off_ttft), td = summarize(diff_ttft);
  std::printf("%d rounds x %d requests x %d tokens, step %lld us (null runner)\n", a.rounds, a.requests, a.tokens,
              static_cast<long long>(a.step_ns / 1000));
  std::printf("per token:   on %8.2f us ± %.2f   off %8.2f us ± %.2f   on-off %+7.2f us ± %.2f (95%% CI)\n",
              son.mean / 1e3, son.ci95 / 1e3, soff.mean / 1e3, soff.ci95 / 1e3, sd.mean / 1e3, sd.ci95 / 1e3);
  std::printf("first token: on %8.2f us ± %.2f   off %8.2f us ± %.2f   on-off %+7.2f us ± %.2f (95%% CI)\n",
              ton.mean / 1e3, ton.ci95 / 1e3, toff.mean / 1e3, toff.ci95 / 1e3, td.mean / 1e3, td.ci95 / 1e3);
  nlohmann::json j = {
      {"benchmark", "engine-overhead"}, {"runner", "null"}, {"rounds", a.rounds}, {"requests", a.requests},
      {"tokens", a.tokens}, {"step_us", a.step_ns / 1000},
      {"per_token_us", {{"on", son.mean / 1e3}, {"on_ci95", son.ci95 / 1e3}, {"off", soff.mean / 1e3},
                        {"off_ci95", soff.ci95 / 1e3}, {"on_minus_off", sd.mean / 1e3}, {"on_minus_off_ci95", sd.ci95 / 1e3}}},
      {"first_token_us", {{"on", ton.mean / 1e3}, {"on_ci95", ton.ci95 / 1e3}, {"off", toff.mean / 1e3},
                          {"off_ci95", toff.ci95 / 1e3}, {"on_minus_off", td.mean / 1e3}, {"on_minus_off_ci95", td.ci95 / 1e3}}}};
  if (!a.out.empty()) {
    std::ofstream f(a.out);
    f << j.dump(2) << "\n";
    if (!f) return usage(("cannot write " + a.out).c_str());
  }
  return 0;
}
