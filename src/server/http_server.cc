#include "server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "server/task_pool.h"

namespace kr {

const char* http_reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

namespace {

constexpr uint64_t kWakeId = 0;
constexpr uint64_t kListenerBase = 1;       // listeners: 1..15
constexpr uint64_t kFirstConnId = 1u << 8;  // connections from here on
constexpr int kTickMs = 200;
constexpr int64_t kLingerNs = 2'000'000'000;

std::string status_line(int status, bool keep_alive) {
  std::string s = "HTTP/1.1 " + std::to_string(status) + " " + http_reason_phrase(status) + "\r\n";
  s += "Server: kr-serve\r\n";
  s += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  return s;
}

}  // namespace

struct HttpServerLoop {
  struct Command {
    uint64_t conn_id;
    std::string bytes;
    bool last;
  };
  struct Listener {
    int fd;
    int tag;
  };
  struct Conn {
    int fd = -1;
    int tag = 0;
    std::string in;
    std::string out;
    size_t out_off = 0;
    std::shared_ptr<ResponseWriter> writer;  // the exchange in flight
    bool busy = false;
    bool streaming = false;
    bool read_eof = false;
    bool close_after_flush = false;
    bool reading = true;   // EPOLLIN registered
    bool want_out = false; // EPOLLOUT registered
    int64_t request_start_ns = 0;  // first byte of a request not yet complete
    int64_t last_activity_ns = 0;
    int64_t linger_until_ns = 0;   // lingering close in progress (see flush)
  };

  HttpServerOptions options;
  HttpHandler handler;
  HttpErrorFormatter error_formatter;
  HttpParser parser;
  int epfd = -1;
  int wakefd = -1;
  std::vector<Listener> listeners;
  std::unordered_map<uint64_t, Conn> conns;  // loop thread only
  uint64_t next_id = kFirstConnId;
  std::thread thread;
  std::unique_ptr<TaskPool> workers;
  std::atomic<bool> running{false};
  std::atomic<bool> draining{false};
  std::atomic<int> active{0};

  std::mutex mu;  // guards commands, close_listeners
  std::vector<Command> commands;
  bool close_listeners = false;
  int keep_tag = -1;  // stop_accepting: the listeners with this tag stay open

  HttpServerLoop(HttpServerOptions o, HttpHandler h, HttpErrorFormatter e)
      : options(o), handler(std::move(h)), error_formatter(std::move(e)), parser(o.limits) {}

