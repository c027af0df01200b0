#include "bench/kr_bench/fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

namespace kr::bench {
namespace {

using json = nlohmann::json;

void send_str(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void sleep_ms(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Reads headers and a Content-Length body. Returns false on a broken request.
bool read_request(int fd, std::string& head, std::string& body) {
  std::string buf;
  char tmp[4096];
  size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
  head = buf.substr(0, header_end);
  body = buf.substr(header_end + 4);
  size_t want = 0;
  std::string lower_head = head;
  for (char& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (size_t p = lower_head.find("content-length:"); p != std::string::npos)
    want = std::stoul(head.substr(p + 15));
  while (body.size() < want) {
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    body.append(tmp, static_cast<size_t>(n));
  }
  return true;
}

void reply(int fd, int status, const std::string& content_type, const std::string& body) {
  send_str(fd, "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") +
                   "\r\nContent-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\nConnection: close\r\n\r\n" + body);
}

}  // namespace

int FakeServer::start(const char* host, int port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return -1;
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host, &addr.sin_addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 512) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return -1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  acceptor_ = std::thread([this] { accept_loop(); });
  return ntohs(addr.sin_port);
}

void FakeServer::serve_until(const std::atomic<bool>& stop_flag) {
  while (!stop_flag.load() && !stopping_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

void FakeServer::stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  acceptor_.join();  // wakes from poll within 50 ms
  ::close(listen_fd_);
  listen_fd_ = -1;
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

void FakeServer::accept_loop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, fd] {
      handle(fd);
      ::close(fd);
    });
  }
}

void FakeServer::handle(int fd) {
  std::string head, body;
  if (!read_request(fd, head, body)) return;
  if (head.rfind("GET /health", 0) == 0) return reply(fd, 200, "text/plain", "ok");
  if (head.rfind("GET /v1/models", 0) == 0)
    return reply(fd, 200, "application/json", R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})");
  if (head.rfind("POST /v1/chat/completions", 0) != 0) return reply(fd, 404, "application/json", R"({"error":"no"})");

  const int n = ++chat_requests_;
  if (opts_.fail_every_n > 0 && n % opts_.fail_every_n == 0)
    return reply(fd, 500, "application/json", R"({"error":{"message":"injected failure"}})");
  const json req = json::parse(body, nullptr, false);
  if (req.is_discarded()) return reply(fd, 400, "application/json", R"({"error":{"message":"bad json"}})");
  const int max_tokens = req.value("max_tokens", 16);
  const bool usage = opts_.send_usage && req.contains("stream_options") &&
                     req["stream_options"].value("include_usage", false);

  const int now = ++streams_;
  for (int m = max_streams_.load(); now > m && !max_streams_.compare_exchange_weak(m, now);) {
  }
  send_str(fd, std::string("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n") +
                   (opts_.chunked ? "Transfer-Encoding: chunked\r\n" : "") + "\r\n");
  const auto event = [&](const std::string& data) {
    const std::string frame = "data: " + data + "\r\n\r\n";
    if (!opts_.chunked) return send_str(fd, frame);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", frame.size());
    send_str(fd, size + frame + "\r\n");
  };
  const auto chunk = [&](const json& delta, const json& finish) {
    return json{{"id", "x"}, {"object", "chat.completion.chunk"},
                {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}}
        .dump();
  };
  event(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  for (int i = 0; i < max_tokens; ++i) {
    sleep_ms(i == 0 ? opts_.first_token_delay_ms : opts_.inter_token_delay_ms);
    std::string piece = "t";  // appended, not "t" + ...: g++ 12 warns falsely (-Wrestrict) on that
    piece.append(std::to_string(i)).push_back(' ');
    event(chunk({{"content", piece}}, nullptr));
  }
  event(chunk(json::object(), "length"));
  if (usage)
    event(json{{"choices", json::array()},
               {"usage", {{"prompt_tokens", 7}, {"completion_tokens", max_tokens}, {"total_tokens", 7 + max_tokens}}}}
              .dump());
  // Counted as ended before [DONE]: the client may start its next request as soon as it reads it.
  --streams_;
  event("[DONE]");
  if (opts_.chunked) send_str(fd, "0\r\n\r\n");
}

}  // namespace kr::bench
