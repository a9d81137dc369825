#pragma once
// Error codes of the core module: environment (files, clock) and configuration.

#include "fieldline/core/result.h"

namespace fieldline::core {

enum class Errc {
  ok = 0,
  io_error,
  no_space,
  not_found,
  already_exists,
  corrupt,
  invalid_argument,
  unsupported,
  crashed,  // an injected crash point fired (tests only)
  failed_precondition,  // the request is sound but the state does not allow it (yet)
};

const NamedCategory& core_category();

inline Error make_error(Errc e, std::string context) {
  return Error(std::error_code(static_cast<int>(e), core_category()), std::move(context));
}

// Converts an errno value from a failed system call into an Error.
Error errno_error(int err, std::string context);

}  // namespace fieldline::core

namespace fieldline::core {
inline bool is(const Error& e, Errc c) {
  return e.code().category() == core_category() && e.code().value() == static_cast<int>(c);
}
inline bool is_no_space(const Error& e) { return is(e, Errc::no_space); }
}  // namespace fieldline::core
