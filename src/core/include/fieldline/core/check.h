#pragma once
// The three check levels (HOUSE_STYLE.md): FL_ASSERT for invariants in debug builds,
// FL_CHECK always on for bugs that would corrupt data, fatal() for unrecoverable
// environment failures.

#include <string_view>

namespace fieldline::core {
[[noreturn]] void bug(std::string_view what, const char* file, int line);
[[noreturn]] void fatal(std::string_view what);
}  // namespace fieldline::core

#define FL_CHECK(cond) \
  do { if (!(cond)) ::fieldline::core::bug(#cond, __FILE__, __LINE__); } while (0)

#ifdef NDEBUG
#define FL_ASSERT(cond) do { (void)sizeof(cond); } while (0)
#else
#define FL_ASSERT(cond) FL_CHECK(cond)
#endif
