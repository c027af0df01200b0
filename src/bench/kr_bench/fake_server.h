// A loopback OpenAI-style server for tests: GET /health, GET /v1/models and a
// streamed POST /v1/chat/completions that sends one role chunk, then
// max_tokens content chunks with known delays, a finish chunk, an optional
// usage chunk and [DONE]. It tracks how many streams run at once, so tests
// can check the client's concurrency. Start/stop from one thread; the
// counters may be read from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace kr::bench {

struct FakeServerOptions {
  int first_token_delay_ms = 0;
  int inter_token_delay_ms = 0;
  bool chunked = true;     // false: body delimited by connection close
  bool send_usage = true;  // honour stream_options.include_usage
  int fail_every_n = 0;    // every n-th chat request gets HTTP 500 (0: never)
};

class FakeServer {
 public:
  explicit FakeServer(FakeServerOptions opts) : opts_(opts) {}
  ~FakeServer() { stop(); }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  // Listens on host:port (port 0 = any free one); returns the port, or -1.
  int start(const char* host = "127.0.0.1", int port = 0);
  void stop();
  // Blocks until stop() is called from another thread or a signal handler flips `stop_flag`.
  void serve_until(const std::atomic<bool>& stop_flag);

  int chat_requests() const { return chat_requests_.load(); }
  int max_concurrent_streams() const { return max_streams_.load(); }

 private:
  void accept_loop();
  void handle(int fd);

  FakeServerOptions opts_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;  // guarded by mu_
  std::atomic<int> chat_requests_{0};
  std::atomic<int> streams_{0};
  std::atomic<int> max_streams_{0};
};

}  // namespace kr::bench
