// serve: starts the HTTP server, loads the models marked to load at start,
// serves until SIGTERM/SIGINT, then drains. Several models are served through a
// ModelRegistry (server/model_registry.h), each with its own engine thread and
// share of the memory. The command line and environment are parsed by the app
// (`kr-serve serve`, src/app/serve_cmd.cc) into ServeOptions.
//
// Threading: the process's main thread; it blocks SIGINT/SIGTERM/SIGPIPE
// before starting any thread and waits for them with sigwait.
#pragma once

#include <cstdint>
#include <string>

#include <vector>

#include "engine/engine_config.h"
#include "server/models_config.h"

namespace kr {

struct ServeOptions {
  // The models (checked by check_models; names set; each spec's engine resolved).
  // The first is the default for requests without "model".
  std::vector<ModelSpec> models;
  int32_t max_loaded_models = 0;  // 0: no limit
  double model_idle_ttl_s = 0;    // 0: idle models stay loaded
  std::string host = "127.0.0.1";
  int32_t port = 8080;
  std::string backend = "auto";  // auto | cpu | cuda
  std::string api_key;           // empty: no authentication
  int32_t threads = 0;           // CPU backend threads; 0 = all cores
  int64_t kv_cache_mb = 1024;    // CPU backend KV cache (split between the models by their shares)
  double gpu_memory_fraction = 0.9;  // CUDA: share of free device memory for the KV cache
  std::string cuda_pdl = "1";    // CUDA: programmatic dependent launch on the batch-1 GEMVs ("1" | "0")
  int32_t cuda_flash_prefill_variant = 1;  // CUDA: CudaOptions::flash_prefill_variant
  int32_t cuda_flash_prefill_short_max_keys = 2048;  // CUDA: CudaOptions::flash_prefill_short_max_keys
  std::string cuda_decode_stack_kernel = "0";  // CUDA: CudaOptions::decode_stack_kernel ("1" | "0")
  std::string cors_origin;       // empty: no CORS headers
  int32_t http_workers = 4;
  bool metrics_export = false;   // also listen on metrics_port
  bool metrics_vllm_names = false;
  int32_t metrics_port = 9090;
  double read_timeout_s = 30;
  double shutdown_timeout_s = 30;
  bool no_webui = false;         // no chat page at GET /
  // Every model's (each model's "auto" reads its own chat template):
  // auto (the chat template's), none, qwen3, deepseek_r1 (vLLM's names).
  std::string reasoning_parser = "auto";
  // auto (the chat template's), none, llama3_json, hermes, mistral (vLLM's names).
  std::string tool_call_parser = "auto";
};

// Returns the process exit code: 0 after a clean drain, 1 on a runtime error.
int serve(const ServeOptions& options);

}  // namespace kr
