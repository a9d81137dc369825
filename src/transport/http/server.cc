#include "fieldline/transport/http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <mutex>
#include <set>

#include "fieldline/core/errc.h"
#include "fieldline/core/log.h"

namespace fieldline::transport::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

Response error_response(unsigned status, const std::string& code, const std::string& message, unsigned version) {
  Response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  boost::json::object err{{"code", code}, {"message", message}};
  res.body() = boost::json::serialize(boost::json::object{{"error", std::move(err)}});
  res.prepare_payload();
  return res;
}

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& endpoint) {
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) {
    return core::make_error(core::Errc::invalid_argument, "listen address '" + endpoint + "' is not host:port");
  }
  std::string host = endpoint.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(endpoint.substr(colon + 1));
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) return core::make_error(core::Errc::invalid_argument, "bad port in '" + endpoint + "'");
  return std::make_pair(host.empty() ? std::string("0.0.0.0") : host, static_cast<uint16_t>(port));
}

bool WebSocketFeed::push(std::string text) {
  if (channel_.try_send(boost::system::error_code{}, std::move(text))) return true;
  if (channel_.is_open()) {
    overflowed_.store(true);
    channel_.close();
  }
  return false;
}

struct Server::Impl {
  core::ShardRuntime& runtime;
  core::Config config;
  ops::Metrics& metrics;
  Handler handler;
  std::shared_ptr<spdlog::logger> log = core::logger("http");
  struct Listener {
    std::unique_ptr<tcp::acceptor> acceptor;
    asio::ssl::context* tls;
  };
  std::vector<Listener> listeners;
  std::atomic<uint32_t> next_shard{0};
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::set<beast::tcp_stream*> live;  // for stop(): guarded by mu
  ops::Gauge& open;

  UpgradeHandler upgrade;
  ops::Gauge& websockets;
  std::mutex feeds_mu;
  std::set<std::shared_ptr<WebSocketFeed>> feeds;  // streaming now; stop() ends them (1001)

  Impl(core::ShardRuntime& r, const core::Config& c, ops::Metrics& m, Handler h, UpgradeHandler u)
      : runtime(r), config(c), metrics(m), handler(std::move(h)),
        open(m.gauge("fieldline_http_connections", "Open HTTP connections")), upgrade(std::move(u)),
        websockets(m.gauge("fieldline_websocket_streams", "Open WebSocket streams")) {}

  // The reading half of a stream: answers pings (Beast does), notices a close, ignores what
  // clients send; then ends the feed. A coroutine function, not a lambda: its parameters live
  // in its frame (a coroutine lambda's captures die with the lambda).
  template <typename WebSocket>
  static asio::awaitable<void> read_until_closed(WebSocket& ws, std::shared_ptr<WebSocketFeed> feed, bool& done) {
    beast::flat_buffer in;
    for (;;) {
      auto [rec, n] = co_await ws.async_read(in, use_nothrow);
      if (rec) break;
      in.consume(n);
    }
    done = true;
    feed->channel().close();
  }

