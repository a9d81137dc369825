#include "fieldline/sim/mqtt_fleet.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <charconv>
#include <deque>

#include "fieldline/transport/mqtt/codec.h"

namespace fieldline::sim {

namespace asio = boost::asio;
namespace mq = transport::mqtt;
using tcp = asio::ip::tcp;

std::string telemetry_json(const Reading& r, double bad) {
  std::string out = "{\"ts\":" + std::to_string(r.ts_ns / 1'000'000) + ",\"values\":{";
  char number[32];
  for (size_t i = 0; i < r.values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    out += r.values[i].first;
    out += "\":";
    const bool broken = bad >= 0 && i == 0;
    if (broken && bad >= 1.0 / 3 && bad < 2.0 / 3) {
      out += "\"ERR\"";
      continue;
    }
    const double v = broken && bad >= 2.0 / 3 ? -1e9 : r.values[i].second;
    auto [end, ec] = std::to_chars(number, number + sizeof number, v, std::chars_format::general, 7);
    out.append(number, end);
  }
  out += "}}";
  if (bad >= 0 && bad < 1.0 / 3) out.resize(out.size() / 2);
  return out;
}

struct MqttFleet::Connection : std::enable_shared_from_this<Connection> {
  Connection(asio::io_context& io, const Options& o, Credential c, size_t i, Stats& s, const OnCommand& cmd)
      : socket(io), wake(io), options(o), credential(std::move(c)), index(i), stats(s), on_command(cmd) {}

  tcp::socket socket;
  asio::steady_timer wake;  // rung when there is something to write
  const Options& options;
  Credential credential;
  size_t index;
  Stats& stats;
  const OnCommand& on_command;
  std::deque<std::string> queued;                            // payloads not yet sent
  std::deque<std::pair<uint16_t, std::string>> in_flight;    // sent, awaiting PUBACK
  uint16_t next_id = 1;
  bool up = false, closing = false;