  void post(Command c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      commands.push_back(std::move(c));
    }
    wake();
  }
  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(wakefd, &one, sizeof one);
  }

  void update_events(uint64_t id, Conn& c) {
    const bool want_in = c.reading && !c.read_eof;
    const bool want_out = c.out.size() > c.out_off;
    epoll_event ev{};
    ev.events = (want_in ? uint32_t{EPOLLIN | EPOLLRDHUP} : 0u) | (want_out ? uint32_t{EPOLLOUT} : 0u);
    ev.data.u64 = id;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_out = want_out;
  }

  void drop(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = it->second;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    std::shared_ptr<ResponseWriter> w = std::move(c.writer);
    const bool was_busy = c.busy;
    conns.erase(it);
    if (was_busy) active.fetch_sub(1);
    if (w && was_busy) w->mark_disconnected();
  }

  void accept_all(const Listener& l) {
    while (true) {
      const int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) KR_LOG(kWarn, "accept: %s", std::strerror(errno));
        return;
      }
      if (static_cast<int>(conns.size()) >= options.max_connections) {
        ::close(fd);
        continue;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const uint64_t id = next_id++;
      Conn& c = conns[id];
      c.fd = fd;
      c.tag = l.tag;
      c.last_activity_ns = steady_now_ns();
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = id;
      epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
  }

  // Reads what is there. Returns false if the connection was dropped.
  bool on_readable(uint64_t id, Conn& c) {
    char buf[64 * 1024];
    if (c.linger_until_ns != 0) {
      while (true) {
        const ssize_t n = ::read(c.fd, buf, sizeof buf);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        drop(id);  // EOF or error: the peer is done
        return false;
      }
    }
    const size_t cap = options.limits.max_header_bytes + options.limits.max_body_bytes + 64 * 1024;
    // Parse after at most kReadSliceBytes: a body announced over the limit is refused
    // (413) from its headers before megabytes of it are buffered. epoll is
    // level-triggered, so what is left unread is reported again.
    constexpr size_t kReadSliceBytes = 256 * 1024;
    size_t read_now = 0;
    while (!c.read_eof) {
      const ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n > 0) {
        if (c.in.empty() && !c.busy) c.request_start_ns = steady_now_ns();
        c.in.append(buf, static_cast<size_t>(n));
        c.last_activity_ns = steady_now_ns();
        if (c.in.size() > cap) {
          c.reading = false;  // pipelined input beyond one maximal request: wait
          break;
        }
        read_now += static_cast<size_t>(n);
        if (read_now >= kReadSliceBytes) break;
        continue;
      }
      if (n == 0) {
        c.read_eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      drop(id);  // ECONNRESET etc.
      return false;
    }
    if (c.read_eof) {
      // A stream's client that closed its side is gone; a plain request that
      // was half-closed after sending still gets its answer.
      if (c.busy && c.streaming) {
        drop(id);
        return false;
      }
    }
    if (!c.busy) {
      if (!try_parse(id, c)) return false;
    }
    if (conns.count(id)) update_events(id, c);
    return true;
  }

  // Starts the next buffered request if there is one. Returns false if dropped.
  bool try_parse(uint64_t id, Conn& c) {
    if (c.busy || c.close_after_flush) return true;
    if (c.in.empty()) {
      c.request_start_ns = 0;
      if (c.read_eof || draining.load()) return close_when_flushed(id, c);
      return true;
    }
    HttpRequest req;
    size_t consumed = 0;
    switch (parser.parse(c.in, &req, &consumed)) {
      case HttpParser::Result::kNeedMore:
        if (c.request_start_ns == 0) c.request_start_ns = steady_now_ns();
        if (c.read_eof) return close_when_flushed(id, c);
        return true;
      case HttpParser::Result::kError: {
        HttpResponse r = error_formatter(parser.error_status(), parser.error_message());
        c.in.clear();
        c.out += serialize(r, false);
        c.close_after_flush = true;
        c.reading = false;
        return flush(id, c);
      }
      case HttpParser::Result::kRequest:
        break;
    }
    c.in.erase(0, consumed);
    c.request_start_ns = c.in.empty() ? 0 : steady_now_ns();
    c.busy = true;
    c.streaming = false;
    active.fetch_add(1);
    const bool keep_alive = req.keep_alive && !draining.load();
    c.writer = std::make_shared<ResponseWriter>(shared_from_loop(), id, keep_alive);
    if (!keep_alive) c.reading = false;
    auto w = c.writer;
    const int tag = c.tag;
    workers->post([this, tag, r = std::move(req), w]() mutable { handler(tag, std::move(r), w); });
    return true;
  }

  bool close_when_flushed(uint64_t id, Conn& c) {
    c.close_after_flush = true;
    return flush(id, c);
  }

  static std::string serialize(const HttpResponse& r, bool keep_alive) {
    std::string s = status_line(r.status, keep_alive);
    s += "Content-Type: " + r.content_type + "\r\n";
    for (const auto& [k, v] : r.headers) s += k + ": " + v + "\r\n";
    s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
    s += r.body;
    return s;
  }

  // Writes what it can. Returns false if the connection was dropped.
  bool flush(uint64_t id, Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      drop(id);
      return false;
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
      if (c.close_after_flush && !c.busy) {
        // Lingering close: half-close, then read and discard until the peer
        // closes (or a short deadline), so that a client still sending a body
        // we refused (413) reads our answer instead of a reset.
        ::shutdown(c.fd, SHUT_WR);
        if (c.read_eof) {
          drop(id);
          return false;
        }
        if (c.linger_until_ns == 0) c.linger_until_ns = steady_now_ns() + kLingerNs;
        c.in.clear();
        c.reading = true;
      }
    } else if (c.out.size() - c.out_off > options.max_output_bytes) {
      drop(id);  // the client stopped reading
      return false;
    } else if (c.out_off > (1u << 20)) {
      c.out.erase(0, c.out_off);
      c.out_off = 0;
    }
    update_events(id, c);
    return true;
  }

  void run_commands() {
    std::vector<Command> cmds;
    bool close_l = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      cmds.swap(commands);
      close_l = close_listeners;
      close_listeners = false;
    }
    if (close_l) {
      // Closed listeners keep their place (their index is their epoll id) with fd -1.
      for (Listener& l : listeners) {
        if (l.fd < 0 || l.tag == keep_tag) continue;
        epoll_ctl(epfd, EPOLL_CTL_DEL, l.fd, nullptr);
        ::close(l.fd);
        l.fd = -1;
      }
      // Idle keep-alive connections go now; busy ones close after their exchange.
      std::vector<uint64_t> idle;
      for (auto& [id, c] : conns)
        if (!c.busy && c.in.empty()) idle.push_back(id);
      for (uint64_t id : idle) drop(id);
    }
    for (Command& cmd : cmds) {
      auto it = conns.find(cmd.conn_id);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      if (!c.busy) continue;
      c.out += cmd.bytes;
      if (!cmd.last) c.streaming = true;
      if (cmd.last) {
        c.busy = false;
        c.streaming = false;
        active.fetch_sub(1);
        const bool keep = c.writer && c.writer->keep_alive();
        c.writer.reset();
        if (!keep || draining.load()) c.close_after_flush = true;
        c.last_activity_ns = steady_now_ns();
      }
      if (!flush(cmd.conn_id, c)) continue;
      if (cmd.last) {
        auto again = conns.find(cmd.conn_id);
        if (again != conns.end()) {
          again->second.reading = !again->second.close_after_flush;
          if (try_parse(cmd.conn_id, again->second) && conns.count(cmd.conn_id))
            update_events(cmd.conn_id, again->second);
        }
      }
    }
  }

  int64_t last_trim_ns_ = 0;

  void check_timeouts() {
    const int64_t now = steady_now_ns();
    const auto read_ns = static_cast<int64_t>(options.read_timeout_s * 1e9);
    const auto idle_ns = static_cast<int64_t>(options.idle_timeout_s * 1e9);
    std::vector<uint64_t> timed_out, idle;
    std::vector<uint64_t> lingered;
    for (auto& [id, c] : conns) {
      if (c.linger_until_ns != 0 && now > c.linger_until_ns) lingered.push_back(id);
      if (c.busy || c.close_after_flush) continue;
      if (c.request_start_ns != 0 && now - c.request_start_ns > read_ns) timed_out.push_back(id);
      else if (c.in.empty() && now - c.last_activity_ns > idle_ns) idle.push_back(id);
    }
    for (uint64_t id : idle) drop(id);
    for (uint64_t id : lingered) drop(id);
    // When no request is in flight, hand freed heap memory back to the system (at most
    // every 2 s): after a burst of large bodies the allocator would otherwise keep it.
    bool any_busy = false;
    for (const auto& [id, c] : conns) any_busy |= c.busy;
    if (!any_busy && now - last_trim_ns_ > 2'000'000'000) {
      malloc_trim(0);
      last_trim_ns_ = now;
    }
    for (uint64_t id : timed_out) {
      Conn& c = conns[id];
      c.in.clear();
      c.request_start_ns = 0;
      c.reading = false;
      c.out += serialize(error_formatter(408, "request not received within the read timeout"), false);
      close_when_flushed(id, c);
    }
  }

  void loop() {
    epoll_event evs[256];
    int64_t last_tick = steady_now_ns();
    while (running.load()) {
      const int n = epoll_wait(epfd, evs, 256, kTickMs);
      for (int i = 0; i < n; ++i) {
        const uint64_t id = evs[i].data.u64;
        if (id == kWakeId) {
          uint64_t v;
          [[maybe_unused]] ssize_t r = ::read(wakefd, &v, sizeof v);
          continue;
        }
        if (id < kFirstConnId) {
          for (const Listener& l : listeners)
            if (l.fd >= 0 && kListenerBase + static_cast<uint64_t>(&l - listeners.data()) == id) accept_all(l);
          continue;
        }
        auto it = conns.find(id);
        if (it == conns.end()) continue;
        Conn& c = it->second;
        const uint32_t e = evs[i].events;
        if (e & EPOLLERR) {
          drop(id);
          continue;
        }
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
          if (!on_readable(id, c)) continue;
        }
        if (e & EPOLLOUT) flush(id, c);
      }
      run_commands();
      const int64_t now = steady_now_ns();
      if (now - last_tick >= kTickMs * 1'000'000LL) {
        last_tick = now;
        check_timeouts();
      }
    }
    std::vector<uint64_t> ids;
    for (auto& [id, c] : conns) ids.push_back(id);
    for (uint64_t id : ids) drop(id);
  }

  std::shared_ptr<HttpServerLoop> shared_from_loop();
  std::weak_ptr<HttpServerLoop> self;
};

