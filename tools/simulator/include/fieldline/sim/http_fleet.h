#pragma once
// A fleet's devices sending over HTTP: POST /api/v1/devices/{id}/telemetry with the device's
// own token (Authorization: Bearer), the platform's JSON telemetry as the body, over a few
// keep-alive connections shared by the fleet the way a gateway would. A 2xx answer means the
// message is durable; a 4xx one (refused with a reason, or quarantined) is final and counted
// as refused; 429, 5xx or a dropped connection send it again after a second. HTTP has no
// way to reach a device, so commands need the MQTT fleet.

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fieldline/sim/mqtt_fleet.h"

namespace fieldline::sim {

class HttpFleet final : public Sender {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 8080;
    uint32_t connections = 16;
  };

  // Connections start at once on `io` (call from its thread or before it runs).
  HttpFleet(boost::asio::io_context& io, Options options, std::vector<Credential> devices);
  ~HttpFleet() override;
  void publish(size_t device, std::string payload) override;
  uint64_t unacknowledged() const override;
  const SenderStats& stats() const override;
  void close() override;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace fieldline::sim
