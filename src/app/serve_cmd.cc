// kr-serve serve: the OpenAI-compatible HTTP server. Parses the flags, the
// KR_* environment and the models config file (--models-config) into
// ServeOptions and runs server/serve_main.h's serve().
#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/commands.h"
#include "base/log.h"
#include "model/hf_config.h"
#include "server/models_config.h"
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

// The flags that name the models; the rest go straight into ServeOptions.
struct ModelFlags {
  std::vector<std::string> dirs;   // --model, in order
  std::vector<std::string> names;  // --served-model-name, the i-th for the i-th --model
  std::string config_file;         // --models-config
  bool dummy_weights = false;
  std::string arch;
  int32_t max_model_len = 0;
  bool no_prefix_caching = false;  // --no-prefix-caching: KR_PREFIX_CACHING=off under every model's settings
};

void add_serve_flags(FlagSet& f, ServeOptions* o, ModelFlags* mf, std::map<std::string, std::string>* engine_flags) {
  f.custom("model", "DIR", "the bundled models/tiny-llama3",
           "Hugging Face model folder; give it again for each further model (the first is the default)",
           [mf](const std::string& dir) -> std::optional<std::string> {
             if (dir.empty()) return "expected a folder";
             mf->dirs.push_back(dir);
             return std::nullopt;
           });
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
  f.int32("flash-prefill-variant", 0, 5, &o->cuda_flash_prefill_variant,
          "CUDA: shape of the flash prefill kernel at head dim 128 above --flash-prefill-short-max-keys (1, kv2, is "
          "the fastest measured there; kr-cuda-bench --attn-bench compares them)");
  f.int32("flash-prefill-short-max-keys", 0, 1 << 24, &o->cuda_flash_prefill_short_max_keys,
          "CUDA: prefills over at most this many keys run prefill variant 5 (w8-bc128, the fastest measured there; "
          "0: --flash-prefill-variant everywhere)");
  f.choice("decode-stack-kernel", {"0", "1"}, &o->cuda_decode_stack_kernel,
           "CUDA: one-token steps run every decoder layer as one persistent kernel on Llama-style models with 4-bit "
           "weights of 64- or 128-column groups (keeps a second copy of those weights; contexts up to 512)");
  f.int32("max-model-len", 1, 1 << 24, &mf->max_model_len, "context limit below the model's")
      .default_text("the model's, capped by the KV cache");
  f.custom("served-model-name", "NAME", "the model folder's name",
           "the model id the API shows; once per --model, in the same order",
           [mf](const std::string& name) -> std::optional<std::string> {
             if (name.empty()) return "expected a name";
             mf->names.push_back(name);
             return std::nullopt;
           });
  f.switch_("dummy-weights", &mf->dummy_weights, "random weights of the configured shape (benchmarks)");
  f.string("arch", "NAME", &mf->arch, "built-in shape instead of DIR/config.json, with --dummy-weights (llama-3.2-3b)");
  f.section("several models (docs/configuration.md)");
  f.string("models-config", "FILE", &mf->config_file,
           "TOML file listing the models: path, name, memory share, engine settings (instead of --model)")
      .default_text("none");
  f.int32("max-loaded-models", 0, 4096, &o->max_loaded_models,
          "most models loaded at once; a request for another unloads the least recently used idle one (0: no limit)")
      .env("KR_MAX_LOADED_MODELS");
  f.number("model-idle-ttl-s", 0, 1e9, &o->model_idle_ttl_s,
           "unload a model after this long without requests; its next request loads it again (0: never)")
      .env("KR_MODEL_IDLE_TTL_S");
  f.section("structured outputs and tools");
  f.choice("reasoning-parser", {"auto", "none", "qwen3", "deepseek_r1"}, &o->reasoning_parser,
           "split <think> blocks into reasoning_content (auto: when the model's chat template has them)");
  f.choice("tool-call-parser", {"auto", "none", "llama3_json", "hermes", "mistral"}, &o->tool_call_parser,
           "the models' tool-call format (auto: the one each model's chat template teaches)");
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
  f.switch_("no-prefix-caching", &mf->no_prefix_caching,
            "turn automatic prefix caching off (the same as --prefix-caching off)");
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

std::string folder_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir.substr(dir.find_last_of('/') + 1);
}

