#pragma once
// Serves the operator console (web/) from the files compiled into the binary. The files are
// code, not data: they are served without a token, and the console asks for one before it
// calls the API, which answers nothing without it.

#include <string_view>

#include "fieldline/transport/http/server.h"

namespace fieldline::api {

// "/", "/index.html", "/assets/...": the console's own paths (never an API path).
bool is_console_path(std::string_view path);

// GET of a console path: the file, gzipped when the client accepts it, with cache and
// content-security headers; 404 for a file the console does not have.
transport::http::Response console_response(const transport::http::Request& req, std::string_view path);

}  // namespace fieldline::api
