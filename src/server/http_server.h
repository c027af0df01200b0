// HttpServer: a small epoll-based HTTP/1.1 server. One event-loop thread owns
// every socket (accept, read, parse, write); request handlers run on a small
// worker pool and answer through a ResponseWriter whose methods any thread may
// call: they queue bytes for the loop and wake it through an eventfd, so no
// handler and no engine callback ever blocks on a socket.
//
// Per connection: keep-alive, pipelining (one request at a time, in order;
// later requests wait in the input buffer), Content-Length and chunked
// bodies, header/body limits (431/413), a read deadline per request
// (slowloris), an idle keep-alive timeout, and a cap on unsent output (a
// client that stops reading a stream is dropped).
//
// Threading: start()/stop_accepting()/stop() from the owner thread. Handlers
// run on worker threads. ResponseWriter: any thread. on_disconnect callbacks
// run on the loop thread and must not block.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "server/http_parser.h"

namespace kr {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
};

const char* http_reason_phrase(int status);

struct HttpServerLoop;  // the loop's state, private to http_server.cc

// One request's way back to its connection. Thread-safe; after the exchange
// ended (send/end) or the client went away, calls do nothing.
class ResponseWriter {
 public:
  ResponseWriter(std::shared_ptr<HttpServerLoop> loop, uint64_t conn_id, bool keep_alive)
      : loop_(std::move(loop)), conn_id_(conn_id), keep_alive_(keep_alive) {}

  // Headers added to whatever response follows (e.g. CORS). Call before send()
  // or start_stream(), from the thread that handles the request.
  void set_common_headers(std::vector<std::pair<std::string, std::string>> headers) {
    common_headers_ = std::move(headers);
  }
  // A complete response (Content-Length framing).
  void send(HttpResponse response);
  // Starts a chunked response (e.g. text/event-stream); then write() and end().
  void start_stream(int status, const std::string& content_type,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Queues one chunk; false when the client is gone (stop producing).
  bool write(const std::string& data);
  void end();
  bool disconnected() const { return disconnected_.load(std::memory_order_acquire); }
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  bool keep_alive() const { return keep_alive_; }
  // Called at most once if the client goes away before the exchange ended:
  // on the loop thread, or right here if it is already gone.
  void set_on_disconnect(std::function<void()> fn);

  // Loop thread: the client is gone.
  void mark_disconnected();

 private:
  void post(std::string bytes, bool last);

  std::shared_ptr<HttpServerLoop> loop_;
  uint64_t conn_id_;
  bool keep_alive_;
  std::atomic<bool> disconnected_{false};
  std::atomic<bool> finished_{false};
  std::mutex mu_;  // guards on_disconnect_ and the fired flag
  std::function<void()> on_disconnect_;
  bool fired_ = false;
  std::vector<std::pair<std::string, std::string>> common_headers_;  // set before the response starts
};

struct HttpServerOptions {
  HttpLimits limits;
  double read_timeout_s = 30;        // a request must arrive completely within this
  double idle_timeout_s = 120;       // keep-alive connection without a request
  size_t max_output_bytes = 32u << 20;  // unsent bytes before a client is dropped
  int max_connections = 16384;
  int worker_threads = 4;            // handler pool
};

// (listener tag, request, writer). Runs on a worker thread.
using HttpHandler = std::function<void(int, HttpRequest&&, std::shared_ptr<ResponseWriter>)>;
// Builds the response for a protocol error found by the loop (400/413/431/...).
using HttpErrorFormatter = std::function<HttpResponse(int status, const std::string& message)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFormatter error_formatter);
  ~HttpServer();  // stop()

  // Binds host:port (port 0: any free port) and tags its requests with `tag`.
  // Returns the bound port. Call before start().
  StatusOr<int> listen(const std::string& host, int port, int tag);
  void start();
  // Closes the listening sockets (except those tagged keep_tag, e.g. one that
  // answers health probes during a drain); connections with a request in flight
  // finish it, and every connection closes after its exchange.
  void stop_accepting(int keep_tag = -1);
  // Exchanges (requests) in flight right now.
  int active_exchanges() const;
  // Stops the loop and the workers; closes every connection.
  void stop();

 private:
  std::shared_ptr<HttpServerLoop> loop_;
};

}  // namespace kr
