// kr-sampling-check: Backend::sample on the GPU against the CPU Sampler
// (sampling/sampler.h, the reference) on the same logits. Prints one PASS/FAIL
// line per check and the time per call; exits nonzero on any failure.
//
// Usage: kr-sampling-check [--json FILE] [--draws N]
//
// Checks: (1) greedy rows with penalties / EOS suppression / ties: same ids;
// (2) logprob and top-20 logprobs within 1e-4 of the CPU's, same top ids;
// (3) temperature / top-k / top-p / min-p / penalty combinations on V = 128256
// rows: every drawn id in the kept set of a reference that mirrors the CPU
// rules, and a chi-square test of the draw counts against the kept-set
// probabilities; the same random bits give the same ids; (4) rows holding NaN
// or ±Inf are flagged and their neighbours are not; (5) microseconds per call
// at R = 1, 64 and 256.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "sampling/device_sampling_batch.h"
#include "sampling/sampler.h"

namespace kr {
namespace {

constexpr int32_t kVocab = 128256;
const std::vector<int32_t> kEos = {128001, 128008, 128009};

int g_failures = 0;
nlohmann::json g_json = nlohmann::json::object();

void report(bool ok, const std::string& name, const std::string& detail) {
  std::printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
  if (!ok) ++g_failures;
  g_json["checks"][name] = {{"ok", ok}, {"detail", detail}};
}

// N(0, 3) with a few large logits, as a model's output row.
std::vector<float> realistic_row(std::mt19937_64& rng, int32_t V) {
  std::normal_distribution<float> n(0.0f, 3.0f);
  std::vector<float> row(V);
  for (float& x : row) x = n(rng);
  std::uniform_int_distribution<int32_t> id(0, V - 1);
  for (int i = 0; i < 8; ++i) row[id(rng)] = 12.0f + 1.0f * static_cast<float>(i);
  return row;
}

// One request's sampling inputs for both samplers.
struct Case {
  std::string name;
  SamplingParams params;
  std::vector<int32_t> prompt, output;
  bool suppress_eos = false;
};

// Packs rows like the runner: penalty entries only when a penalty is on.
using Packed = DeviceSamplingBatch;

void pack(const Case& c, uint64_t bits, int32_t V, Packed* p) {
  append_device_row(c.params, c.suppress_eos, c.prompt, c.output, V, p);
  p->rows.back().random_bits = bits;
}

class Gpu {
 public:
  explicit Gpu(Backend& b) : b_(b) {}
  ~Gpu() {
    if (t_.data != nullptr) b_.free(t_);
  }
  // logits [R, V] row-major on the host.
  bool run(const std::vector<float>& logits, int32_t V, const Packed& p, std::vector<DeviceSampleResult>* out) {
    const int64_t R = static_cast<int64_t>(p.rows.size());
    if (t_.data == nullptr || t_.dim(0) != R || t_.dim(1) != V) {
      if (t_.data != nullptr) b_.free(t_);
      t_ = b_.alloc(DType::kF32, {R, V});
    }
    b_.copy_from_host(t_, logits.data(), logits.size() * sizeof(float));
    out->assign(static_cast<size_t>(R), DeviceSampleResult{});
    return b_.sample(t_, p.rows, p.penalty_ids, p.penalty_counts, kEos, out->data());
  }
  Tensor& tensor() { return t_; }

