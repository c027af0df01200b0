// kr-bench swap: start-up and model-swap times of kr-serve serving several
// models with --max-loaded-models 1. Starts the server on a models config,
// measures the cold start (spawn to /ready, and the server's own
// krserve_startup_seconds), then asks each model in turn for one token, so
// that every request swaps: unload the loaded model, load the asked one. Each
// swap's request time and the server's load and unload times (from
// /v1/models) are printed and saved as JSON.
//
// Threading: the main thread.
#pragma once

#include <string>

namespace kr::bench {

struct SwapOptions {
  std::string server_bin;
  std::string models_config;   // two or more [[model]] tables
  std::string backend = "cpu";
  std::string extra_server_args;
  int rounds = 3;              // each round asks every model once
  std::string out_dir = "bench/results";
  int startup_timeout_s = 600;
  int request_timeout_s = 600;
};

// Returns the exit code (0 ok, 1 failure).
int run_swap(const SwapOptions& options);

}  // namespace kr::bench
