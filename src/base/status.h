// Status and StatusOr<T>: expected failures (bad model folder, bad request, bad
// argument) travel as values; no exception crosses a module boundary.
// Any thread may use these types.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace kr {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // caller's input is wrong (maps to HTTP 400)
  kNotFound,           // file, tensor, model, path (404)
  kOutOfRange,         // context length, value bounds (400)
  kResourceExhausted,  // queue full, no KV blocks (503)
  kFailedPrecondition, // unsupported architecture, wrong state
  kDataLoss,           // truncated or corrupt file
  kUnimplemented,      // unsupported construct / feature
  kInternal,           // a bug or a device failure
  kCancelled,
  kDeadlineExceeded,
  kUnauthenticated,
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  StatusOr(T value) : value_(std::move(value)) {}                                  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace kr

// Propagate a failed Status from an expression returning Status.
#define KR_RETURN_IF_ERROR(expr)            \
  do {                                      \
    ::kr::Status kr_status_ = (expr);       \
    if (!kr_status_.ok()) return kr_status_; \
  } while (0)

#define KR_CONCAT_INNER_(a, b) a##b
#define KR_CONCAT_(a, b) KR_CONCAT_INNER_(a, b)
// KR_ASSIGN_OR_RETURN(auto x, f()); declares x from a StatusOr or returns its Status.
#define KR_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto KR_CONCAT_(kr_statusor_, __LINE__) = (expr);                      \
  if (!KR_CONCAT_(kr_statusor_, __LINE__).ok())                          \
    return KR_CONCAT_(kr_statusor_, __LINE__).status();                  \
  lhs = std::move(KR_CONCAT_(kr_statusor_, __LINE__)).value()
