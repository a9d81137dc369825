#pragma once
// HTTP/1.1 server on Boost.Beast coroutines (TLS optional). It parses requests, enforces
// header and body limits, keeps connections alive and hands each request to a Handler; it knows
// nothing about routes (those are in src/api).
//
// Threading: the acceptor runs on shard 0; connections are spread over the shards. A Handler
// is called on the connection's shard thread and may co_await work on other shards.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "fieldline/core/config.h"
#include "fieldline/core/result.h"
#include "fieldline/core/runtime.h"
#include "fieldline/ops/metrics.h"

namespace fieldline::transport::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

// A server-side WebSocket stream's outgoing text messages: anyone may push from any thread;
// the connection's session writes them in order. A subscriber that falls `capacity` messages
// behind is disconnected (close code 1008) rather than let memory grow.
class WebSocketFeed {
 public:
  WebSocketFeed(boost::asio::any_io_executor executor, size_t capacity = 4096) : channel_(executor, capacity) {}
  // False when the stream has ended or fell too far behind.
  bool push(std::string text);
  bool overflowed() const { return overflowed_.load(); }
  // The session's side: it receives from here, and closes it when the connection ends.
  auto& channel() { return channel_; }

 private:
  boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)> channel_;
  std::atomic<bool> overflowed_{false};
};

// What a WebSocket upgrade request gets: a refusal (an HTTP response, e.g. 401), or a feed
// whose messages the connection streams until either side closes; then `closed` runs (on the
// connection's thread).
struct Upgrade {
  std::optional<Response> refusal;
  std::shared_ptr<WebSocketFeed> feed;
  std::function<void()> closed;
};
// Called on the connection's shard thread for a request that asks for a WebSocket.
using UpgradeHandler = std::function<boost::asio::awaitable<Upgrade>(Request&)>;

class Server {
 public:
  Server(core::ShardRuntime& runtime, const core::Config& config, ops::Metrics& metrics, Handler handler,
         UpgradeHandler upgrade = {});
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
