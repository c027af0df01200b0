// What a benchmark talks to: the three server configurations of the
// 50-questions comparison, the options common to both commands, and Target,
// which starts our server for a configuration (or uses an external URL),
// waits for health and finds the model name to send. Use from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "bench/kr_bench/http_client.h"
#include "bench/kr_bench/server_process.h"

namespace kr::bench {

struct ServerConfig {
  std::string name;  // baseline | hybrid | full | external
  bool scheduler = false, auto_tune = false, metrics_export = false;
  std::vector<std::pair<std::string, std::string>> env() const;  // KR_GPU_SCHEDULER=on|off, ...
};

// baseline (scheduler off), hybrid (scheduler only), full (scheduler + auto-tune + metrics).
std::vector<ServerConfig> standard_configs();
// "baseline,full" -> those configurations, in the order given.
StatusOr<std::vector<ServerConfig>> select_configs(const std::string& csv);

struct CommonOptions {
  std::string server_bin;          // our server; unused with url
  std::string model_dir;
  std::string backend = "cpu";
  std::string extra_server_args;   // appended to `serve ...`
  std::string url;                 // external server: no process is started
  std::string served_model;        // "model" field; default: /v1/models, else the folder name
  std::string gpu;                 // default: nvidia-smi
  std::string out_dir = "bench/results";
  std::string questions_path;      // empty: the built-in copy of bench/questions/fifty.json
  int max_tokens = 50;
  double temperature = 0.7;
  int64_t seed = 1234;
  int warmup_requests = 2;
  int request_timeout_s = 600;
  int startup_timeout_s = 300;
  std::vector<ServerConfig> configs;
};

class Target {
 public:
  // Starts the server for `cfg` (log in out_dir/server-<name>.log) or checks the URL's /health.
  Status open(const CommonOptions& opts, const ServerConfig& cfg);
  void close();
  const Endpoint& endpoint() const { return ep_; }
  const std::string& model_name() const { return model_; }
  // kr-serve's build (its /stats "version": commit, "-dirty" if so); "" for other servers.
  const std::string& server_version() const { return server_version_; }

 private:
  Endpoint ep_;
  std::string model_;
  std::string server_version_;
  std::unique_ptr<ServerProcess> proc_;
};

// Questions from a JSON file: a list of strings, or {"questions": [...]}. An
// empty path reads the copy of bench/questions/fifty.json built into the binary,
// so that kr-bench runs from any folder.
StatusOr<std::vector<std::string>> load_questions(const std::string& path);
// What load_questions(path) reads, for reports: the path, or "built-in:fifty.json".
std::string questions_source(const std::string& path);

}  // namespace kr::bench
