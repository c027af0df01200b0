// kr-engine-bench: generation throughput of the engine (scheduler + runner),
// no HTTP. For each batch size B it submits B requests at once (random prompt
// ids of --prompt-len, greedy, --gen-len tokens each, EOS ignored) and reports
// generated tokens/s over the whole run, decode tokens/s (after the last first
// token) and mean TTFT; --out writes the same as JSON.
//
//   kr-engine-bench --model DIR | --arch llama-3.2-3b --dummy-weights
//                   [--backend cpu|cuda] [--batch 1,16,64] [--prompt-len N]
//                   [--gen-len N] [--threads N] [--out FILE.json]
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "base/clock.h"
#include "base/parse_number.h"
#include "engine/engine.h"
#include "engine/forward_runner.h"
#ifdef KR_BENCH_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace {

struct Args {
  std::string model_dir, arch, backend = "cpu", out;
  bool dummy = false;
  std::vector<int32_t> batches = {1, 16, 64};
  int32_t prompt_len = 128, gen_len = 128, threads = 0;
};

int usage(const char* msg) {
  std::fprintf(stderr,
               "%s\nusage: kr-engine-bench --model DIR | --arch NAME --dummy-weights [--backend cpu|cuda]\n"
               "       [--batch 1,16,64] [--prompt-len N] [--gen-len N] [--threads N] [--out FILE.json]\n",
               msg);
  return 2;
}

bool parse_int(const std::string& s, int32_t* out) {
  int64_t v = 0;
  if (!kr::parse_int(s, 1, 1'000'000, &v)) return false;
  *out = static_cast<int32_t>(v);
  return true;
}

struct Result {
  int32_t batch = 0;
  double seconds = 0, tokens_per_s = 0, decode_tokens_per_s = 0, ttft_mean_s = 0;
  int64_t tokens = 0;
};

