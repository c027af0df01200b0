// kr-cuda-bench --attn-bench (attn_bench.cc): the CUDA backend's prefill
// attention alone (CudaBackend::attention on a chunked-prefill step, no model) for
// the Llama-3.2-3B shape (24 q heads, 8 kv heads, head dim 128, blocks of 16) at
// (chunk tokens, tokens already cached) in {(8192, 0), (8192, 32768), (8192,
// 112000), (2048, 30000), (512, 30000), (256, 30000), (4096, 0), (2048, 0), (1024, 0), (512, 0)}, once per prefill kernel
// variant (CudaOptions::flash_prefill_variant; a backend each, rounds alternating).
// Prints per case and variant the time per call (best and median of several rounds), the causal attention FLOPs
// (4 · D · Hq · pairs, pairs: the (query, key) pairs the chunk attends) and
// TFLOP/s next to the 775 TFLOP/s bf16 ceiling, and each variant's max |diff|
// against variant 0 over every output element (a variant that differs by more
// than the tolerance is marked DIFFERS and cannot be the case's best); then one
// line per case with its best variant. --json FILE saves it all.
//
// Threading: the main thread of kr-cuda-bench (it owns the backends it makes).
#pragma once

#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"

namespace kr {

struct AttnBenchSettings {
  CudaOptions options;          // flash_prefill_variant is set per variant
  std::vector<int> variants;    // empty: every variant; 0 (the reference) always runs first
  int rounds = 5;               // timed rounds per case and variant (best and median of them)
  std::string json_path;        // empty: no JSON
};

// Returns the process exit status: 0, or 1 when a variant differs from variant 0.
int run_attn_bench(const AttnBenchSettings& s);

}  // namespace kr
