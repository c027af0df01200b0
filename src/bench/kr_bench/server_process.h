// Starts a server binary as a child process on a free loopback port, with
// extra environment variables, its output in a log file; waits for
// GET /health == 200; stops it with SIGTERM (SIGKILL after a grace period).
// One ServerProcess per child; use from one thread.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "bench/kr_bench/http_client.h"

namespace kr::bench {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
StatusOr<int> pick_free_port();

// Splits on whitespace; single and double quotes group words.
std::vector<std::string> split_args(const std::string& s);

struct ServerLaunch {
  std::string binary;
  std::vector<std::string> args;  // after argv[0]
  std::vector<std::pair<std::string, std::string>> env;  // added to / overriding ours
  std::string log_path;           // stdout+stderr of the child
};

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  Status start(const ServerLaunch& launch);
  // Polls /health until 200, the child exits, or timeout_ms passes.
  Status wait_healthy(const Endpoint& ep, int timeout_ms);
  // SIGTERM, then SIGKILL after grace_ms. Safe to call twice.
  void stop(int grace_ms = 10'000);
  // Last bytes of the log, to explain a failure.
  std::string log_tail(size_t bytes = 2000) const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

}  // namespace kr::bench
