#pragma once
// The operator console's built files (web/dist), compiled into the binary by
// tools/embed_console.py so that `fieldline serve` needs nothing beside it.

#include <span>
#include <string_view>

namespace fieldline::api {

struct ConsoleAsset {
  std::string_view path;  // "/index.html", "/assets/index-3f2a.js"
  std::string_view content_type;
  std::string_view raw;
  std::string_view gzipped;
};

// Empty when the binary was built without web/dist (tools/build_web.sh not run).
std::span<const ConsoleAsset> console_assets();

}  // namespace fieldline::api
