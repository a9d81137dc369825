#include "simulate.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "client.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/json.h"
#include "fieldline/core/time.h"
#include "fieldline/sim/http_fleet.h"
#include "fieldline/sim/mqtt_fleet.h"

namespace fieldline::app {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Result<std::vector<sim::Credential>> register_fleet(const std::vector<sim::DeviceSpec>& devices, const std::string& server,
                                                    const std::string& token) {
  std::vector<sim::Credential> out;
  for (const auto& d : devices) {
    const std::string body = core::to_json(json::object{{"id", d.id}, {"profile", sim::profile_of(d.kind)}, {"tags", json::object{{"site", d.site}}}});
    FL_TRY(added, http_request(server, token, "POST", "/api/v1/devices", body));
    if (added.status == 409) {
      FL_TRY(rotated, http_request(server, token, "POST", "/api/v1/devices/" + d.id + "/rotate-token", ""));
      added = std::move(rotated);
    }
    if (added.status >= 300) {
      return core::make_error(core::Errc::invalid_argument, "registering " + d.id + ": " + std::to_string(added.status) + " " + added.body);
    }
    boost::system::error_code ec;
    auto v = json::parse(added.body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("token")) {
      return core::make_error(core::Errc::invalid_argument, "registering " + d.id + ": no token in " + added.body);
    }
    out.push_back({d.id, std::string(v.at("token").as_string())});
  }
  return out;
}

int simulate(SimulateOptions o) {
  auto url = boost::urls::parse_uri(o.target);
  if (!url || (url->scheme() != "mqtt" && url->scheme() != "http")) {
    std::fprintf(stderr, "error: --target must be mqtt://HOST:PORT or http://HOST:PORT, not '%s'\n", o.target.c_str());
    return 2;
  }
  const bool over_http = url->scheme() == "http";
  const std::string host(url->host());
  const uint16_t port = url->has_port() ? static_cast<uint16_t>(std::stoi(std::string(url->port()))) : over_http ? 8080 : 1883;
  if (o.server.empty()) {
    o.server = std::getenv("FIELDLINE_URL") ? std::getenv("FIELDLINE_URL") : over_http ? o.target : "http://" + host + ":8080";
  }
  if (o.token.empty() && std::getenv("FIELDLINE_TOKEN")) o.token = std::getenv("FIELDLINE_TOKEN");
  if (!(o.speedup > 0) || !(o.duration_s >= 0) || !(o.bad_share >= 0 && o.bad_share <= 1)) {
    std::fprintf(stderr, "error: --speedup above 0, --duration at least 0, --bad-share from 0 to 1\n");
    return 2;
  }
  const int64_t now = wall_ns();
  const int64_t duration_ns = static_cast<int64_t>(o.duration_s * 1e9);
  const int64_t start = duration_ns > 0 ? now - duration_ns : now;
  auto fleet = sim::Fleet::make(o.fleet, start);
  if (!fleet) {
    std::fprintf(stderr, "error: %s\n", fleet.error().message().c_str());
    return 2;
  }
  auto credentials = register_fleet((*fleet)->devices(), o.server, o.token);
  if (!credentials) {
    std::fprintf(stderr, "error: %s\n", credentials.error().message().c_str());
    return 1;
  }
  std::ofstream labels;
  if (!o.labels.empty()) {
    labels.open(o.labels, std::ios::trunc);
    if (!labels) {
      std::fprintf(stderr, "error: cannot write %s\n", o.labels.c_str());
      return 2;
    }
  }
  const auto& devices = (*fleet)->devices();
  uint64_t failures = 0, maintenance = 0;
  auto on_event = [&](const sim::Event& e) {
    failures += e.kind == "failure";
    maintenance += e.kind == "maintenance";
    if (!labels.is_open()) return;
    const auto& d = devices[e.device];
    labels << core::to_json(json::object{{"device", d.id}, {"profile", sim::profile_of(d.kind)}, {"site", d.site},
                                         {"ts", core::format_rfc3339(e.ts_ns)}, {"event", e.kind}, {"detail", e.detail}})
           << "\n";
  };

  asio::io_context io;
  // Over MQTT each device is its own connection and takes maintenance commands; over HTTP the
  // fleet shares a few keep-alive connections, each request with its device's token.
  std::unique_ptr<sim::Sender> sender;
  if (over_http) {
    sender = std::make_unique<sim::HttpFleet>(io, sim::HttpFleet::Options{host, port, 16}, std::move(*credentials));
  } else {
    sender = std::make_unique<sim::MqttFleet>(io, sim::MqttFleet::Options{host, port, 64}, std::move(*credentials),
                                              [&](size_t device, const std::string& command, const std::string&) {
                                                if (command == "maintenance") (*fleet)->maintain(device, on_event);
                                              });
  }
  sim::BadMessages bad(o.bad_share, o.fleet.seed);
  auto on_reading = [&](const sim::Reading& r) { sender->publish(r.device, sim::telemetry_json(r, bad.next())); };

  const bool tty = isatty(STDERR_FILENO) && o.format != "json";
  const auto started = std::chrono::steady_clock::now();
  const size_t backlog = devices.size() * 256;  // queued messages past which simulated time waits
  bool stopping = false, finished = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) stopping = true;
  });
  asio::steady_timer tick(io);
  std::chrono::steady_clock::time_point drain_deadline{};
  int ticks = 0;
  std::function<void()> step = [&] {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    int64_t target = start + static_cast<int64_t>(elapsed * o.speedup * 1e9);
    target = std::min(target, wall_ns());  // never ahead of the clock
    if (duration_ns > 0) target = std::min(target, start + duration_ns);
    if (!stopping && !finished && sender->unacknowledged() < backlog && target > (*fleet)->now()) (*fleet)->advance(target, on_reading, on_event);
    if (!finished && (stopping || (duration_ns > 0 && (*fleet)->now() >= start + duration_ns))) {
      finished = true;
      drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    }
    const auto& s = sender->stats();
    if (tty && ++ticks % 10 == 0) {
      std::fprintf(stderr, "\r%s  %u/%zu connected  %llu sent  %llu acknowledged  %llu failures  %llu maintenance   ",
                   core::format_rfc3339((*fleet)->now()).substr(0, 16).c_str(), s.connected, devices.size(),
                   static_cast<unsigned long long>(s.published), static_cast<unsigned long long>(s.acknowledged),
                   static_cast<unsigned long long>(failures), static_cast<unsigned long long>(maintenance));
    }
    if (finished && (sender->unacknowledged() == 0 || std::chrono::steady_clock::now() > drain_deadline)) {
      sender->close();
      signals.cancel();
      return;
    }
    tick.expires_after(std::chrono::milliseconds(100));
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec) step();
    });
  };
  step();
  io.run();
  if (tty) std::fprintf(stderr, "\n");
  const auto& s = sender->stats();
  const uint64_t lost = sender->unacknowledged();
  if (o.format == "json") {
    std::printf("%s\n", core::to_json(json::object{{"devices", devices.size()}, {"published", s.published}, {"acknowledged", s.acknowledged},
                                                   {"unacknowledged", lost}, {"bad", bad.sent()}, {"reconnects", s.reconnects},
                                                   {"failures", failures}, {"maintenance", maintenance},
                                                   {"from", core::format_rfc3339(start)}, {"to", core::format_rfc3339((*fleet)->now())}})
                            .c_str());
  } else {
    std::printf("%zu devices, %s to %s: %llu messages acknowledged (%llu sent malformed or non-conforming), %llu not; "
                "%llu failures, %llu maintenance actions\n",
                devices.size(), core::format_rfc3339(start).c_str(), core::format_rfc3339((*fleet)->now()).c_str(),
                static_cast<unsigned long long>(s.acknowledged), static_cast<unsigned long long>(bad.sent()), static_cast<unsigned long long>(lost),
                static_cast<unsigned long long>(failures), static_cast<unsigned long long>(maintenance));
  }
  return lost == 0 ? 0 : 1;
}

}  // namespace fieldline::app
