// Engine and scheduler configuration. Every setting is a KR_* environment
// variable and a flag of `kr-serve serve` (the name without KR_, lower case,
// '-' for '_'); the seed's MLX_* names are aliases of a few (docs/configuration.md
// explains them). engine_variables() is the one table of them: parsing, the
// serve flags and their --help come from it.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace kr {

struct AutoTuneConfig {
  bool enabled = false;                  // KR_AUTO_TUNE
  double target_ttft_p99_ms = 100.0;     // KR_AUTO_TUNE_TARGET_TTFT_MS
  double target_itl_p99_ms = 50.0;       // KR_AUTO_TUNE_TARGET_ITL_MS
  double ema_alpha = 0.3;
  int32_t min_admissions_per_step = 2;   // KR_AUTO_TUNE_MIN_BATCH_SIZE
  int32_t max_admissions_per_step = 64;  // KR_AUTO_TUNE_MAX_BATCH_SIZE
  double min_window_ms = 0.0, max_window_ms = 10.0;
  int32_t interval_steps = 10;           // at most one adjustment per this many steps
};

struct EngineConfig {
  bool scheduler_on = true;           // KR_GPU_SCHEDULER; off = baseline: one request at a time, FIFO
  double window_ms = 1.0;             // KR_GPU_SCHEDULER_WINDOW_MS
  int32_t admissions_per_step = 8;    // KR_GPU_SCHEDULER_BATCH_SIZE: new sequences admitted per step
  bool fast_path = true;              // KR_FAST_PATH
  bool adaptive_window = false;       // KR_ADAPTIVE_WINDOW
  AutoTuneConfig auto_tune;
  int32_t max_num_seqs = 256;         // KR_MAX_NUM_SEQS: running-sequence cap
  int32_t max_batched_tokens = 2048;  // KR_MAX_BATCHED_TOKENS: tokens per step (chunked prefill)
  double max_step_ms = 20.0;          // KR_MAX_STEP_MS: estimated step time while decodes run; 0 = off
  int32_t step_token_align = 16;      // KR_STEP_TOKEN_ALIGN: a time-cut chunk ends the step at a multiple of this; 1 = off
  int32_t max_queued_requests = 4096; // KR_MAX_QUEUED_REQUESTS: submit() refuses beyond
  double background_max_wait_s = 30;  // KR_BACKGROUND_MAX_WAIT_S: aging bound for low priorities
  double request_timeout_s = 0;       // KR_REQUEST_TIMEOUT_S: 0 = none
  int32_t max_model_len = 0;          // --max-model-len: context limit below the model's; 0 = the model's
  bool prefix_caching = true;         // KR_PREFIX_CACHING: reuse cached KV of shared prefixes (--no-prefix-caching)
  double kv_offload_gb = 0;           // KR_KV_OFFLOAD_GB: host-memory tier of the prefix cache, GiB; 0 = none
  int32_t kv_cache_dtype = 0;         // KR_KV_CACHE_DTYPE: KvCacheDType (0 auto, 1 bf16, 2 fp8)
  bool overlap_decode = true;         // KR_OVERLAP_DECODE: launch a greedy decode step before reading the last one's tokens
};

// One setting of the table.
struct EngineVariable {
  enum Kind { kBool, kInt, kDouble, kChoice };  // kChoice: as_int holds the index in `choices`
  const char* name;   // KR_...
  const char* alias;  // the seed's MLX_... name, or nullptr
  Kind kind;
  double lo, hi;      // range of kInt / kDouble
  const char* help;
  bool* (*as_bool)(EngineConfig&);
  int32_t* (*as_int)(EngineConfig&);
  double* (*as_double)(EngineConfig&);
  const char* const* choices = nullptr;  // kChoice: the values, `num_choices` of them
  int num_choices = 0;

  std::string flag() const;           // "gpu-scheduler-batch-size" (without --)
  std::string value_name() const;     // "on|off", "N", "MS", "auto|bf16|fp8", ...
  std::string default_value() const;  // in EngineConfig{}, as text
  // Parses `text` into c; on failure returns false and sets *expected ("an integer in [1, 4096]").
  bool parse(const std::string& text, EngineConfig* c, std::string* expected) const;
};
std::span<const EngineVariable> engine_variables();

struct ParsedEngineConfig {
  EngineConfig config;
  // One line per seed alias used (e.g. "MLX_FAST_PATH is a deprecated alias; use KR_FAST_PATH");
  // the caller logs them.
  std::vector<std::string> notices;
};

// Reads the KR_* variables (and the seed's MLX_* aliases) from `env`, then
// `flags` (same names, e.g. {"KR_MAX_NUM_SEQS", "64"}) on top: flags win, and a
// KR_ name wins over its MLX_ alias. Unknown names are ignored. A bad value is
// InvalidArgument naming the variable and the allowed values. Any thread.
StatusOr<ParsedEngineConfig> engine_config_from_env(const std::map<std::string, std::string>& env,
                                                    const std::map<std::string, std::string>& flags = {});

}  // namespace kr
