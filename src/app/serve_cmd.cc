// kr-serve serve: the OpenAI-compatible HTTP server. Parses the flags and the
// KR_* environment into ServeOptions and runs server/serve_main.h's serve().
#include <map>
#include <string>

#include "app/cli.h"
#include "app/commands.h"
#include "base/log.h"
#include "server/serve_main.h"

extern char** environ;

namespace kr {
namespace {

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

void add_serve_flags(FlagSet& f, ServeOptions* o, std::map<std::string, std::string>* engine_flags) {
  f.string("model", "DIR", &o->model_dir, "Hugging Face model folder").default_text("the bundled models/tiny-llama3");
  f.string("host", "HOST", &o->host, "listening address");
  f.int32("port", 0, 65535, &o->port, "listening port (0: any free port)");
  f.choice("backend", {"auto", "cpu", "cuda"}, &o->backend, "device; auto picks CUDA when a GPU is present");
  f.int32("threads", 0, 1024, &o->threads, "CPU backend threads (0: all cores)");
  f.int64("kv-cache-mb", 1, 1 << 24, &o->kv_cache_mb, "CPU backend: KV cache size in MiB").env("KR_KV_CACHE_MB");
  f.number("gpu-memory-fraction", 0.05, 0.99, &o->gpu_memory_fraction,
           "CUDA: share of the free device memory (after the weights) for the KV cache")
      .env("KR_GPU_MEMORY_FRACTION");
  f.choice("pdl", {"1", "0"}, &o->cuda_pdl,
           "CUDA: programmatic dependent launch on the batch-1 GEMVs (0: off, for profiling kernels one at a time)")
      .env("KR_PDL");
  f.int32("max-model-len", 1, 1 << 24, &o->engine.max_model_len, "context limit below the model's")
      .default_text("the model's, capped by the KV cache");
  f.string("served-model-name", "NAME", &o->served_model_name, "the model id the API shows")
      .default_text("the model folder's name");
  f.switch_("dummy-weights", &o->dummy_weights, "random weights of the configured shape (benchmarks)");
  f.string("arch", "NAME", &o->arch, "built-in shape instead of DIR/config.json, with --dummy-weights (llama-3.2-3b)");
  f.section("structured outputs and tools");
  f.choice("reasoning-parser", {"auto", "none", "qwen3", "deepseek_r1"}, &o->reasoning_parser,
           "split <think> blocks into reasoning_content (auto: when the chat template has them)");
  f.choice("tool-call-parser", {"auto", "none", "llama3_json", "hermes", "mistral"}, &o->tool_call_parser,
           "the model's tool-call format (auto: the one the chat template teaches)");
  f.section("HTTP");
  f.string("api-key", "KEY", &o->api_key, "require Authorization: Bearer KEY").env("KR_API_KEY");
  f.string("cors-origin", "ORIGIN", &o->cors_origin, "send CORS headers for this origin").env("KR_CORS_ORIGIN");
  f.switch_("no-webui", &o->no_webui, "do not serve the chat page at GET /");
  f.int32("http-workers", 1, 256, &o->http_workers, "HTTP handler threads");
  f.number("read-timeout-s", 0.01, 86400, &o->read_timeout_s, "a request must arrive completely within this")
      .env("KR_READ_TIMEOUT_S");
  f.number("shutdown-timeout-s", 0, 86400, &o->shutdown_timeout_s,
           "on SIGTERM/SIGINT, finish in-flight requests for up to this")
      .env("KR_SHUTDOWN_TIMEOUT_S");
  f.section("metrics");
  f.switch_("metrics-export", &o->metrics_export, "also serve /metrics, /health, /ready, /stats on --metrics-port")
      .env("KR_METRICS_EXPORT");
  f.int32("metrics-port", 0, 65535, &o->metrics_port, "the metrics port (giving it turns --metrics-export on)")
      .env("KR_METRICS_PORT");
  f.switch_("metrics-vllm-names", &o->metrics_vllm_names, "also export every series under vLLM's names")
      .env("KR_METRICS_VLLM_NAMES");
  f.section("engine (docs/configuration.md; each also the KR_ variable named)");
  for (const EngineVariable& v : engine_variables()) {
    const std::string name = v.name;
    f.custom(v.flag().c_str(), v.value_name().c_str(), v.default_value(), v.help,
             [&v, name, engine_flags](const std::string& text) -> std::optional<std::string> {
               EngineConfig scratch;
               std::string expected;
               if (!v.parse(text, &scratch, &expected)) return "expected " + expected;
               (*engine_flags)[name] = text;
               return std::nullopt;
             });
  }
}

const char* const kSynopsis = "[options]   (serve is also the default command)";

}  // namespace

std::string serve_help() {
  ServeOptions o;
  std::map<std::string, std::string> engine_flags;
  FlagSet flags("kr-serve serve", kSynopsis);
  add_serve_flags(flags, &o, &engine_flags);
  return flags.help();
}

int run_serve(int argc, char** argv) {
  ServeOptions o;
  std::map<std::string, std::string> engine_flags;
  FlagSet flags("kr-serve serve", kSynopsis);
  add_serve_flags(flags, &o, &engine_flags);
  if (const int rc = parse_command_line(flags, "serve", argc, argv); rc >= 0) return rc;
  if (flags.given("metrics-port")) o.metrics_export = true;
  if (o.model_dir.empty()) o.model_dir = default_model_dir();
  if (o.served_model_name.empty()) {
    std::string dir = o.model_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    o.served_model_name = dir.substr(dir.find_last_of('/') + 1);
  }
  auto parsed = engine_config_from_env(environment(), engine_flags);
  if (!parsed.ok()) return usage_error(flags, "serve", parsed.status().message());
  for (const std::string& notice : parsed->notices) KR_LOG(kWarn, "%s", notice.c_str());
  const int32_t max_model_len = o.engine.max_model_len;
  o.engine = parsed->config;
  o.engine.max_model_len = max_model_len;
  return serve(o);
}

}  // namespace kr