Result run_batch(kr::ForwardRunner* runner, int32_t batch, const Args& a, uint32_t seed) {
  kr::EngineConfig config;
  config.admissions_per_step = batch;
  config.max_num_seqs = batch;
  config.window_ms = 0;
  config.max_batched_tokens = runner->max_tokens_per_step();
  kr::SteadyClock clock;
  kr::Engine engine(runner, config, &clock, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  int32_t finished = 0;
  int64_t tokens = 0;
  double ttft_sum = 0;
  int64_t last_first_token_ns = 0;
  std::mt19937 rng(seed);
  const int64_t t0 = clock.now_ns();
  for (int32_t i = 0; i < batch; ++i) {
    kr::GenerationRequest r;
    r.id = i;
    r.prompt_ids.resize(static_cast<size_t>(a.prompt_len));
    for (auto& t : r.prompt_ids) t = static_cast<int32_t>(rng() % 32000);
    r.max_tokens = a.gen_len;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    r.on_event = [&](kr::TokenEvent&& ev) {
      const int64_t now = clock.now_ns();
      std::lock_guard<std::mutex> lock(mu);
      if (!ev.tokens.empty() && ev.completion_tokens == static_cast<int32_t>(ev.tokens.size())) {
        last_first_token_ns = std::max(last_first_token_ns, now);
      }
      tokens += static_cast<int64_t>(ev.tokens.size());
      if (ev.finished) {
        if (ev.finish_reason != kr::FinishReason::kLength) {
          std::fprintf(stderr, "request %lld: %s %s\n", static_cast<long long>(ev.request_id),
                       kr::finish_reason_name(ev.finish_reason), ev.error.to_string().c_str());
        }
        ttft_sum += ev.ttft_s;
        ++finished;
        cv.notify_all();
      }
    };
    const kr::Status s = engine.submit(std::move(r));
    if (!s.ok()) {
      std::fprintf(stderr, "submit: %s\n", s.to_string().c_str());
      std::exit(1);
    }
  }
  engine.start();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished == batch; });
  }
  const int64_t t1 = clock.now_ns();
  engine.stop(0);
  Result res;
  res.batch = batch;
  res.tokens = tokens;
  res.seconds = static_cast<double>(t1 - t0) * 1e-9;
  res.tokens_per_s = static_cast<double>(tokens) / res.seconds;
  const double decode_s = static_cast<double>(t1 - last_first_token_ns) * 1e-9;
  res.decode_tokens_per_s = decode_s > 0 ? static_cast<double>(batch) * (a.gen_len - 1) / decode_s : 0;
  res.ttft_mean_s = ttft_sum / batch;
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (k == "--model") a.model_dir = val();
    else if (k == "--arch") a.arch = val();
    else if (k == "--dummy-weights") a.dummy = true;
    else if (k == "--backend") a.backend = val();
    else if (k == "--out") a.out = val();
    else if (k == "--batch") {
      a.batches.clear();
      std::stringstream ss(val());
      std::string part;
      while (std::getline(ss, part, ',')) {
        int32_t b = 0;
        if (!parse_int(part, &b)) return usage("bad --batch");
        a.batches.push_back(b);
      }
      if (a.batches.empty()) return usage("bad --batch");
    } else if (k == "--prompt-len") {
      if (!parse_int(val(), &a.prompt_len)) return usage("bad --prompt-len");
    } else if (k == "--gen-len") {
      if (!parse_int(val(), &a.gen_len)) return usage("bad --gen-len");
    } else if (k == "--threads") {
      if (!parse_int(val(), &a.threads)) return usage("bad --threads");
    } else {
      return usage(("unknown argument " + k).c_str());
    }
  }
  if (a.model_dir.empty() && !(a.dummy && !a.arch.empty())) return usage("need --model DIR or --arch NAME --dummy-weights");

  int32_t max_batch = 1;
  for (int32_t b : a.batches) max_batch = std::max(max_batch, b);
  kr::ModelOptions opt;
  opt.arch = a.arch;
  opt.dummy_weights = a.dummy;
  opt.max_logit_rows = max_batch;
  opt.max_tokens_per_step = std::max<int32_t>(2048, max_batch);
  std::unique_ptr<kr::Backend> backend;
  if (a.backend == "cpu") {
    // KV budget: every sequence of the largest batch at once, 128 KiB per token
    // (Llama-3.2-3B needs 112 KiB in 16-bit).
    const size_t kv_tokens = static_cast<size_t>(max_batch) * static_cast<size_t>(a.prompt_len + a.gen_len + 16);
    backend = kr::make_cpu_backend(a.threads, kv_tokens * (size_t{1} << 17));
  } else if (a.backend == "cuda") {
#ifdef KR_BENCH_HAVE_CUDA
    backend = kr::make_cuda_backend(kr::CudaOptions{});
    if (!backend) return usage("no usable CUDA device");
#else
    return usage("built without CUDA");
#endif
  } else {
    return usage("--backend must be cpu or cuda");
  }
  auto runner = kr::make_forward_runner(a.model_dir, std::move(backend), opt);
  if (!runner.ok()) {
    std::fprintf(stderr, "%s\n", runner.status().to_string().c_str());
    return 1;
  }
  if (a.prompt_len + a.gen_len > (*runner)->max_model_len()) return usage("prompt + gen longer than max_model_len");

  nlohmann::json out = {{"model", a.model_dir.empty() ? a.arch : a.model_dir}, {"backend", a.backend},
                        {"prompt_len", a.prompt_len}, {"gen_len", a.gen_len}, {"results", nlohmann::json::array()}};
  run_batch(runner->get(), 1, a, 99);  // warm-up
  for (int32_t b : a.batches) {
    const Result r = run_batch(runner->get(), b, a, static_cast<uint32_t>(b));
    std::printf("batch %4d: %10.1f tok/s total, %10.1f tok/s decode, TTFT mean %.1f ms, %.2f s\n", r.batch,
                r.tokens_per_s, r.decode_tokens_per_s, r.ttft_mean_s * 1e3, r.seconds);
    std::fflush(stdout);
    out["results"].push_back({{"batch", r.batch}, {"tokens", r.tokens}, {"seconds", r.seconds},
                              {"tokens_per_s", r.tokens_per_s}, {"decode_tokens_per_s", r.decode_tokens_per_s},
                              {"ttft_mean_s", r.ttft_mean_s}});
  }
  if (!a.out.empty()) {
    std::ofstream f(a.out);
    f << out.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", a.out.c_str());
      return 1;
    }
  }
  return 0;
}
