#pragma once
// The MQTT server (3.1.1 and 5.0) on Boost.Asio coroutines. Devices authenticate with user
// name = device id and password = token, publish telemetry to devices/{id}/telemetry and may
// subscribe under devices/{id}/commands/#. PUBACK is sent only once the message is durable.
// Integrators (user name kIntegratorUser, the admin token) subscribe to alarms/#.
//
// Threading: the acceptor runs on shard 0 and hands each connection to a shard round-robin;
// a session lives on that shard's thread. Session state that outlives a connection (MQTT
// persistent sessions) is kept in a store shared by all shards behind a mutex, touched only on
// connect, disconnect, subscribe and command delivery — never per telemetry message.

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

#include "fieldline/core/config.h"
#include "fieldline/core/result.h"
#include "fieldline/core/runtime.h"
#include "fieldline/ingest/pipeline.h"
#include "fieldline/ops/metrics.h"
#include "fieldline/registry/registry.h"

namespace fieldline::transport::mqtt {

// The user name of an integrator's session: password = the admin token; it may subscribe
// under alarms/# only and publishes nothing. (Not a valid device id, so never a device's.)
inline constexpr const char* kIntegratorUser = "$integrator";

class Server {
 public:
  Server(core::ShardRuntime& runtime, const core::Config& config, registry::Registry& registry,
         ingest::Pipeline& pipeline, ops::Metrics& metrics);
  ~Server();

  // Binds "host:port" (port 0 picks one) and returns the bound port. With `tls`, connections
  // do a TLS handshake first.
  Result<uint16_t> listen(const std::string& endpoint, boost::asio::ssl::context* tls);
  void start();
  // Stops accepting and closes every session (MQTT 5: DISCONNECT 0x8B server shutting down).
  void stop();
  // Closes every connection of a device at once (disabled, deleted or token rotated).
  void close_device(const std::string& device_id);
  // Delivers a command to the device's subscriptions matching devices/{id}/commands/{name};
  // queued for offline persistent sessions. Returns the number of sessions it reached.
  size_t deliver_command(const std::string& device_id, const std::string& name, const std::string& payload);
  // Publishes an alarm event to the integrator sessions subscribed to `topic` (alarms/...);
  // queued for offline persistent ones. Returns the number of sessions it reached.
  size_t publish_alarm(const std::string& topic, const std::string& payload);
  size_t connection_count() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldline::transport::mqtt
