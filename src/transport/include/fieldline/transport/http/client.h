#pragma once
// A minimal HTTP/1.1 client for outgoing notifications (webhooks): one request per
// connection, http:// or https:// (the system's CA certificates, host name checked), a time
// limit on the whole exchange.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::transport::http {

struct ClientResponse {
  unsigned status = 0;
  std::string body;
};

// POSTs `body` to `url`; fails for a bad URL, a connection or TLS failure, or the time limit.
// Any HTTP status is a response (the caller decides what a 500 means).
boost::asio::awaitable<Result<ClientResponse>> post(std::string url, std::vector<std::pair<std::string, std::string>> headers,
                                                    std::string body, std::chrono::milliseconds timeout);

// Checks that `url` is one post() can use (http:// or https://, a host); the reason if not.
Status check_url(const std::string& url);

}  // namespace fieldline::transport::http