// The models from the flags or the file, each with its name and engine settings.
// Returns "" or the usage error.
std::string resolve_models(const FlagSet& flags, const ModelFlags& mf, const std::map<std::string, std::string>& env,
                           const std::map<std::string, std::string>& engine_flags, ServeOptions* o) {
  if (!mf.config_file.empty()) {
    if (!mf.dirs.empty() || !mf.names.empty())
      return "--models-config lists the models: --model and --served-model-name cannot be given with it";
    if (mf.dummy_weights || !mf.arch.empty())
      return "--dummy-weights and --arch go into the models config file (dummy_weights, arch) with --models-config";
    auto text = read_text_file(mf.config_file);
    if (!text.ok()) return "--models-config: " + text.status().message();
    auto config = parse_models_config(*text, mf.config_file);
    if (!config.ok()) return config.status().message();
    o->models = std::move(config->models);
    if (config->max_loaded_models && !flags.given("max-loaded-models") && env.count("KR_MAX_LOADED_MODELS") == 0)
      o->max_loaded_models = *config->max_loaded_models;
    if (config->model_idle_ttl_s && !flags.given("model-idle-ttl-s") && env.count("KR_MODEL_IDLE_TTL_S") == 0)
      o->model_idle_ttl_s = *config->model_idle_ttl_s;
  } else {
    std::vector<std::string> dirs = mf.dirs;
    if (dirs.empty()) dirs.push_back(default_model_dir());
    if (mf.names.size() > dirs.size())
      return "--served-model-name is given " + std::to_string(mf.names.size()) + " times for " +
             std::to_string(dirs.size()) + " --model";
    for (size_t i = 0; i < dirs.size(); ++i) {
      ModelSpec m;
      m.path = dirs[i];
      m.name = i < mf.names.size() ? mf.names[i] : "";
      m.dummy_weights = mf.dummy_weights;
      m.arch = mf.arch;
      o->models.push_back(std::move(m));
    }
  }
  for (ModelSpec& m : o->models) {
    if (m.path.empty()) m.path = default_model_dir();  // dummy weights of a preset: the bundled tokenizer
    if (m.name.empty()) m.name = !m.arch.empty() && m.path == default_model_dir() ? m.arch : folder_name(m.path);
    if (m.max_model_len == 0) m.max_model_len = mf.max_model_len;
    // The server's engine flags, then this model's own settings.
    std::map<std::string, std::string> settings = engine_flags;
    for (const auto& [k, v] : m.engine_settings) settings[k] = v;
    auto parsed = engine_config_from_env(env, settings);
    if (!parsed.ok()) return "model '" + m.name + "': " + parsed.status().message();
    m.engine = parsed->config;
  }
  if (Status s = check_models(o->models, o->max_loaded_models); !s.ok()) return s.message();
  // A mistyped folder is found now, not at the model's first request.
  for (const ModelSpec& m : o->models) {
    for (const char* file : {"config.json", "tokenizer.json"}) {
      if (std::string(file) == "config.json" && !m.arch.empty()) continue;
      struct stat st {};
      const std::string path = m.path + "/" + file;
      if (::stat(path.c_str(), &st) != 0) return "model '" + m.name + "': " + path + " does not exist";
    }
  }
  return "";
}

}  // namespace

std::string serve_help() {
  ServeOptions o;
  ModelFlags mf;
  std::map<std::string, std::string> engine_flags;
  FlagSet flags("kr-serve serve", kSynopsis);
  add_serve_flags(flags, &o, &mf, &engine_flags);
  return flags.help();
}

int run_serve(int argc, char** argv) {
  ServeOptions o;
  ModelFlags mf;
  std::map<std::string, std::string> engine_flags;
  FlagSet flags("kr-serve serve", kSynopsis);
  add_serve_flags(flags, &o, &mf, &engine_flags);
  if (const int rc = parse_command_line(flags, "serve", argc, argv); rc >= 0) return rc;
  if (flags.given("metrics-port")) o.metrics_export = true;
  const std::map<std::string, std::string> env = environment();
  auto parsed = engine_config_from_env(env, engine_flags);
  if (!parsed.ok()) return usage_error(flags, "serve", parsed.status().message());
  for (const std::string& notice : parsed->notices) KR_LOG(kWarn, "%s", notice.c_str());
  // --no-prefix-caching is KR_PREFIX_CACHING=off for every model (a model's own setting in the file wins).
  if (mf.no_prefix_caching) engine_flags["KR_PREFIX_CACHING"] = "off";
  if (const std::string e = resolve_models(flags, mf, env, engine_flags, &o); !e.empty())
    return usage_error(flags, "serve", e);
  return serve(o);
}

}  // namespace kr
