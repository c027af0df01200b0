// Shared pieces of the JSON and Markdown reports. Pure functions, any thread.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/kr_bench/chat_client.h"
#include "bench/kr_bench/stats.h"
#include "bench/kr_bench/target.h"

namespace kr::bench {

// {"count","mean","median","p50","p90","p95","p99","std","min","max"}
nlohmann::json summary_json(const std::vector<double>& values);
// One raw request row (times in ms).
nlohmann::json row_json(int index, const std::string& prompt, const RequestResult& r);
// timestamp, commit, model, backend, gpu, server_bin/url, parameters.
nlohmann::json run_meta_json(const CommonOptions& opts, const std::string& benchmark);
nlohmann::json config_json(const ServerConfig& cfg);
// "12.3" with `digits` decimals; "n/a" for NaN.
std::string fmt(double v, int digits = 1);
// "+3.2%" / "-1.0%"
std::string fmt_pct(double v);

}  // namespace kr::bench