  // Streams a feed over an accepted WebSocket until either side ends it. The reader runs beside
  // the writer (it answers pings and notices a close); whichever ends first ends the other.
  template <typename Stream>
  asio::awaitable<void> stream_feed(Stream& stream, Request& req, Upgrade& up) {
    beast::get_lowest_layer(stream).expires_never();
    websocket::stream<Stream&> ws(stream);
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(bhttp::field::server, "fieldline"); }));
    ws.read_message_max(64 * 1024);
    auto [ec] = co_await ws.async_accept(req, use_nothrow);
    if (ec) co_return;
    websockets.add(1);
    auto feed = up.feed;
    {
      std::lock_guard lock(feeds_mu);
      feeds.insert(feed);
    }
    bool reader_done = false;
    auto executor = co_await asio::this_coro::executor;
    asio::co_spawn(executor, read_until_closed(ws, feed, reader_done), asio::detached);
    bool write_failed = false;
    for (;;) {
      auto [rec, text] = co_await feed->channel().async_receive(use_nothrow);
      if (rec) break;
      ws.text(true);
      auto [wec, wn] = co_await ws.async_write(asio::buffer(text), use_nothrow);
      if (wec) {
        write_failed = true;
        break;
      }
    }
    {
      std::lock_guard lock(feeds_mu);
      feeds.erase(feed);
    }
    if (!reader_done && !write_failed) {
      // The feed ended (this side closes): a subscriber too slow to keep up, or a server that
      // stops, says why.
      websocket::close_reason why(feed->overflowed() ? websocket::close_code::policy_error : websocket::close_code::going_away);
      why.reason = feed->overflowed() ? "too far behind" : "server shutting down";
      beast::get_lowest_layer(stream).expires_after(2s);
      co_await ws.async_close(why, use_nothrow);
    }
    if (!reader_done) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(stream).socket().close(ignored);
      // Wait for the reader to notice: it uses this frame's stream.
      while (!reader_done) {
        asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
        co_await t.async_wait(use_nothrow);
      }
    }
    websockets.add(-1);
  }

  template <typename Stream>
  asio::awaitable<void> serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(config.http.max_body_bytes);
      beast::get_lowest_layer(stream).expires_after(60s);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_nothrow);
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        co_return;
      }
      Response res;
      bool keep_alive = false;
      if (ec) {
        metrics.counter("fieldline_http_bad_requests_total", "Requests that could not be parsed", {{"reason", ec.message()}}).inc();
        res = ec == bhttp::error::body_limit
                  ? error_response(413, "payload_too_large", "request body exceeds " + std::to_string(config.http.max_body_bytes) + " bytes")
                  : error_response(400, "bad_request", "malformed HTTP request: " + ec.message());
      } else if (upgrade && websocket::is_upgrade(parser.get())) {
        auto req = parser.release();
        Upgrade up;
        try {
          auto job = upgrade(req);  // named: GCC 12 destroys co_await temporaries twice
          up = co_await std::move(job);
        } catch (const std::exception& e) {
          log->error("BUG: upgrade handler threw for {}: {}", std::string(req.target()), e.what());
          up.refusal = error_response(500, "internal", "internal error");
        }
        if (up.feed) {
          co_await stream_feed(stream, req, up);
          if (up.closed) up.closed();
          co_return;
        }
        res = up.refusal ? std::move(*up.refusal) : error_response(404, "not_found", "no WebSocket stream here");
        res.version(req.version());
      } else {
        auto req = parser.release();
        keep_alive = req.keep_alive();
        try {
          auto job = handler(req);
          res = co_await std::move(job);
        } catch (const std::exception& e) {
          log->error("BUG: handler threw for {} {}: {}", std::string(req.method_string()), std::string(req.target()), e.what());
          res = error_response(500, "internal", "internal error");
        }
        res.version(req.version());
        metrics.counter("fieldline_http_requests_total", "HTTP requests by method and status",
                        {{"method", std::string(req.method_string())}, {"code", std::to_string(res.result_int())}}).inc();
      }
      res.keep_alive(keep_alive && !stopping.load());
      res.set(bhttp::field::server, "fieldline");
      res.prepare_payload();
      beast::get_lowest_layer(stream).expires_after(60s);
      auto [wec, wn] = co_await bhttp::async_write(stream, res, use_nothrow);
      if (wec || !res.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> session(tcp::socket socket, asio::ssl::context* tls) {
    beast::tcp_stream stream(std::move(socket));
    {
      std::lock_guard lock(mu);
      live.insert(&stream);
    }
    open.add(1);
    if (tls) {
      beast::ssl_stream<beast::tcp_stream&> ssl(stream, *tls);
      stream.expires_after(10s);
      auto [ec] = co_await ssl.async_handshake(asio::ssl::stream_base::server, use_nothrow);
      if (!ec) {
        co_await serve(ssl);
        stream.expires_after(2s);
        co_await ssl.async_shutdown(use_nothrow);
      }
    } else {
      co_await serve(stream);
      boost::system::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
    open.add(-1);
    std::lock_guard lock(mu);
    live.erase(&stream);
  }

  asio::awaitable<void> accept_loop(Listener& l) {
    for (;;) {
      uint32_t shard = next_shard.fetch_add(1) % runtime.size();
      auto& io = runtime.context(shard);
      auto [ec, socket] = co_await l.acceptor->async_accept(io, use_nothrow);
      if (ec) {
        if (stopping.load() || ec == asio::error::operation_aborted) co_return;
        log->warn("accept failed: {}", ec.message());
        asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
        co_await t.async_wait(use_nothrow);
        continue;
      }
      asio::co_spawn(io, session(std::move(socket), l.tls), [log = log](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log->error("http session ended by an exception: {}", ex.what());
        }
      });
    }
  }
};

Server::Server(core::ShardRuntime& runtime, const core::Config& config, ops::Metrics& metrics, Handler handler,
               UpgradeHandler upgrade)
    : impl_(std::make_unique<Impl>(runtime, config, metrics, std::move(handler), std::move(upgrade))) {}

Server::~Server() { stop(); }

Result<uint16_t> Server::listen(const std::string& endpoint, asio::ssl::context* tls) {
  FL_TRY(hp, split_host_port(endpoint));
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(hp.first, ec);
  if (ec) return core::make_error(core::Errc::invalid_argument, "listen address '" + endpoint + "': " + ec.message());
  auto acceptor = std::make_unique<tcp::acceptor>(impl_->runtime.context(0));
  tcp::endpoint ep(addr, hp.second);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return core::make_error(core::Errc::io_error, "cannot listen on " + endpoint + ": " + ec.message());
  uint16_t port = acceptor->local_endpoint().port();
  impl_->listeners.push_back({std::move(acceptor), tls});
  return port;
}

void Server::start() {
  for (auto& l : impl_->listeners) {
    asio::co_spawn(impl_->runtime.context(0), impl_->accept_loop(l), [log = impl_->log](std::exception_ptr e) {
      if (e) log->error("http accept loop ended by an exception");
    });
  }
}

void Server::stop() {
  if (impl_->stopping.exchange(true)) return;
  {
    std::lock_guard lock(impl_->feeds_mu);
    for (const auto& f : impl_->feeds) f->channel().close();
  }
  for (auto& l : impl_->listeners) {
    asio::post(l.acceptor->get_executor(), [a = l.acceptor.get()] {
      boost::system::error_code ec;
      a->close(ec);
    });
  }
}

}  // namespace fieldline::transport::http
