#pragma once
// A fleet's devices as real MQTT clients: one connection per device (MQTT 3.1.1, username =
// device id, password = its token), readings published at QoS 1 to devices/{id}/telemetry as
// the platform's JSON telemetry, commands received on devices/{id}/commands/# (the demo's
// maintenance orders). Everything runs on one io_context thread; a connection that drops
// comes back after a second and sends what it had not had acknowledged again.

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fieldline/sim/fleet.h"

namespace fieldline::sim {

struct Credential {
  std::string device, token;
};

// The JSON telemetry of a reading; `bad` in [0, 1) picks a fault for --bad-share (below
// 1/3: cut short, invalid JSON; below 2/3: a value as the string "ERR"; else a value far out
// of any range), negative: none.
std::string telemetry_json(const Reading& r, double bad = -1);

// --bad-share: which readings go out broken and how, deterministic under the fleet's seed.
class BadMessages {
 public:
  BadMessages(double share, uint64_t seed) : share_(share), rng_(seed ^ 0xBADULL) {}
  // The `bad` argument for telemetry_json: negative to send the reading whole.
  double next() {
    if (share_ <= 0 || uniform_(rng_) >= share_) return -1;
    ++sent_;
    return uniform_(rng_);
  }
  uint64_t sent() const { return sent_; }

 private:
  double share_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0, 1};
  uint64_t sent_ = 0;
};

struct SenderStats {
  uint64_t published = 0, acknowledged = 0, refused = 0, reconnects = 0, commands = 0;
  uint32_t connected = 0;
};

// How a fleet's readings reach the platform (MQTT or HTTP); all calls on the io thread.
class Sender {
 public:
  virtual ~Sender() = default;
  // Queue a message for `device`.
  virtual void publish(size_t device, std::string payload) = 0;
  // Messages queued or in flight, not yet acknowledged.
  virtual uint64_t unacknowledged() const = 0;
  virtual const SenderStats& stats() const = 0;
  virtual void close() = 0;
};

class MqttFleet final : public Sender {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 1883;
    uint32_t window = 64;  // QoS 1 messages in flight per connection
  };
  using Stats = SenderStats;
  using OnCommand = std::function<void(size_t device, const std::string& command, const std::string& payload)>;

  // Connections start at once on `io` (call from its thread or before it runs).
  MqttFleet(boost::asio::io_context& io, Options options, std::vector<Credential> devices, OnCommand on_command);
  ~MqttFleet() override;
  void publish(size_t device, std::string payload) override;
  uint64_t unacknowledged() const override;
  const Stats& stats() const override { return stats_; }
  void close() override;

  struct Connection;

 private:
  Options options_;
  OnCommand on_command_;
  std::vector<std::shared_ptr<Connection>> connections_;
  Stats stats_;
};

}  // namespace fieldline::sim
