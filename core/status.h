// Error values for data paths. Start-up and configuration code may throw;
// anything that runs per request returns Status or Result<T> instead.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace runahead {

enum class ErrorCode {
  kInvalidArgument,  // bad input from a user or a peer
  kNotFound,
  kOutOfRange,
  kCorruptData,  // a file or message that contradicts itself
  kUnsupported,
  kResourceExhausted,  // memory, queue slots
  kUnavailable,        // a peer that is gone or not ready
  kTimeout,
  kCancelled,
  kProtocol,  // a message that breaks the wire protocol
  kInternal,
  kDevice,  // an accelerator error
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;

  std::string to_string() const;
};

// A status: ok, or an error with a message naming what is wrong.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  static Status ok() { return Status(); }

  bool is_ok() const { return !error_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Error& error() const {
    assert(error_);
    return *error_;
  }
  ErrorCode code() const { return error().code; }
  const std::string& message() const { return error().message; }
  std::string to_string() const { return is_ok() ? "ok" : error_->to_string(); }

 private:
  std::optional<Error> error_;
};

// A value or an error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}  // NOLINT
  Result(Status status) : state_(status.error()) {}  // NOLINT: only from a failed status

  bool is_ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return is_ok(); }

  T& value() & {
    assert(is_ok());
    return std::get<T>(state_);
  }
  const T& value() const& {
    assert(is_ok());
    return std::get<T>(state_);
  }
  T&& value() && {
    assert(is_ok());
    return std::get<T>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!is_ok());
    return std::get<Error>(state_);
  }
  Status status() const { return is_ok() ? Status() : Status(error()); }

 private:
  std::variant<T, Error> state_;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace runahead

// Returns early from the enclosing function when `expr` (a Status) failed.
#define RUNAHEAD_RETURN_IF_ERROR(expr)            \
  do {                                            \
    ::runahead::Status runahead_status_ = (expr); \
    if (!runahead_status_.is_ok()) {              \
      return runahead_status_.error();            \
    }                                             \
  } while (0)

#define RUNAHEAD_CONCAT_INNER(a, b) a##b
#define RUNAHEAD_CONCAT(a, b) RUNAHEAD_CONCAT_INNER(a, b)

// Declares `lhs` from a Result, or returns its error.
#define RUNAHEAD_ASSIGN_OR_RETURN(lhs, expr) \
  RUNAHEAD_ASSIGN_OR_RETURN_IMPL(RUNAHEAD_CONCAT(runahead_result_, __LINE__), lhs, expr)
#define RUNAHEAD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.is_ok()) {                                  \
    return tmp.error();                                \
  }                                                    \
  lhs = std::move(tmp).value()
