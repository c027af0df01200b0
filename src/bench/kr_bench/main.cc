// kr-bench: client-side benchmarks of an OpenAI-compatible server.
//   kr-bench fifty  ...   the 50-questions comparison (baseline / hybrid / full)
//   kr-bench sweep  ...   throughput and latency against concurrency
//   kr-bench swap   ...   cold start and model-swap times of a server of several models
// See docs/benchmarks.md.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/kr_bench/fifty.h"
#include "bench/kr_bench/swap.h"
#include "bench/kr_bench/sweep.h"

namespace {

using kr::bench::CommonOptions;

void usage() {
  std::fprintf(stderr,
               "usage: kr-bench fifty --server-bin PATH --model DIR [options]\n"
               "       kr-bench sweep (--server-bin PATH --model DIR | --url http://host:port) [options]\n"
               "common options:\n"
               "  --backend cpu|cuda          passed to the server (default cpu)\n"
               "  --extra-server-args \"...\"   appended to `serve ...`\n"
               "  --configs LIST              baseline,hybrid,full (default all three)\n"
               "  --max-tokens N              tokens per request (default 50)\n"
               "  --temperature T             default 0.7\n"
               "  --seed S                    request i uses seed S+i (default 1234)\n"
               "  --warmup N                  unrecorded requests per configuration (default 2)\n"
               "  --questions-file PATH       default: the built-in copy of bench/questions/fifty.json\n"
               "  --out-dir DIR               default bench/results\n"
               "  --served-model NAME         'model' field (default: from /v1/models)\n"
               "  --gpu NAME                  recorded in the report (default: nvidia-smi)\n"
               "  --timeout-s N               per request (default 600)\n"
               "  --startup-timeout-s N       server start (default 300)\n"
               "fifty:  --questions N         first N questions (default all)\n"
               "sweep:  --concurrency LIST    default 1,4,16,64,256 (max 256)\n"
               "        --requests-per-level N  default max(32, 2 x concurrency)\n"
               "        --rate R              Poisson arrivals at R requests/s (default: closed loop)\n"
               "        --url URL             an external server instead of starting ours\n"
               "       kr-bench swap --server-bin PATH --models-config FILE [--backend cpu|cuda] [--rounds N]\n"
               "                     [--extra-server-args \"...\"] [--out-dir DIR]   (--max-loaded-models 1: every\n"
               "                     request swaps; prints cold start, request, unload and load times)\n");
}

bool parse_int_list(const std::string& s, std::vector<int>& out) {
  out.clear();
  size_t start = 0;
  while (start < s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    const std::string item = s.substr(start, comma - start);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 256) return false;
    out.push_back(static_cast<int>(v));
    start = comma + 1;
  }
  return !out.empty();
}

int run_swap_command(int argc, char** argv) {
  kr::bench::SwapOptions o;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "kr-bench swap: %s needs a value\n", a.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--server-bin") o.server_bin = v;
    else if (a == "--models-config") o.models_config = v;
    else if (a == "--backend") o.backend = v;
    else if (a == "--extra-server-args") o.extra_server_args = v;
    else if (a == "--out-dir") o.out_dir = v;
    else if (a == "--rounds") o.rounds = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "kr-bench swap: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (o.server_bin.empty() || o.models_config.empty() || o.rounds < 1) {
    std::fprintf(stderr, "kr-bench swap: needs --server-bin, --models-config and --rounds >= 1\n");
    return 2;
  }
  return kr::bench::run_swap(o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "swap") return run_swap_command(argc, argv);
  if (cmd != "fifty" && cmd != "sweep") {
    std::fprintf(stderr, "kr-bench: unknown command '%s'\n", cmd.c_str());
    usage();
    return 2;
  }
  CommonOptions opts;
  kr::bench::SweepOptions sweep;
  int questions = 0;
  std::string configs = "baseline,hybrid,full";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "kr-bench: %s needs a value\n", a.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    const auto num = [&](double lo, double hi, double& out) {
      char* end = nullptr;
      out = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || out < lo || out > hi) {
        std::fprintf(stderr, "kr-bench: bad value for %s: %s\n", a.c_str(), v.c_str());
        return false;
      }
      return true;
    };
    double d = 0;
    if (a == "--server-bin") opts.server_bin = v;
    else if (a == "--model") opts.model_dir = v;
    else if (a == "--backend") opts.backend = v;
    else if (a == "--extra-server-args") opts.extra_server_args = v;
    else if (a == "--configs") configs = v;
    else if (a == "--out-dir") opts.out_dir = v;
    else if (a == "--questions-file") opts.questions_path = v;
    else if (a == "--served-model") opts.served_model = v;
    else if (a == "--gpu") opts.gpu = v;
    else if (a == "--url") opts.url = v;
    else if (a == "--max-tokens") { if (!num(1, 1e6, d)) return 2; opts.max_tokens = static_cast<int>(d); }
    else if (a == "--temperature") { if (!num(0, 10, d)) return 2; opts.temperature = d; }
    else if (a == "--seed") { if (!num(0, 1e15, d)) return 2; opts.seed = static_cast<int64_t>(d); }
    else if (a == "--warmup") { if (!num(0, 1000, d)) return 2; opts.warmup_requests = static_cast<int>(d); }
    else if (a == "--timeout-s") { if (!num(1, 1e6, d)) return 2; opts.request_timeout_s = static_cast<int>(d); }
    else if (a == "--startup-timeout-s") { if (!num(1, 1e6, d)) return 2; opts.startup_timeout_s = static_cast<int>(d); }
    else if (a == "--questions") { if (!num(1, 1e6, d)) return 2; questions = static_cast<int>(d); }
    else if (a == "--requests-per-level") { if (!num(1, 1e7, d)) return 2; sweep.requests_per_level = static_cast<int>(d); }
    else if (a == "--rate") { if (!num(0, 1e6, d)) return 2; sweep.rate_per_s = d; }
    else if (a == "--concurrency") {
      if (!parse_int_list(v, sweep.concurrency)) {
        std::fprintf(stderr, "kr-bench: --concurrency wants a list of integers in 1..256, got %s\n", v.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "kr-bench: unknown option %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (!opts.url.empty()) {
    if (cmd == "fifty") {
      std::fprintf(stderr, "kr-bench: fifty starts the server itself; --url is for sweep\n");
      return 2;
    }
    // An external server has one configuration, whatever it is.
    opts.configs = {kr::bench::ServerConfig{"external"}};
  } else {
    if (opts.server_bin.empty() || opts.model_dir.empty()) {
      std::fprintf(stderr, "kr-bench: --server-bin and --model are required\n");
      return 2;
    }
    auto selected = kr::bench::select_configs(configs);
    if (!selected.ok()) {
      std::fprintf(stderr, "kr-bench: %s\n", selected.status().message().c_str());
      return 2;
    }
    opts.configs = *selected;
  }
  return cmd == "fifty" ? kr::bench::run_fifty(opts, questions) : kr::bench::run_sweep(opts, sweep);
}
