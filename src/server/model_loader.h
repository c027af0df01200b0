// load_served_model: what `kr-serve serve` does to load one model of its list:
// tokenizer and chat template from the folder, the grammar compiler over its
// vocabulary with its tool-call format and reasoning parser, a backend of its own with the
// model's share of the memory, the weights, the KV pool, and an engine thread.
// It is the ModelRegistry's loader (server/model_registry.h).
//
// Memory: on the CPU a model's KV pool is its share of --kv-cache-mb. On CUDA a
// model with the whole device (share 1) keeps the backend's own rule (the KV
// cache takes --gpu-memory-fraction of the memory left after the weights); with
// several models, a model's weights, workspace and KV pool together stay within
// its share of device_budget_bytes (the free memory at start times
// --gpu-memory-fraction).
//
// Threading: load_served_model on the registry's loader thread (the main
// thread for tests); the other functions on any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "server/model_registry.h"
#include "server/models_config.h"

namespace kr {

class Metrics;

struct ModelLoaderSettings {
  std::string backend = "auto";      // auto | cpu | cuda
  int32_t threads = 0;               // CPU backend threads; 0 = all cores
  int64_t kv_cache_mb = 1024;        // CPU: the KV cache all models share
  double gpu_memory_fraction = 0.9;  // CUDA
  bool cuda_pdl = true;
  int32_t cuda_flash_prefill_variant = 1;  // CUDA: CudaOptions::flash_prefill_variant
  int32_t cuda_flash_prefill_short_max_keys = 2048;  // CUDA: CudaOptions::flash_prefill_short_max_keys
  bool cuda_decode_stack_kernel = false;  // CUDA: CudaOptions::decode_stack_kernel
  int64_t device_budget_bytes = 0;   // CUDA, several models: what the shares divide
  const Clock* clock = nullptr;
  // Structured outputs (structured_output.h): auto reads the model's chat template.
  std::string reasoning_parser = "auto";  // auto | none | qwen3 | deepseek_r1
  std::string tool_call_parser = "auto";  // auto | none | llama3_json | hermes | mistral
};

StatusOr<std::unique_ptr<LoadedModel>> load_served_model(const ModelSpec& spec, double memory_share, Metrics* metrics,
                                                         const ModelLoaderSettings& settings);

// Bytes of a model's weights as stored (its *.safetensors files), or of its
// dummy shape in bf16; 0 when unknown. For splitting memory by weight size.
uint64_t model_weight_bytes(const ModelSpec& spec);

// Whether the server will run on CUDA, and the device's free and total bytes now.
bool will_use_cuda(const std::string& backend);
bool device_memory(int64_t* free_bytes, int64_t* total_bytes);

}  // namespace kr
