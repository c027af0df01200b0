#include "server/serve_main.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "backend/backend.h"
#include "base/clock.h"
#include "base/host_memory.h"
#include "base/log.h"
#include "engine/engine.h"
#include "engine/forward_runner.h"
#include "metrics/metrics.h"
#include "server/http_server.h"
#include "server/openai_server.h"
#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#ifdef KR_HAVE_CUDA_BACKEND
#include "backend/cuda/cuda_backend.h"
#endif

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

StatusOr<std::unique_ptr<Backend>> make_backend(const ServeOptions& a) {
  const size_t kv_bytes = static_cast<size_t>(a.kv_cache_mb) << 20;
#ifdef KR_HAVE_CUDA_BACKEND
  if (a.backend == "cuda" || (a.backend == "auto" && cuda_device_available())) {
    CudaOptions options;
    options.memory_fraction = a.gpu_memory_fraction;
    options.pdl = a.cuda_pdl == "1";
    auto b = make_cuda_backend(options);
    if (b) return b;
    if (a.backend == "cuda") return FailedPrecondition("--backend cuda: no usable CUDA device");
  }
#else
  if (a.backend == "cuda") return FailedPrecondition("--backend cuda: this build has no CUDA backend");
#endif
  return make_cpu_backend(a.threads, kv_bytes);
}

int fail(const Status& s) {
  std::fprintf(stderr, "kr-serve serve: %s\n", s.to_string().c_str());
  return 1;
}

// --kv-offload-gb must fit the host memory this process may still take: refused now, not later.
Status check_kv_offload_fits(const EngineConfig& e) {
  if (e.kv_offload_gb <= 0) return Status::Ok();
  if (!e.prefix_caching) return InvalidArgument("--kv-offload-gb is a tier of the prefix cache: drop --no-prefix-caching");
  const double want = e.kv_offload_gb * double(int64_t{1} << 30);
  const auto avail = available_host_memory_bytes();
  if (!avail) return FailedPrecondition("--kv-offload-gb: cannot read the available host memory (/proc/meminfo)");
  if (want > static_cast<double>(*avail)) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "--kv-offload-gb %.1f: only %.1f GiB of host memory is available (MemAvailable, cgroup limit); "
                  "give at most that, less what the process itself needs",
                  e.kv_offload_gb, static_cast<double>(*avail) / double(int64_t{1} << 30));
    return ResourceExhausted(msg);
  }
  return Status::Ok();
}

// Slots of the host tier: --kv-offload-gb over one block's bytes (all layers, K and V).
Status init_kv_offload(const EngineConfig& e, ForwardRunner* runner) {
  if (e.kv_offload_gb <= 0) return Status::Ok();
  const int64_t block_bytes = runner->kv_block_bytes();
  const double slots = e.kv_offload_gb * double(int64_t{1} << 30) / static_cast<double>(block_bytes);
  if (slots < 1) return InvalidArgument("--kv-offload-gb is smaller than one KV block (" + std::to_string(block_bytes) + " bytes)");
  const int32_t n = static_cast<int32_t>(std::min(slots, double(INT32_MAX)));
  KR_RETURN_IF_ERROR(runner->init_host_tier(n));
  KR_LOG(kInfo, "KV host tier: %d blocks x %lld bytes (%.1f GiB)%s", n, static_cast<long long>(block_bytes),
         e.kv_offload_gb, runner->model().backend().name() == "cpu" ? " in plain memory, copied synchronously" : ", pinned");
  return Status::Ok();
}

}  // namespace

int serve(const ServeOptions& a) {
  const EngineConfig& engine_config = a.engine;

  // Signals are taken by sigwait on this thread only: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  bound_allocator_retention();

  if (Status s = check_kv_offload_fits(engine_config); !s.ok()) return fail(s);

  SteadyClock clock;
  ServerContext ctx;
  ctx.served_model_name = a.served_model_name;
  ctx.api_key = a.api_key;
  ctx.cors_origin = a.cors_origin;
  ctx.webui = !a.no_webui;
  ctx.created_unix_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  MetricsOptions mopt;
  mopt.vllm_names = a.metrics_vllm_names;
  mopt.model_name = a.served_model_name;
  Metrics metrics(&clock, mopt);
  ctx.metrics = &metrics;
  auto event_pool = std::make_unique<TaskPool>(2);
  ctx.event_pool = event_pool.get();

  // Listen first: /health answers 503 while the model loads.
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
  KR_LOG(kInfo, "listening on http://%s:%d (model '%s' loading from %s)", a.host.c_str(), *port,
         a.served_model_name.c_str(), a.model_dir.c_str());

  // Tokenizer and chat template.
  auto tok = Tokenizer::load_from_file(a.model_dir + "/tokenizer.json");
  if (!tok.ok()) return fail(tok.status());
  std::unique_ptr<ChatPromptBuilder> chat;
  auto tcfg = read_tokenizer_config(a.model_dir + "/tokenizer_config.json");
  if (tcfg.ok()) {
    auto made = make_chat_prompt_builder(tok->get(), *tcfg);
    if (!made.ok()) return fail(made.status());
    chat = std::move(made).value();
  }
  if (!chat) {
    KR_LOG(kWarn, "no chat template in %s/tokenizer_config.json: /v1/chat/completions is disabled", a.model_dir.c_str());
  }

  // Model and engine (EngineConfig::max_model_len caps the context: --max-model-len).
  auto backend = make_backend(a);
  if (!backend.ok()) return fail(backend.status());
  ModelOptions mo;
  mo.block_size = 16;
  mo.max_tokens_per_step = engine_config.max_batched_tokens;
  mo.max_logit_rows = engine_config.max_num_seqs;
  mo.dummy_weights = a.dummy_weights;
  mo.arch = a.arch;
  auto runner = make_forward_runner(a.model_dir, std::move(backend).value(), mo);
  if (!runner.ok()) return fail(runner.status());
  if (Status s = init_kv_offload(engine_config, runner->get()); !s.ok()) return fail(s);
  auto engine = std::make_unique<Engine>(runner->get(), engine_config, &clock, &metrics);
  const int32_t max_len = engine->max_model_len();
  ctx.engine = engine.get();
  ctx.limits.vocab_size = (*runner)->model().config().vocab_size;
  ctx.prompt.tokenizer = tok->get();
  ctx.prompt.chat = chat.get();
  ctx.prompt.bos_id = (*runner)->model().config().bos_token_id;
  ctx.prompt.vocab_size = ctx.limits.vocab_size;
  ctx.prompt.max_model_len = max_len;
  engine->start();
  ctx.ready.store(true, std::memory_order_release);
  KR_LOG(kInfo, "ready: model '%s', max_model_len %d, %d KV blocks", a.served_model_name.c_str(), max_len,
         (*runner)->num_kv_blocks());

  int sig = 0;
  sigwait(&sigs, &sig);
  KR_LOG(kInfo, "signal %d: draining (up to %.1f s)", sig, a.shutdown_timeout_s);
  ctx.draining.store(true);
  http.stop_accepting();
  engine->stop(a.shutdown_timeout_s);  // finishes or cancels every request
  // Let the last events reach their clients.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (http.active_exchanges() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http.stop();
  event_pool.reset();
  ctx.ready.store(false);
  engine.reset();
  KR_LOG(kInfo, "stopped");
  return 0;
}

}  // namespace kr