std::shared_ptr<HttpServerLoop> HttpServerLoop::shared_from_loop() { return self.lock(); }

// ---- ResponseWriter ----

void ResponseWriter::post(std::string bytes, bool last) {
  loop_->post({conn_id_, std::move(bytes), last});
}

void ResponseWriter::send(HttpResponse response) {
  if (finished_.exchange(true)) return;
  if (disconnected()) return;
  response.headers.insert(response.headers.end(), common_headers_.begin(), common_headers_.end());
  post(HttpServerLoop::serialize(response, keep_alive_), true);
}

void ResponseWriter::start_stream(int status, const std::string& content_type,
                                  const std::vector<std::pair<std::string, std::string>>& headers) {
  if (finished() || disconnected()) return;
  std::string s = status_line(status, keep_alive_);
  s += "Content-Type: " + content_type + "\r\n";
  s += "Cache-Control: no-cache\r\n";
  for (const auto& [k, v] : headers) s += k + ": " + v + "\r\n";
  for (const auto& [k, v] : common_headers_) s += k + ": " + v + "\r\n";
  s += "Transfer-Encoding: chunked\r\n\r\n";
  post(std::move(s), false);
}

bool ResponseWriter::write(const std::string& data) {
  if (finished() || disconnected()) return false;
  if (data.empty()) return true;
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string s = size;
  s += data;
  s += "\r\n";
  post(std::move(s), false);
  return true;
}

