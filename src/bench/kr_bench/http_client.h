// A small blocking HTTP/1.1 client over POSIX sockets: one request per
// connection (Connection: close), bodies delimited by chunked transfer coding,
// Content-Length or connection close. The body is handed to the caller piece
// by piece as it arrives, so streamed (SSE) responses can be timed.
// Functions are reentrant: any thread may call them, each on its own connection.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace kr::bench {

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string base_path;  // prefix for every path, without a trailing '/' ("" or "/api")
};

// "http://host:port[/prefix]"; https is not supported.
StatusOr<Endpoint> parse_url(std::string_view url);

struct HttpRequest {
  std::string method = "GET";
  std::string path = "/";  // appended to Endpoint::base_path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponseHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string header(std::string_view lower_name) const;       // "" when absent
};

// Receives decoded body bytes as they arrive; return false to stop reading.
using BodySink = std::function<bool(std::string_view bytes)>;

// Sends `req` and streams the body into `sink`. Fails on connect/IO errors,
// malformed responses, or when no byte arrives for timeout_ms.
StatusOr<HttpResponseHead> http_fetch(const Endpoint& ep, const HttpRequest& req, const BodySink& sink,
                                      int timeout_ms);

struct HttpResponse {
  int status = 0;
  std::string body;
};
// Convenience: whole body in memory.
StatusOr<HttpResponse> http_get(const Endpoint& ep, const std::string& path, int timeout_ms);

}  // namespace kr::bench
