#pragma once
// Errors as values. Every module defines its own errc enum and category (see errc.h beside
// each module); an Error carries that code plus a short context saying what and where.
// Result<T> is boost::system::result<T, Error>: no exception crosses a module boundary.

#include <boost/system/result.hpp>

#include <string>
#include <system_error>
#include <utility>

namespace fieldline {

class [[nodiscard]] Error {
 public:
  Error() = default;
  Error(std::error_code code, std::string context) : code_(code), context_(std::move(context)) {}

  const std::error_code& code() const { return code_; }
  const std::string& context() const { return context_; }
  // "category: message: context", for logs and API bodies.
  std::string message() const {
    std::string out = code_.message();
    if (!context_.empty()) {
      out += ": ";
      out += context_;
    }
    return out;
  }
  // Stable short name such as "tsdb.out_of_order", for metrics labels and API error codes.
  std::string name() const;

 private:
  std::error_code code_;
  std::string context_;
};

// Called by boost::system::result::value() on an error; only reachable when a caller ignored
// has_value(), which is a bug.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <typename T>
using Result = boost::system::result<T, Error>;

using Status = boost::system::result<void, Error>;

inline Status ok() { return {}; }

// Categories give their codes stable short names (used in metrics and API error bodies).
class NamedCategory : public std::error_category {
 public:
  virtual const char* code_name(int code) const noexcept = 0;
};

}  // namespace fieldline

// Propagates an error from a Result-returning expression, otherwise yields its value.
#define FL_TRY(var, expr)                       \
  auto var##_result_ = (expr);                  \
  if (!var##_result_) return var##_result_.error(); \
  auto var = std::move(*var##_result_)

#define FL_TRY_STATUS(expr)                     \
  do {                                          \
    auto fl_status_ = (expr);                   \
    if (!fl_status_) return fl_status_.error(); \
  } while (0)