 private:
  Backend& b_;
  Tensor t_;
};

SampledToken cpu_sample(Sampler& s, std::span<const float> row, const Case& c, std::mt19937_64* rng) {
  SampleInput in;
  in.params = &c.params;
  in.prompt_ids = c.prompt;
  in.output_ids = c.output;
  in.suppress_eos = c.suppress_eos;
  in.rng = rng;
  return s.sample(row, in, kEos);
}

// ---- (1), (2): greedy rows and logprobs ----
void check_greedy_and_logprobs(Backend& b) {
  std::mt19937_64 rng(1);
  const int32_t V = kVocab;
  std::vector<Case> cases;
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < 48; ++i) {
    std::vector<float> row = realistic_row(rng, V);
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 8, order.end(), [&](int32_t a, int32_t c) { return row[a] > row[c]; });
    Case c;
    c.name = "row" + std::to_string(i);
    c.params.temperature = 0.0f;
    c.params.logprobs = (i % 3 == 0) ? 20 : (i % 3 == 1 ? 5 : -1);
    // Penalised ids include the current leaders, so penalties change the winner.
    c.prompt = {order[0], order[3], 17, 17, 5000};
    c.output = {order[1], order[1], order[2], 42, order[1]};
    switch (i % 6) {
      case 0: c.params.repetition_penalty = 1.3f; break;
      case 1: c.params.presence_penalty = 1.5f; c.params.frequency_penalty = 2.0f; break;
      case 2: c.params.repetition_penalty = 0.8f; c.params.frequency_penalty = -0.5f; break;
      case 3:
        c.suppress_eos = true;
        row[kEos[1]] = row[order[0]] + 5.0f;  // the EOS id would win
        break;
      case 4:  // ties: the lowest id must win
        row[order[0]] = row[order[1]] = row[order[2]] = 30.0f;
        break;
      default: c.params.repetition_penalty = 2.0f; c.suppress_eos = true; row[kEos[0]] = 40.0f; break;
    }
    cases.push_back(c);
    rows.push_back(std::move(row));
  }
  // Thousands of distinct large logits in one first-level bin: the top
  // logprobs come from the radix select path.
  for (int i = 0; i < 2; ++i) {
    std::vector<float> row = realistic_row(rng, V);
    for (int32_t k = 0; k < 3000; ++k) row[(k * 37 + i) % V] = 16.0f + 3.9f * static_cast<float>(k) / 3000.0f;
    Case c;
    c.name = "wide_top_bin" + std::to_string(i);
    c.params.temperature = i == 0 ? 0.0f : 1.0f;  // the second row draws (its id is not compared)
    c.params.logprobs = 20;
    cases.push_back(c);
    rows.push_back(std::move(row));
  }
  Packed p;
  std::vector<float> flat;
  for (size_t i = 0; i < cases.size(); ++i) {
    pack(cases[i], 0, V, &p);
    flat.insert(flat.end(), rows[i].begin(), rows[i].end());
  }
  Gpu gpu(b);
  std::vector<DeviceSampleResult> out;
  if (!gpu.run(flat, V, p, &out)) {
    report(false, "greedy_ids", "Backend::sample returned false");
    return;
  }
  // The same rows one per call (a row then spans a cluster of blocks): same results.
  {
    Gpu one(b);
    int differ = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      Packed q;
      pack(cases[i], 0, V, &q);
      std::vector<DeviceSampleResult> single;
      if (!one.run(rows[i], V, q, &single)) {
        ++differ;
        continue;
      }
      const DeviceSampleResult& g = out[i];
      bool same = single[0].id == g.id && single[0].num_top == g.num_top &&
                  std::fabs(single[0].logprob - g.logprob) <= 1e-5f;
      for (int32_t t = 0; same && t < g.num_top; ++t)
        same = single[0].top_ids[t] == g.top_ids[t] && std::fabs(single[0].top_logprobs[t] - g.top_logprobs[t]) <= 1e-5f;
      differ += same ? 0 : 1;
    }
    report(differ == 0, "one_row_per_call", std::to_string(differ) + " of " + std::to_string(cases.size()) +
                                                 " rows differ from the batched call");
  }
  Sampler cpu;
  int id_mismatch = 0, top_mismatch = 0;
  double max_lp_err = 0.0;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::mt19937_64 unused(0);
    const SampledToken ref = cpu_sample(cpu, rows[i], cases[i], &unused);
    const DeviceSampleResult& g = out[i];
    const bool draws = !is_greedy(cases[i].params);
    if (draws) {  // only its logprobs are compared
      const double lse = static_cast<double>(rows[i][ref.id]) - ref.logprob;  // the CPU's log-sum-exp
      const bool valid = g.id >= 0 && g.id < V && !g.non_finite;
      max_lp_err = std::max(max_lp_err, valid ? std::fabs(g.logprob - (rows[i][g.id] - lse)) : 1.0);
    } else if (g.id != ref.id || g.non_finite) {
      ++id_mismatch;
      std::printf("  %s: gpu id %d, cpu id %d\n", cases[i].name.c_str(), g.id, ref.id);
    }
    if (!draws) max_lp_err = std::max(max_lp_err, std::fabs(static_cast<double>(g.logprob) - ref.logprob));
    if (g.num_top != static_cast<int32_t>(ref.top.size())) {
      ++top_mismatch;
      continue;
    }
    for (int32_t t = 0; t < g.num_top; ++t) {
      if (g.top_ids[t] != ref.top[t].first) ++top_mismatch;
      max_lp_err = std::max(max_lp_err, std::fabs(static_cast<double>(g.top_logprobs[t]) - ref.top[t].second));
    }
  }
  report(id_mismatch == 0, "greedy_ids", std::to_string(cases.size()) + " rows, " + std::to_string(id_mismatch) +
                                             " ids differ from the CPU Sampler");
  char buf[160];
  std::snprintf(buf, sizeof buf, "max |logprob error| %.3g (limit 1e-4), %d top ids differ", max_lp_err, top_mismatch);
  report(max_lp_err <= 1e-4 && top_mismatch == 0, "logprobs_top20", buf);
}

