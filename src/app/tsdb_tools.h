#pragma once
// `fieldline tsdb inspect|verify`: offline views of a storage directory (read-only).

#include <string>

namespace fieldline::app {
int tsdb_inspect(const std::string& dir, bool json);
int tsdb_verify(const std::string& dir);
}  // namespace fieldline::app
