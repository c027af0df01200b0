// Minimal leveled logging to stderr, one line per call, thread-safe.
// Level comes from KR_LOG_LEVEL (debug|info|warn|error), default info.
#pragma once

#include <cstdio>
#include <string_view>

namespace kr {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void log_line(LogLevel level, std::string_view message);
bool log_enabled(LogLevel level);

}  // namespace kr

#define KR_LOG(level, ...)                                                       \
  do {                                                                           \
    if (::kr::log_enabled(::kr::LogLevel::level)) {                              \
      char kr_log_buf_[1024];                                                    \
      std::snprintf(kr_log_buf_, sizeof kr_log_buf_, __VA_ARGS__);               \
      ::kr::log_line(::kr::LogLevel::level, kr_log_buf_);                        \
    }                                                                            \
  } while (0)
