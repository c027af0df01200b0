#include "bench/kr_bench/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/clock.h"

namespace kr::bench {

StatusOr<int> pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Internal(std::string("bind: ") + std::strerror(errno));
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

std::vector<std::string> split_args(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote) quote = 0;
      else cur.push_back(c);
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

Status ServerProcess::start(const ServerLaunch& launch) {
  if (pid_ > 0) return FailedPrecondition("server already started");
  log_path_ = launch.log_path;
  const int log_fd = ::open(launch.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return Internal("cannot open " + launch.log_path + ": " + std::strerror(errno));
  // argv/env prepared before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : launch.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(launch.binary.c_str()));
  for (const std::string& a : launch.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    bool overridden = false;
    for (const auto& [k, v] : launch.env)
      if (std::strncmp(*e, k.c_str(), k.size()) == 0 && (*e)[k.size()] == '=') overridden = true;
    if (!overridden) envp.push_back(*e);
  }
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Internal(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::setpgid(0, 0);  // its own group, so a Ctrl-C on kr-bench does not hit it twice
    ::execve(launch.binary.c_str(), argv.data(), envp.data());
    const char msg[] = "kr-bench: execve of the server binary failed\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;
  return Status::Ok();
}

Status ServerProcess::wait_healthy(const Endpoint& ep, int timeout_ms) {
  const int64_t deadline_ns = steady_now_ns() + static_cast<int64_t>(timeout_ms) * 1'000'000;
  std::string last = "no answer";
  while (steady_now_ns() < deadline_ns) {
    int wstatus = 0;
    if (pid_ > 0 && ::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return Internal("server exited before it was healthy (" +
                      (WIFEXITED(wstatus) ? "exit code " + std::to_string(WEXITSTATUS(wstatus))
                                          : std::string("killed by a signal")) +
                      "); log tail:\n" + log_tail());
    }
    StatusOr<HttpResponse> r = http_get(ep, "/health", 2000);
    if (r.ok() && r->status == 200) return Status::Ok();
    last = r.ok() ? "HTTP " + std::to_string(r->status) : r.status().to_string();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status(StatusCode::kDeadlineExceeded,
                "server not healthy after " + std::to_string(timeout_ms) + " ms (" + last + "); log tail:\n" + log_tail());
}

void ServerProcess::stop(int grace_ms) {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const int64_t deadline_ns = steady_now_ns() + static_cast<int64_t>(grace_ms) * 1'000'000;
  int wstatus = 0;
  while (::waitpid(pid_, &wstatus, WNOHANG) == 0) {
    if (steady_now_ns() > deadline_ns) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &wstatus, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
}

std::string ServerProcess::log_tail(size_t bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

}  // namespace kr::bench
