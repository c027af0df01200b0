// HttpParser: incremental HTTP/1.1 request parser for the event loop. Feed it
// the bytes of one connection; it yields complete requests one at a time
// (pipelined requests stay in the caller's buffer until asked for).
//
// Limits are enforced while parsing, so a hostile client cannot make the
// server buffer more than max_header_bytes + max_body_bytes per request.
//
// Threading: one parser per connection, used by the event-loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kr {

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // "/v1/models?x=1"
  std::string path;     // target without the query: "/v1/models"
  int minor_version = 1;  // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;

  // First header with this (lower-case) name, or nullptr.
  const std::string* header(std::string_view lower_name) const;
};

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;       // request line + headers
  size_t max_body_bytes = 8 * 1024 * 1024;   // decoded body
};

class HttpParser {
 public:
  enum class Result {
    kNeedMore,   // no complete request yet
    kRequest,    // *out holds a request; `consumed` bytes of the input belong to it
    kError,      // malformed or over a limit: error_status() says which (400, 413, 431)
  };

  explicit HttpParser(HttpLimits limits) : limits_(limits) {}

  // Parses from the start of `data` (the connection's unconsumed bytes). On
  // kRequest, the caller drops the first `*consumed` bytes. Stateless across
  // calls apart from nothing: a partial request is simply re-scanned, which
  // is cheap because headers are capped at max_header_bytes.
  Result parse(std::string_view data, HttpRequest* out, size_t* consumed);

  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  Result fail(int status, std::string message);
  Result parse_chunked(std::string_view data, size_t body_start, HttpRequest* out, size_t* consumed);

  HttpLimits limits_;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace kr