void ResponseWriter::end() {
  if (finished_.exchange(true)) return;
  if (disconnected()) return;
  post("0\r\n\r\n", true);
}

void ResponseWriter::set_on_disconnect(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mu_);
  if (fired_) {
    lock.unlock();
    fn();
    return;
  }
  on_disconnect_ = std::move(fn);
}

void ResponseWriter::mark_disconnected() {
  disconnected_.store(true, std::memory_order_release);
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fired_) return;
    fired_ = true;
    fn = std::move(on_disconnect_);
  }
  if (fn) fn();
}

// ---- HttpServer ----

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFormatter error_formatter)
    : loop_(std::make_shared<HttpServerLoop>(options, std::move(handler), std::move(error_formatter))) {
  loop_->self = loop_;
  loop_->epfd = epoll_create1(EPOLL_CLOEXEC);
  loop_->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  KR_CHECK(loop_->epfd >= 0 && loop_->wakefd >= 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  epoll_ctl(loop_->epfd, EPOLL_CTL_ADD, loop_->wakefd, &ev);
}

HttpServer::~HttpServer() {
  stop();
  for (const auto& l : loop_->listeners)
    if (l.fd >= 0) ::close(l.fd);
  loop_->listeners.clear();
  ::close(loop_->epfd);
  ::close(loop_->wakefd);
  loop_->self.reset();
}

StatusOr<int> HttpServer::listen(const std::string& host, int port, int tag) {
  if (loop_->listeners.size() >= kFirstConnId - kListenerBase - 1) return InvalidArgument("too many listeners");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  const int gai = getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res);
  if (gai != 0) return InvalidArgument("cannot resolve host '" + host + "': " + gai_strerror(gai));
  int fd = -1;
  std::string err = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 4096) == 0) break;
    err = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return Status(StatusCode::kFailedPrecondition, "cannot listen on " + host + ":" + port_s + ": " + err);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int bound = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                               : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  const uint64_t id = kListenerBase + loop_->listeners.size();
  loop_->listeners.push_back({fd, tag});
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = id;
  epoll_ctl(loop_->epfd, EPOLL_CTL_ADD, fd, &ev);
  return bound;
}

void HttpServer::start() {
  if (loop_->running.exchange(true)) return;
  loop_->workers = std::make_unique<TaskPool>(loop_->options.worker_threads);
  loop_->thread = std::thread([l = loop_.get()] { l->loop(); });
}

void HttpServer::stop_accepting(int keep_tag) {
  loop_->draining.store(true);
  {
    std::lock_guard<std::mutex> lock(loop_->mu);
    loop_->close_listeners = true;
    loop_->keep_tag = keep_tag;
  }
  loop_->wake();
}

int HttpServer::active_exchanges() const { return loop_->active.load(); }

void HttpServer::stop() {
  if (!loop_->running.exchange(false)) return;
  loop_->wake();
  if (loop_->thread.joinable()) loop_->thread.join();
  loop_->workers.reset();  // runs queued handlers (their writes go nowhere), joins
}

}  // namespace kr
