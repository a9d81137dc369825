#pragma once
// What the TOML documents (feature views, detector documents, KPI definitions) share: errors
// that name the line and the key, and the names they accept. Include only from a target that
// links toml++.

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "fieldline/core/errc.h"

namespace fieldline::core {

// "line 4: metrics[0].windows: <what>" (no line when toml++ does not know it).
inline Error document_error(const toml::node& at, const std::string& key, const std::string& what) {
  const auto line = at.source().begin.line;
  return make_error(Errc::invalid_argument, (line > 0 ? "line " + std::to_string(line) + ": " : std::string()) + key + ": " + what);
}

// Letters, digits, _ . -; 1 to 128 characters.
inline bool valid_document_name(std::string_view s) {
  return !s.empty() && s.size() <= 128 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; });
}

}  // namespace fieldline::core
