// serve: starts the HTTP server, loads the model, serves until SIGTERM/SIGINT,
// then drains. The command line and environment are parsed by the app
// (`kr-serve serve`, src/app/serve_cmd.cc) into ServeOptions.
//
// Threading: the process's main thread; it blocks SIGINT/SIGTERM/SIGPIPE
// before starting any thread and waits for them with sigwait.
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine_config.h"

namespace kr {

struct ServeOptions {
  std::string model_dir;
  std::string host = "127.0.0.1";
  int32_t port = 8080;
  std::string backend = "auto";  // auto | cpu | cuda
  std::string api_key;           // empty: no authentication
  int32_t threads = 0;           // CPU backend threads; 0 = all cores
  int64_t kv_cache_mb = 1024;    // CPU backend KV cache
  double gpu_memory_fraction = 0.9;  // CUDA: share of free device memory for the KV cache
  std::string cuda_pdl = "1";    // CUDA: programmatic dependent launch on the batch-1 GEMVs ("1" | "0")
  std::string served_model_name;
  std::string cors_origin;       // empty: no CORS headers
  int32_t http_workers = 4;
  bool metrics_export = false;   // also listen on metrics_port
  bool metrics_vllm_names = false;
  int32_t metrics_port = 9090;
  double read_timeout_s = 30;
  double shutdown_timeout_s = 30;
  bool dummy_weights = false;
  bool no_webui = false;         // no chat page at GET /
  std::string arch;              // built-in shape preset (with dummy_weights), e.g. llama-3.2-3b
  // auto (the chat template's), none, qwen3, deepseek_r1 (vLLM's names).
  std::string reasoning_parser = "auto";
  // auto (the chat template's), none, llama3_json, hermes, mistral (vLLM's names).
  std::string tool_call_parser = "auto";
  EngineConfig engine;           // engine.max_model_len: --max-model-len
};

// Returns the process exit code: 0 after a clean drain, 1 on a runtime error.
int serve(const ServeOptions& options);

}  // namespace kr
