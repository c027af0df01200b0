#include "server/serve_main.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/host_memory.h"
#include "base/log.h"
#include "server/http_server.h"
#include "server/model_loader.h"
#include "server/model_registry.h"
#include "server/openai_server.h"

namespace kr {
namespace {

// Streaming connections each hold a descriptor: lift the soft limit to the hard one.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Request bodies of up to the body limit come and go on several threads. glibc raises its
// mmap threshold after the first large free, after which such buffers stay in the heap
// arenas and resident memory ratchets up under hostile traffic. A fixed threshold keeps
// every buffer over 256 KiB in its own mapping, returned to the system when freed.
void bound_allocator_retention() {
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

// Seconds since this process started (/proc/self/stat's starttime against
// CLOCK_BOOTTIME, both since boot), so that start-up time covers everything
// before main too; -1 when /proc is not there.
double process_age_s() {
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (f == nullptr) return -1;
  char buf[2048];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  if (p == nullptr) return -1;
  // Fields after the name: state is field 3; starttime is field 22.
  unsigned long long start_ticks = 0;
  int field = 2;
  for (const char* q = p + 1; *q; ++q) {
    if (*q != ' ') continue;
    if (++field == 22) {
      start_ticks = std::strtoull(q + 1, nullptr, 10);
      break;
    }
  }
  timespec boot{};
  if (start_ticks == 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0) return -1;
  const double now_s = static_cast<double>(boot.tv_sec) + static_cast<double>(boot.tv_nsec) * 1e-9;
  return now_s - static_cast<double>(start_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int fail(const Status& s) {
  std::fprintf(stderr, "kr-serve serve: %s\n", s.to_string().c_str());
  return 1;
}

// The host tiers (--kv-offload-gb, per model) of the models that can be loaded at once must fit the
// host memory this process may still take: refused now, not at a later load.
Status check_kv_offload_fits(const std::vector<ModelSpec>& models, int32_t max_loaded_models) {
  std::vector<double> gib;
  for (const ModelSpec& m : models) {
    if (m.engine.kv_offload_gb <= 0) continue;
    if (!m.engine.prefix_caching)
      return InvalidArgument("model '" + m.name + "': --kv-offload-gb is a tier of the prefix cache: drop --no-prefix-caching");
    gib.push_back(m.engine.kv_offload_gb);
  }
  if (gib.empty()) return Status::Ok();
  std::sort(gib.begin(), gib.end(), std::greater<>());
  if (max_loaded_models > 0 && static_cast<size_t>(max_loaded_models) < gib.size()) gib.resize(static_cast<size_t>(max_loaded_models));
  double want_gib = 0;
  for (double g : gib) want_gib += g;
  const auto avail = available_host_memory_bytes();
  if (!avail) return FailedPrecondition("--kv-offload-gb: cannot read the available host memory (/proc/meminfo)");
  if (want_gib * double(int64_t{1} << 30) > static_cast<double>(*avail)) {
    char msg[320];
    std::snprintf(msg, sizeof msg,
                  "--kv-offload-gb %.1f%s: only %.1f GiB of host memory is available (MemAvailable, cgroup limit); "
                  "give at most that, less what the process itself needs",
                  want_gib, gib.size() > 1 ? " (the models loaded at once together)" : "",
                  static_cast<double>(*avail) / double(int64_t{1} << 30));
    return ResourceExhausted(msg);
  }
  return Status::Ok();
}

}  // namespace

int serve(const ServeOptions& a) {
  // Signals are taken by sigwait on this thread only: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  bound_allocator_retention();
  if (Status s = check_models(a.models, a.max_loaded_models); !s.ok()) return fail(s);

  if (Status s = check_kv_offload_fits(a.models, a.max_loaded_models); !s.ok()) return fail(s);

  SteadyClock clock;
  ServerContext ctx;
  ctx.api_key = a.api_key;
  ctx.cors_origin = a.cors_origin;
  ctx.webui = !a.no_webui;
  ctx.created_unix_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  // Memory: each model's share, explicit or by weight size (models_config.h).
  std::vector<uint64_t> weight_bytes;
  for (const ModelSpec& m : a.models) weight_bytes.push_back(model_weight_bytes(m));
  auto shares = resolve_memory_shares(a.models, weight_bytes, a.max_loaded_models);
  if (!shares.ok()) return fail(shares.status());
  ModelLoaderSettings loader;
  loader.backend = a.backend;
  loader.threads = a.threads;
  loader.kv_cache_mb = a.kv_cache_mb;
  loader.gpu_memory_fraction = a.gpu_memory_fraction;
  loader.cuda_pdl = a.cuda_pdl == "1";
  loader.cuda_flash_prefill_variant = a.cuda_flash_prefill_variant;
  loader.cuda_flash_prefill_short_max_keys = a.cuda_flash_prefill_short_max_keys;
  loader.cuda_decode_stack_kernel = a.cuda_decode_stack_kernel == "1";
  loader.reasoning_parser = a.reasoning_parser;
  loader.tool_call_parser = a.tool_call_parser;
  loader.clock = &clock;
  ModelRegistryOptions ropt;
  ropt.max_loaded_models = a.max_loaded_models;
  ropt.idle_ttl_s = a.model_idle_ttl_s;
  ropt.metrics.vllm_names = a.metrics_vllm_names;
  int64_t free_bytes = 0, total_bytes = 0;
  if (a.models.size() > 1 && will_use_cuda(a.backend) && device_memory(&free_bytes, &total_bytes)) {
    // Several models on one device: the shares divide what is free now.
    loader.device_budget_bytes = static_cast<int64_t>(static_cast<double>(free_bytes) * a.gpu_memory_fraction);
    for (double share : *shares)
      ropt.memory_bytes.push_back(static_cast<int64_t>(static_cast<double>(loader.device_budget_bytes) * share));
    ropt.device_free_bytes = [] {
      int64_t f = 0, t = 0;
      return device_memory(&f, &t) ? f : int64_t{-1};
    };
    KR_LOG(kInfo, "%zu models share %.1f GiB of device memory (%.2f of the %.1f GiB free)", a.models.size(),
           static_cast<double>(loader.device_budget_bytes) / (1 << 30), a.gpu_memory_fraction,
           static_cast<double>(free_bytes) / (1 << 30));
  }
  ModelRegistry models(
      a.models, *shares, ropt,
      [loader](const ModelSpec& spec, double share, Metrics* metrics) {
        return load_served_model(spec, share, metrics, loader);
      },
      &clock);
  ctx.models = &models;
  auto event_pool = std::make_unique<TaskPool>(2);
  ctx.event_pool = event_pool.get();

  // Listen first: /health and /ready answer 503 while the models load.
  OpenAIServer api(&ctx);
  HttpServerOptions hopt;
  hopt.read_timeout_s = a.read_timeout_s;
  hopt.worker_threads = a.http_workers;
  HttpServer http(
      hopt, [&api](int tag, HttpRequest&& r, std::shared_ptr<ResponseWriter> w) { api.handle(tag, std::move(r), std::move(w)); },
      http_error_response);
  auto port = http.listen(a.host, a.port, kMainListener);
  if (!port.ok()) return fail(port.status());
  if (a.metrics_export) {
    auto mport = http.listen(a.host, a.metrics_port, kMetricsListener);
    if (!mport.ok()) return fail(mport.status());
    KR_LOG(kInfo, "metrics on http://%s:%d/metrics", a.host.c_str(), *mport);
  }
  http.start();
  std::string names;
  for (const ModelSpec& m : a.models) names += (names.empty() ? "'" : ", '") + m.name + "'";
  KR_LOG(kInfo, "listening on http://%s:%d (models %s)", a.host.c_str(), *port, names.c_str());

  if (Status s = models.load_at_start(); !s.ok()) {
    http.stop();
    models.stop(0);
    return fail(s);
  }
  ctx.ready.store(true, std::memory_order_release);
  const double startup_s = process_age_s();
  models.set_startup_seconds(startup_s);
  KR_LOG(kInfo, "ready: cold start to ready in %.2f s (models %s)", startup_s, names.c_str());

  int sig = 0;
  sigwait(&sigs, &sig);
  KR_LOG(kInfo, "signal %d: draining (up to %.1f s)", sig, a.shutdown_timeout_s);
  ctx.draining.store(true);
  // The main port closes at once (a balancer moves on); the metrics port, when there
  // is one, keeps answering probes: /health 200 (alive), /ready 503 (draining).
  http.stop_accepting(a.metrics_export ? kMetricsListener : -1);
  models.stop(a.shutdown_timeout_s);  // every engine finishes or cancels its requests
  // Let the last events reach their clients.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (http.active_exchanges() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http.stop();
  event_pool.reset();
  ctx.ready.store(false);
  KR_LOG(kInfo, "stopped");
  return 0;
}

}  // namespace kr
