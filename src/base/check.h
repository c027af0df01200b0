// Invariant checks: a broken invariant is a bug, so it aborts with file:line.
// Expected failures (user input, files) use Status instead. Any thread.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace kr::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* expr, const char* msg) {
  std::fprintf(stderr, "%s:%d: check failed: %s %s\n", file, line, expr, msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}
}  // namespace kr::detail

#define KR_CHECK(cond)                                                        \
  do {                                                                        \
    if (!(cond)) ::kr::detail::check_failed(__FILE__, __LINE__, #cond, nullptr); \
  } while (0)

#define KR_CHECK_MSG(cond, msg)                                               \
  do {                                                                        \
    if (!(cond)) ::kr::detail::check_failed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)
