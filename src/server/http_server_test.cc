#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace kr {
namespace {

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_all(int fd, const std::string& s) { ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size())); }

// Reads until `n` occurrences of `marker` were seen or the peer closed.
std::string read_until(int fd, const std::string& marker, int n = 1) {
  std::string got;
  char buf[4096];
  while (true) {
    int count = 0;
    for (size_t at = got.find(marker); at != std::string::npos; at = got.find(marker, at + 1)) ++count;
    if (count >= n) return got;
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return got;
    got.append(buf, static_cast<size_t>(r));
  }
}

HttpResponse format_error(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = "error: " + message;
  return r;
}

struct Fixture : ::testing::Test {
  std::atomic<int> disconnects{0};
  std::unique_ptr<HttpServer> server;
  int port = 0;

  void start(HttpServerOptions opt = {}) {
    server = std::make_unique<HttpServer>(
        opt,
        [this](int, HttpRequest&& req, std::shared_ptr<ResponseWriter> w) {
          if (req.path == "/stream") {
            w->set_on_disconnect([this] { disconnects.fetch_add(1); });
            w->start_stream(200, "text/event-stream");
            // Streams until the client goes away (at most ~10 s).
            for (int i = 0; i < 1000 && w->write("data: tick\n\n"); ++i)
              std::this_thread::sleep_for(std::chrono::milliseconds(10));
            w->end();
            return;
          }
          HttpResponse r;
          r.body = req.method + " " + req.path + " " + req.body;
          w->send(std::move(r));
        },
        format_error);
    auto p = server->listen("127.0.0.1", 0, 0);
    ASSERT_TRUE(p.ok());
    port = *p;
    server->start();
  }
  void TearDown() override { server.reset(); }
};

TEST_F(Fixture, KeepAliveAndPipelinedRequestsAnswerInOrder) {
  start();
  const int fd = connect_to(port);
  send_all(fd, "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\n\r\n");
  const std::string got = read_until(fd, "GET /c");
  const size_t a = got.find("GET /a"), b = got.find("POST /b hi"), c = got.find("GET /c");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  ::close(fd);
}

TEST_F(Fixture, ChunkedRequestBody) {
  start();
  const int fd = connect_to(port);
  send_all(fd, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nab\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  send_all(fd, "1\r\nc\r\n0\r\n\r\n");
  const std::string got = read_until(fd, "\r\n\r\nZZZ");  // until close
  EXPECT_NE(got.find("POST /x abc"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
  ::close(fd);
}

TEST_F(Fixture, ProtocolErrorsUseTheFormatterAndClose) {
  HttpServerOptions opt;
  opt.limits.max_body_bytes = 100;
  start(opt);
  const int fd = connect_to(port);
  send_all(fd, "POST /x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
  const std::string got = read_until(fd, "never");
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
  EXPECT_NE(got.find("error: request body too large"), std::string::npos);
  ::close(fd);
}

TEST_F(Fixture, SlowClientIsCutOffAtTheReadTimeout) {
  HttpServerOptions opt;
  opt.read_timeout_s = 0.3;
  start(opt);
  const int fd = connect_to(port);
  const auto t0 = std::chrono::steady_clock::now();
  send_all(fd, "GET /x HTTP/1.1\r\n");
  const std::string got = read_until(fd, "never");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
  EXPECT_LT(s, 2.0);
  ::close(fd);
}

TEST_F(Fixture, StreamIsChunkedAndDisconnectIsReported) {
  start();
  const int fd = connect_to(port);
  send_all(fd, "GET /stream HTTP/1.1\r\n\r\n");
  const std::string got = read_until(fd, "data: tick", 3);
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(got.find("text/event-stream"), std::string::npos);
  ::close(fd);
  for (int i = 0; i < 200 && disconnects.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(disconnects.load(), 1);
  for (int i = 0; i < 200 && server->active_exchanges() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server->active_exchanges(), 0);
}

TEST_F(Fixture, HalfClosedClientStillGetsItsAnswer) {
  start();
  const int fd = connect_to(port);
  send_all(fd, "GET /half HTTP/1.1\r\n\r\n");
  ::shutdown(fd, SHUT_WR);
  const std::string got = read_until(fd, "never");
  EXPECT_NE(got.find("GET /half"), std::string::npos) << got;
  ::close(fd);
}

TEST_F(Fixture, StopAcceptingClosesTheListener) {
  start();
  server->stop_accepting();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(fd);
}

}  // namespace
}  // namespace kr
