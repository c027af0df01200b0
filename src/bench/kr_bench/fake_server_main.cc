// kr-bench-fake-server: the test FakeServer behind kr-serve's command line
// (`serve --model DIR --host H --port P ...`), so kr-bench's end-to-end tests
// can start it like the real server. Extra options: --first-token-ms N,
// --token-ms N. Other options are accepted and ignored. Stops on SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/kr_bench/fake_server.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  kr::bench::FakeServerOptions o;
  std::string host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--host") host = argv[++i];
    else if (a == "--port") port = std::atoi(argv[++i]);
    else if (a == "--first-token-ms") o.first_token_delay_ms = std::atoi(argv[++i]);
    else if (a == "--token-ms") o.inter_token_delay_ms = std::atoi(argv[++i]);
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  kr::bench::FakeServer server(o);
  if (server.start(host.c_str(), port) < 0) {
    std::fprintf(stderr, "kr-bench-fake-server: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }
  std::fprintf(stderr, "kr-bench-fake-server: listening on %s:%d (scheduler %s)\n", host.c_str(), port,
               std::getenv("KR_GPU_SCHEDULER") ? std::getenv("KR_GPU_SCHEDULER") : "unset");
  server.serve_until(g_stop);
  server.stop();
  return 0;
}
