#pragma once
// Integration-test harness: starts the real `fieldline` binary on a temporary data directory
// with port 0 listeners, runs real peers (mosquitto_pub, mosquitto_sub, curl) as child
// processes, and speaks raw MQTT where a test needs bytes no well-behaved client would send.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "fieldline/transport/mqtt/codec.h"

namespace fieldline::itest {

struct CommandResult {
  int status = -1;     // exit status, or -1 if killed
  std::string output;  // stdout and stderr together
};

// Runs a shell command with a time limit; output captured.
CommandResult run(const std::string& command, int timeout_s = 60);
std::string shell_quote(const std::string& s);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr const char* kAdminToken = "itest-admin-token-0123456789abcdef";

class ServerProcess {
 public:
  // `data_dir` outlives restarts; `settings` are --set key=value pairs.
  explicit ServerProcess(std::string data_dir, std::vector<std::string> settings = {});
  ~ServerProcess();
  void start();
  void kill9();
  // SIGTERM; returns the exit status and how long the exit took.
  std::pair<int, double> terminate();
  bool running();
  uint16_t http_port() const { return http_port_; }
  uint16_t mqtt_port() const { return mqtt_port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_port_); }
  std::string log() const;
  const std::string& data_dir() const { return data_dir_; }

  // HTTP with curl: returns status code and body.
  std::pair<int, std::string> http(const std::string& method, const std::string& path, const std::string& body = "",
                                   const std::string& token = kAdminToken, const std::string& content_type = "application/json");
  // Registers a device and returns its token.
  std::string add_device(const std::string& id, const std::string& tags_json = "{}");
  // Raw samples of a metric as (ts string, value) via the REST API.
  boost::json::array query(const std::string& device, const std::string& metric, const std::string& extra = "");
  // The value of a counter or gauge line in /metrics (sum over label sets matching `filter`).
  double metric(const std::string& name, const std::string& filter = "");
  std::string mosquitto_args(const std::string& device, const std::string& token) const;

 private:
  std::string data_dir_;
  std::vector<std::string> settings_;
  int pid_ = -1;
  uint16_t http_port_ = 0, mqtt_port_ = 0;
  int restarts_ = 0;
};

// A raw MQTT client on a blocking socket, for protocol-level tests.
class RawMqtt {
 public:
  explicit RawMqtt(uint16_t port);
  ~RawMqtt();
  bool connected() const { return fd_ >= 0; }
  void send_bytes(const std::string& bytes);
  void send(const transport::mqtt::Packet& p, uint8_t version);
  // Next packet, or nullopt on close/timeout; sets closed() when the server closed the socket.
  std::optional<transport::mqtt::Packet> receive(uint8_t version, int timeout_ms = 5000);
  bool closed() const { return closed_; }
  // Waits until the server closes the connection; true if it did within the time.
  bool wait_closed(int timeout_ms);
  // CONNECT + CONNACK; returns the CONNACK code (or -1).
  int connect(uint8_t version, const std::string& user, const std::string& password, uint16_t keep_alive = 60,
              const std::string& client_id = "raw");
  // CONNECT as given (will, clean start, properties); the CONNACK, or nullopt.
  std::optional<transport::mqtt::Connack> connect(const transport::mqtt::Connect& c);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string buf_;
};

}  // namespace fieldline::itest