// ---- (3): random sampling ----

// The kept set of the CPU rules, in double: (id, probability).
std::vector<std::pair<int32_t, double>> reference_kept(const std::vector<float>& raw, const Case& c) {
  const SamplingParams& p = c.params;
  const int32_t V = static_cast<int32_t>(raw.size());
  std::vector<float> l = raw;
  if (p.repetition_penalty != 1.0f) {
    std::vector<int32_t> seen = c.prompt;
    seen.insert(seen.end(), c.output.begin(), c.output.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t id : seen) l[id] = l[id] > 0 ? l[id] / p.repetition_penalty : l[id] * p.repetition_penalty;
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::vector<int32_t> counts(V, 0);
    for (int32_t id : c.output) ++counts[id];
    for (int32_t id = 0; id < V; ++id)
      if (counts[id] > 0) l[id] -= p.frequency_penalty * static_cast<float>(counts[id]) + p.presence_penalty;
  }
  if (c.suppress_eos)
    for (int32_t id : kEos) l[id] = -INFINITY;
  const float mx = *std::max_element(l.begin(), l.end());
  std::vector<std::pair<double, int32_t>> cand;  // (weight, id)
  for (int32_t i = 0; i < V; ++i) {
    const double x = (static_cast<double>(l[i]) - mx) / p.temperature;
    const double w = x >= -87.0 ? std::exp(x) : 0.0;
    if (w > 0.0 && !(p.min_p > 0.0f && w < p.min_p)) cand.emplace_back(w, i);
  }
  std::sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  if (p.top_k > 0 && p.top_k < static_cast<int32_t>(cand.size())) {
    const double kth = cand[p.top_k - 1].first;
    size_t keep = static_cast<size_t>(p.top_k);
    while (keep < cand.size() && cand[keep].first >= kth) ++keep;
    cand.resize(keep);
  }
  if (p.top_p < 1.0f) {
    double total = 0;
    for (const auto& [w, id] : cand) total += w;
    const double budget = (1.0 - static_cast<double>(p.top_p)) * total;
    double dropped = 0;
    size_t keep = cand.size();  // drop from the back (ascending order)
    while (keep > 1 && dropped + cand[keep - 1].first <= budget) dropped += cand[--keep].first;
    cand.resize(keep);
  }
  double sum = 0;
  for (const auto& [w, id] : cand) sum += w;
  std::vector<std::pair<int32_t, double>> kept;
  for (const auto& [w, id] : cand) kept.emplace_back(id, w / sum);
  return kept;
}

