#include "bench/kr_bench/http_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace kr::bench {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

StatusOr<int> connect_tcp(const Endpoint& ep, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(ep.port);
  if (int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Status(StatusCode::kNotFound, "resolve " + ep.host + ": " + gai_strerror(rc));
  std::string last_error = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      ::freeaddrinfo(res);
      return fd;
    }
    last_error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return Status(StatusCode::kCancelled, "connect " + ep.host + ":" + port + ": " + last_error);
}

Status send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal(std::string("send: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Buffered reader over a socket; fill() appends what the kernel has.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  // false on EOF; error Status on failure/timeout.
  StatusOr<bool> fill() {
    char buf[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        buf_.append(buf, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return Status(StatusCode::kDeadlineExceeded, "read timed out");
      return Internal(std::string("recv: ") + std::strerror(errno));
    }
  }
  // Reads up to and including "\r\n" (or "\n"); returns the line without it.
  StatusOr<std::string> line() {
    for (;;) {
      const size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        std::string out = buf_.substr(pos_, nl - pos_);
        pos_ = nl + 1;
        if (!out.empty() && out.back() == '\r') out.pop_back();
        return out;
      }
      KR_ASSIGN_OR_RETURN(bool more, fill());
      if (!more) return DataLoss("connection closed inside a line");
    }
  }
  std::string_view available() const { return std::string_view(buf_).substr(pos_); }
  void consume(size_t n) {
    pos_ += n;
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
  }

 private:
  int fd_;
  std::string buf_;
  size_t pos_ = 0;
};

// Delivers exactly n bytes (as they arrive). Returns false when the sink stopped.
StatusOr<bool> pass_bytes(Reader& r, size_t n, const BodySink& sink) {
  while (n > 0) {
    if (r.available().empty()) {
      KR_ASSIGN_OR_RETURN(bool more, r.fill());
      if (!more) return DataLoss("connection closed inside the body");
    }
    const std::string_view piece = r.available().substr(0, n);
    const size_t len = piece.size();
    const bool go_on = sink(piece);
    r.consume(len);
    n -= len;
    if (!go_on) return false;
  }
  return true;
}

Status read_chunked(Reader& r, const BodySink& sink) {
  for (;;) {
    KR_ASSIGN_OR_RETURN(std::string size_line, r.line());
    const std::string_view hex = trim(std::string_view(size_line).substr(0, size_line.find(';')));
    size_t size = 0;
    const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
    if (ec != std::errc() || end != hex.data() + hex.size() || hex.empty())
      return DataLoss("bad chunk size line '" + size_line + "'");
    if (size == 0) {
      // Trailers, up to the empty line.
      for (;;) {
        KR_ASSIGN_OR_RETURN(std::string t, r.line());
        if (t.empty()) return Status::Ok();
      }
    }
    KR_ASSIGN_OR_RETURN(bool go_on, pass_bytes(r, size, sink));
    if (!go_on) return Status::Ok();
    KR_ASSIGN_OR_RETURN(std::string crlf, r.line());
    if (!crlf.empty()) return DataLoss("missing CRLF after a chunk");
  }
}

}  // namespace

std::string HttpResponseHead::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return "";
}

StatusOr<Endpoint> parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return InvalidArgument("URL must start with http:// (https is not supported): " + std::string(url));
  url.remove_prefix(kScheme.size());
  Endpoint ep;
  const size_t slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    ep.base_path = std::string(url.substr(slash));
    while (!ep.base_path.empty() && ep.base_path.back() == '/') ep.base_path.pop_back();
  }
  const size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    ep.host = std::string(hostport);
    ep.port = 80;
  } else {
    ep.host = std::string(hostport.substr(0, colon));
    const std::string_view p = hostport.substr(colon + 1);
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), ep.port);
    if (ec != std::errc() || end != p.data() + p.size() || ep.port <= 0 || ep.port > 65535)
      return InvalidArgument("bad port in URL: " + std::string(p));
  }
  if (ep.host.size() >= 2 && ep.host.front() == '[' && ep.host.back() == ']')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  if (ep.host.empty()) return InvalidArgument("URL has no host");
  return ep;
}

StatusOr<HttpResponseHead> http_fetch(const Endpoint& ep, const HttpRequest& req, const BodySink& sink,
                                      int timeout_ms) {
  KR_ASSIGN_OR_RETURN(int fd, connect_tcp(ep, timeout_ms));
  Socket sock(fd);
  std::string msg = req.method + " " + ep.base_path + req.path + " HTTP/1.1\r\n";
  msg += "Host: " + ep.host + ":" + std::to_string(ep.port) + "\r\n";
  msg += "Connection: close\r\nUser-Agent: kr-bench\r\n";
  for (const auto& [k, v] : req.headers) msg += k + ": " + v + "\r\n";
  if (!req.body.empty() || req.method == "POST")
    msg += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  msg += "\r\n";
  msg += req.body;
  KR_RETURN_IF_ERROR(send_all(fd, msg));

  Reader r(fd);
  HttpResponseHead head;
  KR_ASSIGN_OR_RETURN(std::string status_line, r.line());
  // "HTTP/1.1 200 OK"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
    return DataLoss("bad status line '" + status_line + "'");
  const std::string_view code = std::string_view(status_line).substr(9, 3);
  std::from_chars(code.data(), code.data() + 3, head.status);
  for (;;) {
    KR_ASSIGN_OR_RETURN(std::string h, r.line());
    if (h.empty()) break;
    const size_t colon = h.find(':');
    if (colon == std::string::npos) return DataLoss("bad header line '" + h + "'");
    head.headers.emplace_back(lower(trim(std::string_view(h).substr(0, colon))),
                              std::string(trim(std::string_view(h).substr(colon + 1))));
  }
  if (req.method == "HEAD" || head.status == 204 || head.status == 304) return head;

  if (lower(head.header("transfer-encoding")).find("chunked") != std::string::npos) {
    KR_RETURN_IF_ERROR(read_chunked(r, sink));
  } else if (const std::string cl = head.header("content-length"); !cl.empty()) {
    size_t n = 0;
    const auto [end, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
    if (ec != std::errc() || end != cl.data() + cl.size()) return DataLoss("bad Content-Length " + cl);
    KR_ASSIGN_OR_RETURN(bool unused, pass_bytes(r, n, sink));
    (void)unused;
  } else {
    // Delimited by connection close.
    for (;;) {
      if (!r.available().empty()) {
        const std::string_view piece = r.available();
        const size_t len = piece.size();
        const bool go_on = sink(piece);
        r.consume(len);
        if (!go_on) break;
      }
      KR_ASSIGN_OR_RETURN(bool more, r.fill());
      if (!more) break;
    }
  }
  return head;
}

StatusOr<HttpResponse> http_get(const Endpoint& ep, const std::string& path, int timeout_ms) {
  HttpResponse out;
  HttpRequest req;
  req.path = path;
  KR_ASSIGN_OR_RETURN(HttpResponseHead head, http_fetch(ep, req,
                                                        [&](std::string_view b) {
                                                          out.body.append(b);
                                                          return true;
                                                        },
                                                        timeout_ms));
  out.status = head.status;
  return out;
}

}  // namespace kr::bench
