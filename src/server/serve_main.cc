#include "server/serve_main.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "backend/backend.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/engine.h"
#include "engine/engine_config.h"
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

extern char** environ;

namespace kr {
namespace {

struct ServeArgs {
  std::string model_dir;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string backend = "auto";
  std::string api_key;
  int threads = 0;
  int64_t kv_cache_mb = 1024;
  int64_t max_model_len = 0;  // 0: the model's
  std::string served_model_name;
  std::string cors_origin;
  int http_workers = 4;
  bool metrics_export = false;
  bool metrics_vllm_names = false;  // also export every series under vLLM's names
  int metrics_port = 9090;
  double read_timeout_s = 30;
  double shutdown_timeout_s = 30;
  bool dummy_weights = false;
  std::string arch;  // built-in shape preset (with --dummy-weights), e.g. llama-3.2-3b
  std::map<std::string, std::string> engine_flags;  // KR_* name -> value
};

// Engine settings accepted as flags: --max-num-seqs 64 == KR_MAX_NUM_SEQS=64.
const char* kEngineFlags[] = {"gpu-scheduler", "gpu-scheduler-window-ms", "gpu-scheduler-batch-size", "fast-path",
                              "adaptive-window", "auto-tune", "auto-tune-target-ttft-ms", "auto-tune-target-itl-ms",
                              "max-num-seqs", "max-batched-tokens", "max-queued-requests", "background-max-wait-s",
                              "request-timeout-s"};

void usage() {
  std::fprintf(stderr,
               "usage: kr-serve serve [--model DIR] [--host 127.0.0.1] [--port 8080] [--backend auto|cpu|cuda]\n"
               "         [--api-key K] [--threads N] [--kv-cache-mb N] [--max-model-len N]\n"
               "         [--served-model-name NAME] [--cors-origin ORIGIN] [--http-workers N]\n"
               "         [--metrics-port P] [--read-timeout-s S] [--shutdown-timeout-s S] [--dummy-weights [--arch llama-3.2-3b]]\n"
               "         [--metrics-vllm-names]\n"
               "         engine: [--gpu-scheduler on|off] [--gpu-scheduler-window-ms MS] [--gpu-scheduler-batch-size N]\n"
               "                 [--fast-path on|off] [--adaptive-window on|off] [--auto-tune on|off]\n"
               "                 [--auto-tune-target-ttft-ms MS] [--auto-tune-target-itl-ms MS] [--max-num-seqs N]\n"
               "                 [--max-batched-tokens N] [--max-queued-requests N] [--background-max-wait-s S]\n"
               "                 [--request-timeout-s S]\n"
               "Environment (flags win): KR_API_KEY, KR_KV_CACHE_MB, KR_READ_TIMEOUT_S, KR_SHUTDOWN_TIMEOUT_S, KR_METRICS_EXPORT,\n"
               "  KR_METRICS_PORT, KR_METRICS_VLLM_NAMES, KR_CORS_ORIGIN and the engine's KR_* variables (docs/api.md).\n");
}

bool to_int(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool to_double(const std::string& s, double lo, double hi, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

bool truthy(const std::string& v) { return v == "1" || v == "true" || v == "on" || v == "yes"; }

std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : def;
}

// Returns 0 to go on, 2 on a usage error, -1 for --help.
int parse_args(int argc, char** argv, const char* default_model_dir, ServeArgs* a) {
  auto bad = [](const std::string& m) {
    std::fprintf(stderr, "kr-serve serve: %s\n", m.c_str());
    usage();
    return 2;
  };
  // Environment first; flags below override.
  a->api_key = env_or("KR_API_KEY", "");
  a->cors_origin = env_or("KR_CORS_ORIGIN", "");
  a->metrics_export = truthy(env_or("KR_METRICS_EXPORT", "0"));
  a->metrics_vllm_names = truthy(env_or("KR_METRICS_VLLM_NAMES", "0"));
  int64_t n = 0;
  double d = 0;
  if (const char* v = std::getenv("KR_METRICS_PORT")) {
    if (!to_int(v, 0, 65535, &n)) return bad("KR_METRICS_PORT must be a port number");
    a->metrics_port = static_cast<int>(n);
  }
  if (const char* v = std::getenv("KR_READ_TIMEOUT_S")) {
    if (!to_double(v, 0.01, 86400, &d)) return bad("KR_READ_TIMEOUT_S must be seconds in [0.01, 86400]");
    a->read_timeout_s = d;
  }
  if (const char* v = std::getenv("KR_KV_CACHE_MB")) {
    if (!to_int(v, 1, 1 << 24, &n)) return bad("KR_KV_CACHE_MB must be an integer in [1, 16777216]");
    a->kv_cache_mb = n;
  }
  if (const char* v = std::getenv("KR_SHUTDOWN_TIMEOUT_S")) {
    if (!to_double(v, 0, 86400, &d)) return bad("KR_SHUTDOWN_TIMEOUT_S must be seconds in [0, 86400]");
    a->shutdown_timeout_s = d;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "serve" && i == 1) continue;
    if (flag == "--help" || flag == "-h") return -1;
    if (flag == "--dummy-weights") { a->dummy_weights = true; continue; }
    if (flag == "--metrics-vllm-names") { a->metrics_vllm_names = true; continue; }
    if (flag.rfind("--", 0) != 0) return bad("unexpected argument '" + flag + "'");
    if (i + 1 >= argc) return bad("option " + flag + " needs a value");
    const std::string v = argv[++i];
    const std::string name = flag.substr(2);
    if (name == "model") a->model_dir = v;
    else if (name == "host") a->host = v;
    else if (name == "port") { if (!to_int(v, 0, 65535, &n)) return bad("--port must be in [0, 65535]"); a->port = static_cast<int>(n); }
    else if (name == "backend") { if (v != "auto" && v != "cpu" && v != "cuda") return bad("--backend must be auto, cpu or cuda"); a->backend = v; }
    else if (name == "api-key") a->api_key = v;
    else if (name == "threads") { if (!to_int(v, 0, 1024, &n)) return bad("--threads must be in [0, 1024]"); a->threads = static_cast<int>(n); }
    else if (name == "kv-cache-mb") { if (!to_int(v, 1, 1 << 24, &n)) return bad("--kv-cache-mb must be >= 1"); a->kv_cache_mb = n; }
    else if (name == "max-model-len") { if (!to_int(v, 1, 1 << 24, &n)) return bad("--max-model-len must be >= 1"); a->max_model_len = n; }
    else if (name == "served-model-name") a->served_model_name = v;
    else if (name == "arch") a->arch = v;
    else if (name == "cors-origin") a->cors_origin = v;
    else if (name == "http-workers") { if (!to_int(v, 1, 256, &n)) return bad("--http-workers must be in [1, 256]"); a->http_workers = static_cast<int>(n); }
    else if (name == "metrics-port") { if (!to_int(v, 0, 65535, &n)) return bad("--metrics-port must be a port number"); a->metrics_port = static_cast<int>(n); a->metrics_export = true; }
    else if (name == "read-timeout-s") { if (!to_double(v, 0.01, 86400, &d)) return bad("--read-timeout-s must be in [0.01, 86400]"); a->read_timeout_s = d; }
    else if (name == "shutdown-timeout-s") { if (!to_double(v, 0, 86400, &d)) return bad("--shutdown-timeout-s must be in [0, 86400]"); a->shutdown_timeout_s = d; }
    else {
      bool engine = false;
      for (const char* e : kEngineFlags) engine |= (name == e);
      if (!engine) return bad("unknown option '" + flag + "'");
      std::string key = "KR_";
      for (char c : name) key += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      a->engine_flags[key] = v;
    }
  }
  if (a->model_dir.empty()) a->model_dir = default_model_dir;
  if (a->served_model_name.empty()) {
    std::string dir = a->model_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    a->served_model_name = dir.substr(dir.find_last_of('/') + 1);
  }
  return 0;
}

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

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

StatusOr<std::unique_ptr<Backend>> make_backend(const ServeArgs& a) {
  const size_t kv_bytes = static_cast<size_t>(a.kv_cache_mb) << 20;
#ifdef KR_HAVE_CUDA_BACKEND
  if (a.backend == "cuda" || (a.backend == "auto" && cuda_device_available())) {
    auto b = make_cuda_backend(0);
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

}  // namespace

int serve_main(int argc, char** argv, const char* default_model_dir) {
  ServeArgs a;
  const int rc = parse_args(argc, argv, default_model_dir, &a);
  if (rc == -1) {
    usage();
    return 0;
  }
  if (rc != 0) return rc;
  auto parsed = engine_config_from_env(environment(), a.engine_flags);
  if (!parsed.ok()) {
    std::fprintf(stderr, "kr-serve serve: %s\n", parsed.status().message().c_str());
    return 2;
  }
  for (const std::string& notice : parsed->notices) KR_LOG(kWarn, "%s", notice.c_str());
  EngineConfig engine_config = parsed->config;
  engine_config.max_model_len = static_cast<int32_t>(a.max_model_len);

  // Signals are taken by sigwait on this thread only: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  bound_allocator_retention();

  SteadyClock clock;
  ServerContext ctx;
  ctx.served_model_name = a.served_model_name;
  ctx.api_key = a.api_key;
  ctx.cors_origin = a.cors_origin;
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

  // Model and engine.
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