// rows_per_call: 256 (one block per row) or a few (each row split over a cluster).
void check_distribution(Backend& b, int draws, int rows_per_call) {
  std::mt19937_64 rng(7);
  const int32_t V = kVocab;
  std::vector<Case> cases(9);
  cases[0].name = "t1";
  cases[0].params.temperature = 1.0f;
  cases[1].name = "t0.7_topp0.9";
  cases[1].params.temperature = 0.7f;
  cases[1].params.top_p = 0.9f;
  cases[2].name = "t1_topk50";
  cases[2].params.temperature = 1.0f;
  cases[2].params.top_k = 50;
  cases[3].name = "t1.2_minp0.05";
  cases[3].params.temperature = 1.2f;
  cases[3].params.min_p = 0.05f;
  cases[4].name = "t0.8_topk40_topp0.95_minp0.02";
  cases[4].params.temperature = 0.8f;
  cases[4].params.top_k = 40;
  cases[4].params.top_p = 0.95f;
  cases[4].params.min_p = 0.02f;
  cases[5].name = "t1_topk20_penalties_eos";
  cases[5].params.temperature = 1.0f;
  cases[5].params.top_k = 20;
  cases[5].params.repetition_penalty = 1.3f;
  cases[5].params.presence_penalty = 0.7f;
  cases[5].params.frequency_penalty = 0.4f;
  cases[5].suppress_eos = true;
  cases[6].name = "t2_topp0.5_logprobs5";
  cases[6].params.temperature = 2.0f;
  cases[6].params.top_p = 0.5f;
  cases[6].params.logprobs = 5;
  // More than 1024 candidates at the cut: the full radix path (top-k, then top-p).
  cases[7].name = "t1.5_topk3000";
  cases[7].params.temperature = 1.5f;
  cases[7].params.top_k = 3000;
  cases[8].name = "t1.5_topk3000_topp0.8_logprobs20";
  cases[8].params.temperature = 1.5f;
  cases[8].params.top_k = 3000;
  cases[8].params.top_p = 0.8f;
  cases[8].params.logprobs = 20;
  const int kRows = rows_per_call;
  const std::string suffix = "_r" + std::to_string(rows_per_call);
  Gpu gpu(b);
  nlohmann::json dist = nlohmann::json::object();
  for (Case& c : cases) {
    std::vector<float> row = realistic_row(rng, V);
    if (c.suppress_eos) row[kEos[2]] = 25.0f;  // the EOS id would dominate
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 10, order.end(), [&](int32_t a, int32_t d) { return row[a] > row[d]; });
    c.prompt = {order[0], order[4], 99};
    c.output = {order[1], order[1], order[2], order[6]};
    const auto kept = reference_kept(row, c);
    std::vector<double> prob(V, 0.0);
    for (const auto& [id, pr] : kept) prob[id] = pr;
    std::vector<float> flat;
    flat.reserve(static_cast<size_t>(kRows) * V);
    for (int r = 0; r < kRows; ++r) flat.insert(flat.end(), row.begin(), row.end());
    std::vector<int64_t> counts(V, 0);
    int64_t outside = 0, n = 0;
    bool ok_call = true, repeat_ok = true;
    std::vector<DeviceSampleResult> out, again;
    for (int call = 0; n < draws && ok_call; ++call) {
      Packed p;
      for (int r = 0; r < kRows; ++r) pack(c, rng(), V, &p);
      ok_call = gpu.run(flat, V, p, &out);
      if (call == 0 && ok_call) {  // same bits, same ids
        gpu.run(flat, V, p, &again);
        for (int r = 0; r < kRows; ++r) repeat_ok &= again[r].id == out[r].id;
      }
      for (int r = 0; r < kRows && ok_call; ++r, ++n) {
        const int32_t id = out[r].id;
        if (id < 0 || id >= V || out[r].non_finite) {
          ++outside;
          continue;
        }
        ++counts[id];
        if (prob[id] == 0.0) ++outside;
      }
    }
    if (!ok_call) {
      report(false, "dist_" + c.name + suffix, "Backend::sample returned false");
      continue;
    }
    // Chi-square over bins of ids (most likely first), each bin >= 20 expected draws.
    std::vector<std::pair<int32_t, double>> sorted = kept;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& d) { return a.second > d.second; });
    double chi2 = 0, bin_exp = 0, bin_obs = 0;
    int bins = 0;
    const double min_expected = std::max(20.0, static_cast<double>(n) / 100.0);
    for (size_t i = 0; i < sorted.size(); ++i) {
      bin_exp += sorted[i].second * static_cast<double>(n);
      bin_obs += static_cast<double>(counts[sorted[i].first]);
      const bool last = i + 1 == sorted.size();
      if (bin_exp >= min_expected || last) {
        chi2 += (bin_obs - bin_exp) * (bin_obs - bin_exp) / std::max(bin_exp, 1e-9);
        ++bins;
        bin_exp = bin_obs = 0;
      }
    }
    const double df = std::max(1, bins - 1);
    const double limit = df + 8.0 * std::sqrt(2.0 * df);  // ~8 sigma: a correct sampler passes by far
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "%lld draws, kept set %zu ids, %lld outside it, chi2 %.1f over %d bins (limit %.1f), "
                  "same bits same ids: %s",
                  static_cast<long long>(n), kept.size(), static_cast<long long>(outside), chi2, bins, limit,
                  repeat_ok ? "yes" : "no");
    report(outside == 0 && chi2 <= limit && repeat_ok, "dist_" + c.name + suffix, buf);
    dist[c.name + suffix] = {{"draws", n}, {"kept", kept.size()}, {"outside", outside}, {"chi2", chi2}, {"bins", bins}};
  }
  g_json["distribution"].update(dist);
}

