#pragma once
// A small blocking HTTP client for the CLI's client commands (they talk to a running server
// through its REST API, as kubectl and the influx CLI do).

#include <string>

#include "fieldline/core/result.h"

namespace fieldline::app {

struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::string content_type;
};

// `server` is a URL such as http://127.0.0.1:8080 (https:// works too).
Result<HttpResult> http_request(const std::string& server, const std::string& token, const std::string& method,
                                const std::string& target, const std::string& body = {},
                                const std::string& content_type = "application/json");

}  // namespace fieldline::app
