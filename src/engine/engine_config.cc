#include "engine/engine_config.h"

#include <cctype>
#include <cstdio>

#include "backend/kv_cache_dtype.h"
#include "base/parse_number.h"

namespace kr {
namespace {

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

using V = EngineVariable;
constexpr auto kNoBool = static_cast<bool* (*)(EngineConfig&)>(nullptr);
constexpr auto kNoInt = static_cast<int32_t* (*)(EngineConfig&)>(nullptr);
constexpr auto kNoDouble = static_cast<double* (*)(EngineConfig&)>(nullptr);

#define KR_BOOL(field) [](EngineConfig& c) { return &c.field; }, kNoInt, kNoDouble
#define KR_INT(field) kNoBool, [](EngineConfig& c) { return &c.field; }, kNoDouble
#define KR_DOUBLE(field) kNoBool, kNoInt, [](EngineConfig& c) { return &c.field; }

const EngineVariable kVariables[] = {
    {"KR_GPU_SCHEDULER", "MLX_GPU_SCHEDULER", V::kBool, 0, 0,
     "off = baseline: one request at a time to completion, FIFO", KR_BOOL(scheduler_on)},
    {"KR_GPU_SCHEDULER_WINDOW_MS", "MLX_GPU_SCHEDULER_WINDOW_MS", V::kDouble, 0, 1000,
     "idle engine: wait this long for more arrivals before the first step", KR_DOUBLE(window_ms)},
    {"KR_GPU_SCHEDULER_BATCH_SIZE", "MLX_GPU_SCHEDULER_BATCH_SIZE", V::kInt, 1, 4096,
     "new requests admitted per step; that many waiting end the window", KR_INT(admissions_per_step)},
    {"KR_FAST_PATH", "MLX_FAST_PATH", V::kBool, 0, 0, "idle engine and one request queued: start at once",
     KR_BOOL(fast_path)},
    {"KR_ADAPTIVE_WINDOW", "MLX_ADAPTIVE_WINDOW", V::kBool, 0, 0, "the auto-tune controller moves the window only",
     KR_BOOL(adaptive_window)},
    {"KR_AUTO_TUNE", "MLX_AUTO_TUNE", V::kBool, 0, 0,
     "controller on the window and admissions per step from P99 TTFT / ITL", KR_BOOL(auto_tune.enabled)},
    {"KR_AUTO_TUNE_TARGET_TTFT_MS", nullptr, V::kDouble, 0.001, 1e6, "auto-tune: P99 TTFT target",
     KR_DOUBLE(auto_tune.target_ttft_p99_ms)},
    {"KR_AUTO_TUNE_TARGET_ITL_MS", nullptr, V::kDouble, 0.001, 1e6, "auto-tune: P99 inter-token latency target",
     KR_DOUBLE(auto_tune.target_itl_p99_ms)},
    {"KR_AUTO_TUNE_MIN_BATCH_SIZE", nullptr, V::kInt, 1, 4096, "auto-tune: fewest admissions per step",
     KR_INT(auto_tune.min_admissions_per_step)},
    {"KR_AUTO_TUNE_MAX_BATCH_SIZE", nullptr, V::kInt, 1, 4096, "auto-tune: most admissions per step",
     KR_INT(auto_tune.max_admissions_per_step)},
    {"KR_AUTO_TUNE_MIN_WINDOW_MS", nullptr, V::kDouble, 0, 1000, "auto-tune: shortest window",
     KR_DOUBLE(auto_tune.min_window_ms)},
    {"KR_AUTO_TUNE_MAX_WINDOW_MS", nullptr, V::kDouble, 0, 1000, "auto-tune: longest window",
     KR_DOUBLE(auto_tune.max_window_ms)},
    {"KR_AUTO_TUNE_INTERVAL_STEPS", nullptr, V::kInt, 1, 1000000, "auto-tune: at most one change per this many steps",
     KR_INT(auto_tune.interval_steps)},
    {"KR_MAX_NUM_SEQS", nullptr, V::kInt, 1, 65536, "running-sequence cap (also the sampled rows per step)",
     KR_INT(max_num_seqs)},
    {"KR_MAX_BATCHED_TOKENS", nullptr, V::kInt, 1, 1 << 20, "tokens per step (the chunked-prefill budget)",
     KR_INT(max_batched_tokens)},
    {"KR_MAX_STEP_MS", nullptr, V::kDouble, 0, 1e6,
     "while decodes run, prefill chunks are cut so a step's estimated time (attention included) stays "
     "under this; 0 = token budget only",
     KR_DOUBLE(max_step_ms)},
    {"KR_STEP_TOKEN_ALIGN", nullptr, V::kInt, 1, 4096,
     "a prefill chunk cut by the step-time budget is cut further so that the step's token count is a "
     "multiple of this (few distinct matmul shapes, each warmed up at load); 1 = off",
     KR_INT(step_token_align)},
    {"KR_MAX_QUEUED_REQUESTS", nullptr, V::kInt, 1, 1 << 24, "waiting requests beyond which a request gets 503",
     KR_INT(max_queued_requests)},
    {"KR_BACKGROUND_MAX_WAIT_S", nullptr, V::kDouble, 0, 1e6,
     "aging: a background request waits at most this long before it goes first", KR_DOUBLE(background_max_wait_s)},
    {"KR_REQUEST_TIMEOUT_S", nullptr, V::kDouble, 0, 1e7, "a request still running after this fails; 0 = none",
     KR_DOUBLE(request_timeout_s)},
    {"KR_PREFIX_CACHING", nullptr, V::kBool, 0, 0,
     "automatic prefix caching: reuse the KV of cached prompt prefixes (--no-prefix-caching: off)",
     KR_BOOL(prefix_caching)},
    {"KR_KV_OFFLOAD_GB", nullptr, V::kDouble, 0, 1e6,
     "host-memory tier of the prefix cache in GiB (pinned on CUDA); 0 = none", KR_DOUBLE(kv_offload_gb)},
    {"KR_KV_CACHE_DTYPE", nullptr, V::kChoice, 0, 0,
     "KV cache elements: fp8 = e4m3 with the checkpoint's per-layer k/v scales (else 1.0), twice the blocks of "
     "bf16; auto = fp8 when the checkpoint declares an FP8 KV cache, else bf16",
     KR_INT(kv_cache_dtype), kKvCacheDTypeNames, 3},
    {"KR_OVERLAP_DECODE", nullptr, V::kBool, 0, 0,
     "while every running request decodes greedily and nothing waits, each step is launched before the last "
     "step's tokens are read (its token ids come from the last step's argmax on the device)",
     KR_BOOL(overlap_decode)},
};
static_assert(sizeof(kKvCacheDTypeNames) / sizeof(kKvCacheDTypeNames[0]) == 3);

#undef KR_BOOL
#undef KR_INT
#undef KR_DOUBLE

}  // namespace

std::span<const EngineVariable> engine_variables() { return kVariables; }

std::string EngineVariable::flag() const {
  std::string f;
  for (const char* p = name + 3; *p; ++p) f += *p == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
  return f;
}

std::string EngineVariable::value_name() const {
  if (kind == kBool) return "on|off";
  if (kind == kChoice) {
    std::string v;
    for (int i = 0; i < num_choices; ++i) {
      if (i > 0) v += '|';
      v += choices[i];
    }
    return v;
  }
  const std::string n = name;
  if (n.size() > 3 && n.compare(n.size() - 3, 3, "_MS") == 0) return "MS";
  if (n.size() > 2 && n.compare(n.size() - 2, 2, "_S") == 0) return "S";
  return "N";
}

std::string EngineVariable::default_value() const {
  EngineConfig c;
  switch (kind) {
    case kBool: return *as_bool(c) ? "on" : "off";
    case kInt: return std::to_string(*as_int(c));
    case kDouble: return number_text(*as_double(c));
    case kChoice: return choices[*as_int(c)];
  }
  return "";
}

bool EngineVariable::parse(const std::string& text, EngineConfig* c, std::string* expected) const {
  switch (kind) {
    case kBool:
      *expected = "on|off (also 1|0, true|false, yes|no)";
      return parse_bool(text, as_bool(*c));
    case kInt: {
      *expected = "an integer in [" + std::to_string(static_cast<int64_t>(lo)) + ", " +
                  std::to_string(static_cast<int64_t>(hi)) + "]";
      int64_t v = 0;
      if (!parse_int(text, static_cast<int64_t>(lo), static_cast<int64_t>(hi), &v)) return false;
      *as_int(*c) = static_cast<int32_t>(v);
      return true;
    }
    case kDouble:
      *expected = "a number in [" + number_text(lo) + ", " + number_text(hi) + "]";
      return parse_double(text, lo, hi, as_double(*c));
    case kChoice:
      *expected = "one of ";
      *expected += value_name();
      for (int i = 0; i < num_choices; ++i)
        if (text == choices[i]) {
          *as_int(*c) = i;
          return true;
        }
      return false;
  }
  return false;
}

StatusOr<ParsedEngineConfig> engine_config_from_env(const std::map<std::string, std::string>& env,
                                                    const std::map<std::string, std::string>& flags) {
  ParsedEngineConfig r;
  for (const EngineVariable& v : kVariables) {
    // Flags, then KR_ in the environment, then the alias.
    std::string used = v.name;
    const std::string* text = nullptr;
    if (auto it = flags.find(v.name); it != flags.end()) {
      text = &it->second;
    } else if (auto e = env.find(v.name); e != env.end()) {
      text = &e->second;
    } else if (v.alias != nullptr) {
      if (auto a = env.find(v.alias); a != env.end()) {
        text = &a->second;
        used = v.alias;
        r.notices.push_back(std::string(v.alias) + " is a deprecated alias; use " + v.name);
      }
    }
    if (text == nullptr) continue;
    std::string expected;
    if (!v.parse(*text, &r.config, &expected)) return InvalidArgument(used + "=\"" + *text + "\": expected " + expected);
  }
  const AutoTuneConfig& t = r.config.auto_tune;
  if (t.min_admissions_per_step > t.max_admissions_per_step) {
    return InvalidArgument("KR_AUTO_TUNE_MIN_BATCH_SIZE (" + std::to_string(t.min_admissions_per_step) +
                           ") must be <= KR_AUTO_TUNE_MAX_BATCH_SIZE (" + std::to_string(t.max_admissions_per_step) +
                           ")");
  }
  if (t.min_window_ms > t.max_window_ms) {
    return InvalidArgument("KR_AUTO_TUNE_MIN_WINDOW_MS must be <= KR_AUTO_TUNE_MAX_WINDOW_MS");
  }
  return r;
}

}  // namespace kr