// ---- (4): non-finite rows ----
void check_non_finite(Backend& b) {
  std::mt19937_64 rng(3);
  const int32_t V = kVocab;
  const int R = 6;
  std::vector<float> flat;
  for (int r = 0; r < R; ++r) {
    std::vector<float> row = realistic_row(rng, V);
    if (r == 1) row[1234] = NAN;
    if (r == 3) row[V - 1] = INFINITY;
    if (r == 4) row[0] = -INFINITY;
    flat.insert(flat.end(), row.begin(), row.end());
  }
  Packed p;
  for (int r = 0; r < R; ++r) {
    Case c;
    c.params.temperature = (r % 2 == 0) ? 0.0f : 0.9f;
    c.params.top_p = 0.9f;
    c.params.logprobs = 3;
    pack(c, rng(), V, &p);
  }
  Gpu gpu(b);
  std::vector<DeviceSampleResult> out;
  bool ok = gpu.run(flat, V, p, &out);
  for (int r = 0; r < R && ok; ++r) {
    const bool expect = r == 1 || r == 3 || r == 4;
    ok &= (out[r].non_finite != 0) == expect && (expect ? out[r].id == -1 : out[r].id >= 0);
  }
  report(ok, "non_finite", "rows 1 (NaN), 3 (+Inf), 4 (-Inf) flagged, rows 0, 2, 5 sampled");
}

