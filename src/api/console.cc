#include "console.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "fieldline/api/console_assets.h"

namespace fieldline::api {

namespace bhttp = boost::beast::http;

namespace {

bool accepts_gzip(const transport::http::Request& req) {
  // Every browser sends "gzip"; a "gzip;q=0" refusal is honoured.
  const std::string_view header = req[bhttp::field::accept_encoding];
  const auto at = header.find("gzip");
  if (at == std::string_view::npos) return false;
  const auto end = header.find(',', at);
  const auto item = header.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
  const auto q = item.find("q=");
  return q == std::string_view::npos || std::strtod(std::string(item.substr(q + 2)).c_str(), nullptr) > 0;
}

const ConsoleAsset* find_asset(std::string_view path) {
  const auto assets = console_assets();
  auto it = std::lower_bound(assets.begin(), assets.end(), path, [](const ConsoleAsset& a, std::string_view p) { return a.path < p; });
  return it != assets.end() && it->path == path ? &*it : nullptr;
}

}  // namespace

bool is_console_path(std::string_view path) {
  return path == "/" || path == "/index.html" || path.starts_with("/assets/") || path == "/favicon.svg";
}

transport::http::Response console_response(const transport::http::Request& req, std::string_view path) {
  const unsigned ver = req.version();
  if (req.method() != bhttp::verb::get) {
    return transport::http::error_response(405, "method_not_allowed", "the console's files are read with GET", ver);
  }
  if (path == "/") path = "/index.html";
  const ConsoleAsset* asset = find_asset(path);
  if (!asset) {
    if (console_assets().empty()) {
      transport::http::Response res{bhttp::status::service_unavailable, ver};
      res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
      res.body() = "This fieldline binary was built without its operator console: run tools/build.sh (it builds web/ with npm first).\n"
                   "The REST API under /api/v1 works as usual.\n";
      res.prepare_payload();
      return res;
    }
    return transport::http::error_response(404, "not_found", "no console file at " + std::string(path), ver);
  }
  transport::http::Response res{bhttp::status::ok, ver};
  res.set(bhttp::field::content_type, asset->content_type);
  // Hashed file names never change content; the page that names them is always revalidated.
  res.set(bhttp::field::cache_control, path.starts_with("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
  res.set(bhttp::field::vary, "Accept-Encoding");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  // Everything the console loads comes from this server: no CDN, no inline script.
  res.set("Content-Security-Policy",
          "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  const bool gz = accepts_gzip(req);
  if (gz) res.set(bhttp::field::content_encoding, "gzip");
  res.body() = std::string(gz ? asset->gzipped : asset->raw);
  res.prepare_payload();
  return res;
}

}  // namespace fieldline::api