  static asio::awaitable<void> run(std::shared_ptr<Connection> self) {
    while (!self->closing) {
      auto session = self->session();
      co_await std::move(session);
      if (self->closing) break;
      ++self->stats.reconnects;
      asio::steady_timer pause(self->socket.get_executor(), std::chrono::seconds(1));
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> session() {
    boost::system::error_code ec;
    socket = tcp::socket(socket.get_executor());
    tcp::resolver resolver(socket.get_executor());
    auto endpoints = co_await resolver.async_resolve(options.host, std::to_string(options.port), asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    socket.set_option(tcp::no_delay(true));
    mq::Connect c;
    c.version = 4;
    c.client_id = credential.device;
    c.keep_alive = 120;
    c.clean_start = true;
    c.username = credential.device;
    c.password = credential.token;
    std::string out;
    mq::encode(c, 4, out);
    mq::encode(mq::Subscribe{1, {{"devices/" + credential.device + "/commands/#", 1}}, {}}, 4, out);
    co_await asio::async_write(socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    up = true;
    ++stats.connected;
    // What was in flight when the last connection dropped goes again, first.
    for (auto it = in_flight.rbegin(); it != in_flight.rend(); ++it) queued.push_front(std::move(it->second));
    in_flight.clear();
    auto self = shared_from_this();
    asio::co_spawn(socket.get_executor(), writer(self), asio::detached);
    std::string buffer(16384, '\0');
    size_t used = 0;
    bool connacked = false;
    while (!closing) {
      if (used == buffer.size()) buffer.resize(buffer.size() * 2);
      const size_t n = co_await socket.async_read_some(asio::buffer(buffer.data() + used, buffer.size() - used),
                                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      used += n;
      size_t at = 0;
      bool broken = false;
      while (at < used) {
        auto d = mq::decode(std::span<const char>(buffer.data() + at, used - at), 4, 1 << 20);
        if (!d) {
          broken = true;
          break;
        }
        if (!*d) break;
        at += (*d)->size;
        auto& packet = (*d)->packet;
        if (auto* ack = std::get_if<mq::Connack>(&packet)) {
          connacked = ack->code == 0;
          if (!connacked) broken = true;
        } else if (auto* puback = std::get_if<mq::Ack>(&packet)) {
          for (auto it = in_flight.begin(); it != in_flight.end(); ++it) {
            if (it->first == puback->packet_id) {
              in_flight.erase(it);
              ++stats.acknowledged;
              if (puback->reason >= 0x80) ++stats.refused;
              break;
            }
          }
          wake.cancel();
        } else if (auto* publish = std::get_if<mq::Publish>(&packet)) {
          // A command: devices/{id}/commands/{name}.
          const std::string prefix = "devices/" + credential.device + "/commands/";
          ++stats.commands;
          if (publish->topic.rfind(prefix, 0) == 0 && on_command) on_command(index, publish->topic.substr(prefix.size()), publish->payload);
          if (publish->qos == 1) {
            std::string ack;
            mq::encode_puback_success(publish->packet_id, ack);
            queued_raw.push_back(std::move(ack));
            wake.cancel();
          }
        }
      }
      if (broken) break;
      std::memmove(buffer.data(), buffer.data() + at, used - at);
      used -= at;
    }
    up = false;
    --stats.connected;
    wake.cancel();
    socket.close(ec);
  }

  std::deque<std::string> queued_raw;  // packets to send as they are (PUBACKs for commands)

  static asio::awaitable<void> writer(std::shared_ptr<Connection> self) {
    boost::system::error_code ec;
    std::string out;
    while (self->up && !self->closing) {
      out.clear();
      while (!self->queued_raw.empty()) {
        out += self->queued_raw.front();
        self->queued_raw.pop_front();
      }
      while (!self->queued.empty() && self->in_flight.size() < self->options.window) {
        mq::Publish p;
        p.qos = 1;
        p.topic = "devices/" + self->credential.device + "/telemetry";
        p.packet_id = self->next_id;
        self->next_id = static_cast<uint16_t>(self->next_id == 65535 ? 1 : self->next_id + 1);
        p.payload = std::move(self->queued.front());
        self->queued.pop_front();
        mq::encode(p, 4, out);
        self->in_flight.emplace_back(p.packet_id, std::move(p.payload));
        ++self->stats.published;
      }
      if (!out.empty()) {
        co_await asio::async_write(self->socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        continue;
      }
      self->wake.expires_after(std::chrono::seconds(30));
      co_await self->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!ec && self->up) {
        // Quiet for 30 s: a ping keeps the session alive.
        std::string ping;
        mq::encode(mq::Pingreq{}, 4, ping);
        co_await asio::async_write(self->socket, asio::buffer(ping), asio::redirect_error(asio::use_awaitable, ec));
      }
    }
  }
};

MqttFleet::MqttFleet(asio::io_context& io, Options options, std::vector<Credential> devices, OnCommand on_command)
    : options_(std::move(options)), on_command_(std::move(on_command)) {
  for (size_t i = 0; i < devices.size(); ++i) {
    auto c = std::make_shared<Connection>(io, options_, std::move(devices[i]), i, stats_, on_command_);
    connections_.push_back(c);
    asio::co_spawn(io, Connection::run(c), asio::detached);
  }
}

MqttFleet::~MqttFleet() { close(); }

void MqttFleet::publish(size_t device, std::string payload) {
  auto& c = *connections_[device];
  c.queued.push_back(std::move(payload));
  c.wake.cancel();
}

uint64_t MqttFleet::unacknowledged() const {
  uint64_t n = 0;
  for (const auto& c : connections_) n += c->queued.size() + c->in_flight.size();
  return n;
}

void MqttFleet::close() {
  for (auto& c : connections_) {
    c->closing = true;
    boost::system::error_code ec;
    c->socket.close(ec);
    c->wake.cancel();
  }
}

}  // namespace fieldline::sim