// ---- (5): time per call ----
void time_calls(Backend& b) {
  std::mt19937_64 rng(11);
  const int32_t V = kVocab;
  struct Mode {
    std::string name;
    SamplingParams params;
    bool penalties;
  };
  std::vector<Mode> modes(5);
  modes[0].name = "greedy_penalties";
  modes[0].params.temperature = 0.0f;
  modes[0].params.repetition_penalty = 1.1f;
  modes[0].penalties = true;
  modes[1].name = "t0.8_topp0.9_topk50";
  modes[1].params.temperature = 0.8f;
  modes[1].params.top_p = 0.9f;
  modes[1].params.top_k = 50;
  modes[1].penalties = false;
  modes[2].name = "t1_topp0.95_logprobs20";
  modes[2].params.temperature = 1.0f;
  modes[2].params.top_p = 0.95f;
  modes[2].params.logprobs = 20;
  modes[2].penalties = false;
  modes[3].name = "t0.7_topk40_topp0.9_minp0.05_penalties";
  modes[3].params.temperature = 0.7f;
  modes[3].params.top_k = 40;
  modes[3].params.top_p = 0.9f;
  modes[3].params.min_p = 0.05f;
  modes[3].params.presence_penalty = 0.5f;
  modes[3].params.repetition_penalty = 1.1f;
  modes[3].penalties = true;
  modes[4].name = "t0.6_topp0.9";  // Llama 3's generation_config
  modes[4].params.temperature = 0.6f;
  modes[4].params.top_p = 0.9f;
  modes[4].penalties = false;
  nlohmann::json timing = nlohmann::json::object();
  for (int R : {1, 64, 256}) {
    std::vector<float> flat;
    for (int r = 0; r < R; ++r) {
      std::vector<float> row = realistic_row(rng, V);
      flat.insert(flat.end(), row.begin(), row.end());
    }
    Gpu gpu(b);
    std::vector<DeviceSampleResult> out;
    for (const Mode& m : modes) {
      Packed p;
      std::uniform_int_distribution<int32_t> id(0, V - 1);
      for (int r = 0; r < R; ++r) {
        Case c;
        c.params = m.params;
        if (m.penalties)
          for (int i = 0; i < 500; ++i) (i % 2 ? c.prompt : c.output).push_back(id(rng));
        pack(c, rng(), V, &p);
      }
      if (!gpu.run(flat, V, p, &out)) {  // uploads the logits and warms up
        report(false, "timing", "Backend::sample returned false");
        return;
      }
      std::vector<double> us;
      for (int it = 0; it < 30; ++it) {
        const auto t0 = std::chrono::steady_clock::now();
        b.sample(gpu.tensor(), p.rows, p.penalty_ids, p.penalty_counts, kEos, out.data());
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(us.begin(), us.end());
      const double med = us[us.size() / 2];
      std::printf("TIME R=%d %s: %.1f us per call (%.2f us per row)\n", R, m.name.c_str(), med, med / R);
      timing[m.name][std::to_string(R)] = med;
    }
    // The greedy device path for comparison.
    std::vector<int32_t> ids(R);
    std::vector<float> lps(R);
    b.argmax_logprob(gpu.tensor(), ids.data(), lps.data());
    std::vector<double> us;
    for (int it = 0; it < 30; ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      b.argmax_logprob(gpu.tensor(), ids.data(), lps.data());
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    std::printf("TIME R=%d argmax_logprob (reference): %.1f us per call\n", R, us[us.size() / 2]);
    timing["argmax_logprob"][std::to_string(R)] = us[us.size() / 2];
  }
  g_json["time_us_per_call"] = timing;
}

}  // namespace
}  // namespace kr

int main(int argc, char** argv) {
  std::string json_path;
  int draws = 20480;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--draws" && i + 1 < argc) draws = std::max(256, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: kr-sampling-check [--json FILE] [--draws N]\n");
      return 2;
    }
  }
  auto backend = kr::make_cuda_backend(kr::CudaOptions{});
  if (backend == nullptr) {
    std::printf("FAIL device: no CUDA device\n");
    return 1;
  }
  kr::check_greedy_and_logprobs(*backend);
  kr::check_distribution(*backend, draws, 256);
  kr::check_distribution(*backend, std::max(256, draws / 4), 4);
  kr::check_non_finite(*backend);
  kr::time_calls(*backend);
  kr::g_json["failures"] = kr::g_failures;
  if (!json_path.empty()) std::ofstream(json_path) << kr::g_json.dump(2) << "\n";
  std::printf("%s: %d failure(s)\n", kr::g_failures == 0 ? "PASS" : "FAIL", kr::g_failures);
  return kr::g_failures == 0 ? 0 : 1;
}
