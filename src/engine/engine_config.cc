#include "engine/engine_config.h"

#include <cerrno>
#include <cmath>
#include <cctype>
#include <cstdlib>

namespace kr {
namespace {

// Looks a name up in flags, then env (KR_ name before its MLX_ alias).
class Source {
 public:
  Source(const std::map<std::string, std::string>& env, const std::map<std::string, std::string>& flags,
         std::vector<std::string>* notices)
      : env_(env), flags_(flags), notices_(notices) {}

  // Sets *used to the name the value came from (for error messages).
  const std::string* find(const std::string& name, const char* alias, std::string* used) {
    *used = name;
    if (auto it = flags_.find(name); it != flags_.end()) return &it->second;
    if (auto it = env_.find(name); it != env_.end()) return &it->second;
    if (alias != nullptr) {
      if (auto it = env_.find(alias); it != env_.end()) {
        *used = alias;
        notices_->push_back(std::string(alias) + " is a deprecated alias; use " + name);
        return &it->second;
      }
    }
    return nullptr;
  }

 private:
  const std::map<std::string, std::string>& env_;
  const std::map<std::string, std::string>& flags_;
  std::vector<std::string>* notices_;
};

Status parse_bool(Source& src, const std::string& name, const char* alias, bool* out) {
  std::string used;
  const std::string* v = src.find(name, alias, &used);
  if (v == nullptr) return Status::Ok();
  std::string s;
  for (char c : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "1" || s == "on" || s == "true" || s == "yes") {
    *out = true;
  } else if (s == "0" || s == "off" || s == "false" || s == "no") {
    *out = false;
  } else {
    return InvalidArgument(used + "=\"" + *v + "\": expected on|off (also 1|0, true|false, yes|no)");
  }
  return Status::Ok();
}

Status parse_double(Source& src, const std::string& name, const char* alias, double lo, double hi, double* out) {
  std::string used;
  const std::string* v = src.find(name, alias, &used);
  if (v == nullptr) return Status::Ok();
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(v->c_str(), &end);
  if (v->empty() || end != v->c_str() + v->size() || errno != 0 || !std::isfinite(d) || d < lo || d > hi) {
    return InvalidArgument(used + "=\"" + *v + "\": expected a number in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
  }
  *out = d;
  return Status::Ok();
}

Status parse_int(Source& src, const std::string& name, const char* alias, int64_t lo, int64_t hi, int32_t* out) {
  std::string used;
  const std::string* v = src.find(name, alias, &used);
  if (v == nullptr) return Status::Ok();
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || end != v->c_str() + v->size() || errno != 0 || n < lo || n > hi) {
    return InvalidArgument(used + "=\"" + *v + "\": expected an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
  }
  *out = static_cast<int32_t>(n);
  return Status::Ok();
}

}  // namespace

StatusOr<ParsedEngineConfig> engine_config_from_env(const std::map<std::string, std::string>& env,
                                                    const std::map<std::string, std::string>& flags) {
  ParsedEngineConfig r;
  EngineConfig& c = r.config;
  AutoTuneConfig& t = c.auto_tune;
  Source src(env, flags, &r.notices);
  KR_RETURN_IF_ERROR(parse_bool(src, "KR_GPU_SCHEDULER", "MLX_GPU_SCHEDULER", &c.scheduler_on));
  KR_RETURN_IF_ERROR(parse_double(src, "KR_GPU_SCHEDULER_WINDOW_MS", "MLX_GPU_SCHEDULER_WINDOW_MS", 0, 1000,
                                  &c.window_ms));
  KR_RETURN_IF_ERROR(parse_int(src, "KR_GPU_SCHEDULER_BATCH_SIZE", "MLX_GPU_SCHEDULER_BATCH_SIZE", 1, 4096,
                               &c.admissions_per_step));
  KR_RETURN_IF_ERROR(parse_bool(src, "KR_FAST_PATH", "MLX_FAST_PATH", &c.fast_path));
  KR_RETURN_IF_ERROR(parse_bool(src, "KR_ADAPTIVE_WINDOW", "MLX_ADAPTIVE_WINDOW", &c.adaptive_window));
  KR_RETURN_IF_ERROR(parse_bool(src, "KR_AUTO_TUNE", "MLX_AUTO_TUNE", &t.enabled));
  KR_RETURN_IF_ERROR(parse_double(src, "KR_AUTO_TUNE_TARGET_TTFT_MS", nullptr, 0.001, 1e6, &t.target_ttft_p99_ms));
  KR_RETURN_IF_ERROR(parse_double(src, "KR_AUTO_TUNE_TARGET_ITL_MS", nullptr, 0.001, 1e6, &t.target_itl_p99_ms));
  KR_RETURN_IF_ERROR(parse_int(src, "KR_AUTO_TUNE_MIN_BATCH_SIZE", nullptr, 1, 4096, &t.min_admissions_per_step));
  KR_RETURN_IF_ERROR(parse_int(src, "KR_AUTO_TUNE_MAX_BATCH_SIZE", nullptr, 1, 4096, &t.max_admissions_per_step));
  KR_RETURN_IF_ERROR(parse_double(src, "KR_AUTO_TUNE_MIN_WINDOW_MS", nullptr, 0, 1000, &t.min_window_ms));
  KR_RETURN_IF_ERROR(parse_double(src, "KR_AUTO_TUNE_MAX_WINDOW_MS", nullptr, 0, 1000, &t.max_window_ms));
  KR_RETURN_IF_ERROR(parse_int(src, "KR_AUTO_TUNE_INTERVAL_STEPS", nullptr, 1, 1000000, &t.interval_steps));
  KR_RETURN_IF_ERROR(parse_int(src, "KR_MAX_NUM_SEQS", nullptr, 1, 65536, &c.max_num_seqs));
  KR_RETURN_IF_ERROR(parse_int(src, "KR_MAX_BATCHED_TOKENS", nullptr, 1, 1 << 20, &c.max_batched_tokens));
  KR_RETURN_IF_ERROR(parse_int(src, "KR_MAX_QUEUED_REQUESTS", nullptr, 1, 1 << 24, &c.max_queued_requests));
  KR_RETURN_IF_ERROR(parse_double(src, "KR_BACKGROUND_MAX_WAIT_S", nullptr, 0, 1e6, &c.background_max_wait_s));
  KR_RETURN_IF_ERROR(parse_double(src, "KR_REQUEST_TIMEOUT_S", nullptr, 0, 1e7, &c.request_timeout_s));
  if (t.min_admissions_per_step > t.max_admissions_per_step) {
    return InvalidArgument("KR_AUTO_TUNE_MIN_BATCH_SIZE (" + std::to_string(t.min_admissions_per_step) +
                           ") must be <= KR_AUTO_TUNE_MAX_BATCH_SIZE (" + std::to_string(t.max_admissions_per_step) + ")");
  }
  if (t.min_window_ms > t.max_window_ms) {
    return InvalidArgument("KR_AUTO_TUNE_MIN_WINDOW_MS must be <= KR_AUTO_TUNE_MAX_WINDOW_MS");
  }
  return r;
}

}  // namespace kr
