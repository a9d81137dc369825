#include "fieldline/sim/http_fleet.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <deque>
#include <utility>

namespace fieldline::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpFleet::State {
  State(asio::io_context& io, Options o, std::vector<Credential> c) : io(io), wake(io), options(std::move(o)), devices(std::move(c)) {}

  asio::io_context& io;
  asio::steady_timer wake;  // cancelled when there is something to send: every idle worker looks
  Options options;
  std::vector<Credential> devices;
  std::deque<std::pair<size_t, std::string>> queued;  // (device, payload) not yet sent
  uint64_t in_flight = 0;
  SenderStats stats;
  bool closing = false;
  std::vector<std::shared_ptr<beast::tcp_stream>> streams;  // closed by close()
};

namespace {

using State = HttpFleet::State;

asio::awaitable<void> pause(State& s) {
  asio::steady_timer t(s.io, std::chrono::seconds(1));
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// One keep-alive connection taking messages off the shared queue, one request at a time.
asio::awaitable<void> worker(std::shared_ptr<State> s) {
  auto stream = std::make_shared<beast::tcp_stream>(s->io);
  s->streams.push_back(stream);
  tcp::resolver resolver(s->io);
  while (!s->closing) {
    boost::system::error_code ec;
    auto endpoints = co_await resolver.async_resolve(s->options.host, std::to_string(s->options.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) co_await stream->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      ++s->stats.reconnects;
      auto wait = pause(*s);  // named: GCC 12 mishandles a co_await on a temporary coroutine
      co_await std::move(wait);
      continue;
    }
    ++s->stats.connected;
    beast::flat_buffer buffer;
    while (!s->closing) {
      if (s->queued.empty()) {
        s->wake.expires_at(asio::steady_timer::time_point::max());
        co_await s->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      auto [device, payload] = std::move(s->queued.front());
      s->queued.pop_front();
      ++s->in_flight;
      const auto& credential = s->devices[device];
      http::request<http::string_body> request{http::verb::post, "/api/v1/devices/" + credential.device + "/telemetry", 11};
      request.set(http::field::host, s->options.host);
      request.set(http::field::authorization, "Bearer " + credential.token);
      request.set(http::field::content_type, "application/json");
      request.keep_alive(true);
      request.body() = payload;
      request.prepare_payload();
      co_await http::async_write(*stream, request, asio::redirect_error(asio::use_awaitable, ec));
      http::response<http::string_body> response;
      if (!ec) co_await http::async_read(*stream, buffer, response, asio::redirect_error(asio::use_awaitable, ec));
      --s->in_flight;
      const unsigned status = ec ? 0 : response.result_int();
      if (status >= 200 && status < 300) {
        ++s->stats.acknowledged;
      } else if (status >= 400 && status < 500 && status != 429) {
        // Final: the platform refused it with a reason (or keeps it in quarantine).
        ++s->stats.acknowledged;
        ++s->stats.refused;
      } else {
        // Not taken (connection lost, busy, storage trouble): again, first, after a pause.
        s->queued.emplace_front(device, std::move(payload));
        if (!ec) {
          auto wait = pause(*s);
          co_await std::move(wait);
        }
        break;
      }
      if (!response.keep_alive()) break;
    }
    --s->stats.connected;
    stream->socket().close(ec);
  }
}

}  // namespace

HttpFleet::HttpFleet(asio::io_context& io, Options options, std::vector<Credential> devices)
    : state_(std::make_shared<State>(io, std::move(options), std::move(devices))) {
  const uint32_t n = std::max<uint32_t>(1, std::min<uint32_t>(state_->options.connections, static_cast<uint32_t>(state_->devices.size())));
  for (uint32_t i = 0; i < n; ++i) asio::co_spawn(io, worker(state_), asio::detached);
}

HttpFleet::~HttpFleet() { close(); }

void HttpFleet::publish(size_t device, std::string payload) {
  ++state_->stats.published;  // counted once, however often it has to be sent
  state_->queued.emplace_back(device, std::move(payload));
  state_->wake.cancel();
}

uint64_t HttpFleet::unacknowledged() const { return state_->queued.size() + state_->in_flight; }

const SenderStats& HttpFleet::stats() const { return state_->stats; }

void HttpFleet::close() {
  state_->closing = true;
  for (auto& stream : state_->streams) {
    boost::system::error_code ec;
    stream->socket().close(ec);
  }
  state_->wake.cancel();
}

}  // namespace fieldline::sim
