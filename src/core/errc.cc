#include "fieldline/core/errc.h"

#include <boost/throw_exception.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "fieldline/core/check.h"

namespace fieldline {

std::string Error::name() const {
  if (const auto* named = dynamic_cast<const NamedCategory*>(&code_.category())) {
    return std::string(code_.category().name()) + "." + named->code_name(code_.value());
  }
  return std::string(code_.category().name()) + "." + std::to_string(code_.value());
}

void throw_exception_from_error(const Error& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error("BUG: value() on an error result: " + e.message()), loc);
}

namespace core {
namespace {
class CoreCategory final : public NamedCategory {
 public:
  const char* name() const noexcept override { return "core"; }
  const char* code_name(int code) const noexcept override {
    switch (static_cast<Errc>(code)) {
      case Errc::ok: return "ok";
      case Errc::io_error: return "io_error";
      case Errc::no_space: return "no_space";
      case Errc::not_found: return "not_found";
      case Errc::already_exists: return "already_exists";
      case Errc::corrupt: return "corrupt";
      case Errc::invalid_argument: return "invalid_argument";
      case Errc::unsupported: return "unsupported";
      case Errc::crashed: return "crashed";
      case Errc::failed_precondition: return "failed_precondition";
    }
    return "unknown";
  }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::ok: return "ok";
      case Errc::io_error: return "I/O error";
      case Errc::no_space: return "no space left on device";
      case Errc::not_found: return "not found";
      case Errc::already_exists: return "already exists";
      case Errc::corrupt: return "data is corrupt";
      case Errc::invalid_argument: return "invalid argument";
      case Errc::unsupported: return "unsupported";
      case Errc::crashed: return "injected crash";
      case Errc::failed_precondition: return "not possible in the current state";
    }
    return "unknown core error";
  }
};
}  // namespace

const NamedCategory& core_category() {
  static const CoreCategory category;
  return category;
}

Error errno_error(int err, std::string context) {
  Errc e = Errc::io_error;
  if (err == ENOSPC || err == EDQUOT) e = Errc::no_space;
  if (err == ENOENT) e = Errc::not_found;
  if (err == EEXIST) e = Errc::already_exists;
  context += ": ";
  context += std::strerror(err);
  return make_error(e, std::move(context));
}

void bug(std::string_view what, const char* file, int line) {
  std::fprintf(stderr, "BUG: check failed: %.*s at %s:%d\n", static_cast<int>(what.size()), what.data(), file,
               line);
  std::abort();
}

void fatal(std::string_view what) {
  std::fprintf(stderr, "FATAL: %.*s\n", static_cast<int>(what.size()), what.data());
  std::exit(70);
}

}  // namespace core
}  // namespace fieldline
