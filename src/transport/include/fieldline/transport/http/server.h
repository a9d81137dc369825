#pragma once
// HTTP/1.1 server on Boost.Beast coroutines (TLS optional). It parses requests, enforces
// header and body limits, keeps connections alive and hands each request to a Handler; it knows
// nothing about routes (those are in src/api).
//
// Threading: the acceptor runs on shard 0; connections are spread over the shards. A Handler
// is called on the connection's shard thread and may co_await work on other shards.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <memory>
#include <string>

#include "fieldline/core/config.h"
#include "fieldline/core/result.h"
#include "fieldline/core/runtime.h"
#include "fieldline/ops/metrics.h"

namespace fieldline::transport::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

class Server {
 public:
  Server(core::ShardRuntime& runtime, const core::Config& config, ops::Metrics& metrics, Handler handler);
  ~Server();
  Result<uint16_t> listen(const std::string& endpoint, boost::asio::ssl::context* tls);
  void start();
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// {"error": {"code": code, "message": message}} with the given status.
Response error_response(unsigned status, const std::string& code, const std::string& message, unsigned version = 11);

// Parses "host:port" into an endpoint; "" host means all interfaces.
Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& endpoint);

}  // namespace fieldline::transport::http
