#pragma once
// The platform's alarms: an AlarmBook on a thread of its own, saved to SQLite
// (<data_dir>/alarms.db) as it changes, and every change told to the notification channels
// that subscribed (the WebSocket stream, MQTT integrators, webhooks).
//
// Threading: raise() and clear_condition() may be called from any thread (the shards call them
// as detectors and rules fire) and return at once; the change is applied, saved and told on the
// service's thread, in the order the calls were made from each thread. The operator actions
// and queries are coroutines that run there and resume the caller on its own executor.
// Channels are called on the service's thread and must not block.

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fieldline/analytics/alarm_json.h"
#include "fieldline/analytics/alarms.h"
#include "fieldline/core/env.h"
#include "fieldline/core/result.h"
#include "fieldline/ops/metrics.h"

namespace fieldline::analytics {

// An event as a channel gets it: its name ("alarm.raised", ..., "alarm.storm"), the alarm's
// device and type (empty for alarm.storm), and the JSON text.
struct AlarmNotice {
  std::string_view event, device, type;
  const std::string& json;
};

// A notification channel: receives events on the service's thread.
class AlarmChannel {
 public:
  virtual ~AlarmChannel() = default;
  virtual void deliver(const AlarmNotice& notice) = 0;
  // A name for logs and metrics ("websocket", "mqtt", "webhook").
  virtual const char* kind() const = 0;
};

class AlarmService {
 public:
  struct Options {
    std::string path;  // the SQLite database
    alarms::Policy policy;
    int64_t retention_ns = 90LL * 86400 * 1'000'000'000;
    uint32_t notify_per_second = 50;  // per channel; beyond, events are counted and summed up once a second
  };
  static Result<std::unique_ptr<AlarmService>> open(core::Env& env, ops::Metrics& metrics, Options options);
  ~AlarmService();

  // From any thread.
  void raise(alarms::Raise r);
  void clear_condition(std::string device, std::string dedup_key, int64_t at_ns);

  // Channels: `filter` picks the alarms whose events it gets. Thread-safe.
  uint64_t subscribe(std::shared_ptr<AlarmChannel> channel, alarms::AlarmBook::Filter filter);
  void unsubscribe(uint64_t id);

  boost::asio::awaitable<std::vector<alarms::Alarm>> list(alarms::AlarmBook::Filter filter, size_t limit);
  boost::asio::awaitable<Result<alarms::Alarm>> get(uint64_t id);
  // Errors say which alarm and why (not_found, already_exists for a repeat).
  boost::asio::awaitable<Result<alarms::Alarm>> acknowledge(uint64_t id, std::string by);
  boost::asio::awaitable<Result<alarms::Alarm>> clear(uint64_t id, std::string by);
  boost::asio::awaitable<Result<alarms::Alarm>> comment(uint64_t id, std::string by, std::string text);
  boost::asio::awaitable<Status> add_maintenance(alarms::MaintenanceWindow w);
  boost::asio::awaitable<std::vector<alarms::MaintenanceWindow>> maintenance();

  // Waits until everything raised or cleared before the call is applied and saved (tests, stop).
  void flush();

  struct Impl;

 private:
  explicit AlarmService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldline::analytics
