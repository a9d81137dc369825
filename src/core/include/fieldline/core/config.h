#pragma once
// The effective configuration: built-in defaults, then a TOML file, then FIELDLINE_*
// environment variables, then command-line flags (each later source wins). Every setting has
// a dotted key ("mqtt.listen"); its environment variable is FIELDLINE_ plus the key in upper
// case with '.' replaced by '_' (FIELDLINE_MQTT_LISTEN).

#include <cstdint>
#include <string>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::core {

enum class FsyncPolicy { always, interval, never };

struct Config {
  std::string data_dir = "./data";
  uint32_t shards = 0;  // 0: one per core
  std::string log_level = "info";

  struct Mqtt {
    std::string listen = "0.0.0.0:1883";
    std::string tls_listen = "0.0.0.0:8883";  // used only when tls.cert_file is set
    uint32_t max_packet_size = 1 << 20;
    uint32_t receive_maximum = 1024;
    int64_t connect_timeout_ns = 10'000'000'000;
    uint32_t max_keep_alive_s = 3600;
    int64_t session_expiry_max_ns = 7LL * 86400 * 1'000'000'000;
    uint32_t max_connections = 100000;
    uint64_t max_outbound_bytes = 1 << 20;  // a client that stops reading is dropped past this
    // Payload bytes read from all connections together and not yet durable: past it no
    // connection is read until storage catches up (TCP carries the wait to the senders).
    uint64_t max_pending_bytes = 64 << 20;
  } mqtt;

  struct Http {
    std::string listen = "0.0.0.0:8080";
    std::string tls_listen = "0.0.0.0:8443";  // used only when tls.cert_file is set
    uint64_t max_body_bytes = 16 << 20;
  } http;

  struct Tls {
    std::string cert_file;
    std::string key_file;
  } tls;

  struct Tsdb {
    FsyncPolicy fsync = FsyncPolicy::interval;
    int64_t fsync_interval_ns = 10'000'000;
    int64_t block_range_ns = 2LL * 3600 * 1'000'000'000;
    int64_t out_of_order_window_ns = 3600LL * 1'000'000'000;
    int64_t retention_ns = 30LL * 86400 * 1'000'000'000;
    int64_t rollup_retention_ns = 400LL * 86400 * 1'000'000'000;
    // Per tag selector, first match wins: '{site="lab"} raw=7d rollups=90d; {profile="meter"} raw=400d'.
    std::string retention_rules;
    uint64_t max_disk_bytes = 0;        // 0: no limit besides min_free_bytes
    uint64_t min_free_bytes = 64 << 20;  // refuse writes when the filesystem has less free
    uint64_t wal_segment_bytes = 64 << 20;
  } tsdb;

  struct Ingest {
    int64_t max_future_skew_ns = 5LL * 60 * 1'000'000'000;
    uint32_t max_values_per_message = 10000;
    int64_t quarantine_retention_ns = 30LL * 86400 * 1'000'000'000;  // 0: keep forever
    // Refused messages one device may put in quarantine per hour (a burst of as many, then
    // that rate); beyond it they are refused and not kept, so a device sending garbage cannot
    // fill the disk. 0: no limit.
    uint32_t quarantine_quota = 3600;
    int64_t late_after_ns = 60LL * 1'000'000'000;  // a sample received this long after its time is late
    int64_t raw_retention_ns = 7LL * 86400 * 1'000'000'000;  // raw payloads of accepted messages; 0: forever
    // "on": every accepted message's raw payload and lineage is kept (reprocessing and
    // `fieldline lineage` need it); "off" for a gateway that cannot spare the disk.
    std::string raw_log = "on";
    uint64_t raw_segment_bytes = 64ull << 20;                 // a raw log segment is sealed and compressed at this size (or after 1 h)
  } ingest;

  struct Analytics {
    // "on": every numeric metric gets its profile's detectors (the default set when the
    // profile has no detector document); "off": no detection, rules or anomaly alarms.
    std::string detection = "on";
    int64_t checkpoint_interval_ns = 300LL * 1'000'000'000;  // detector state saved this often (and at stop)
    int64_t alarm_retention_ns = 90LL * 86400 * 1'000'000'000;  // cleared alarms kept this long
    uint32_t max_new_alarms_per_minute = 100;  // per alarm type; beyond, counted, not raised
    int64_t escalate_after_ns = 0;             // an unacknowledged active alarm escalates after this (0: never)
    uint32_t notify_per_second = 50;           // per notification channel (a WebSocket, an MQTT integrator, a webhook)
    // Webhooks: space-separated URLs (http:// or https://) that get every alarm event, signed
    // with HMAC-SHA256 of the body under webhook_secret (header X-Fieldline-Signature).
    std::string webhooks;
    std::string webhook_secret;
    uint32_t webhook_attempts = 8;  // retries with exponential backoff (1 s, 2 s, ... up to 5 min)
  } analytics;

  struct Ml {
    // A device's production models run when its features change, at most this often by the
    // device's own clock (0: at every change).
    int64_t serving_interval_ns = 10LL * 1'000'000'000;
    // Maintenance alarms from predictions, space-separated: "pump_rul<30" raises one for a
    // device while model pump_rul predicts below 30 for it, "failure_7d>0.7" above 0.7.
    std::string alarm_policies;
    uint32_t decision_sample = 100;  // one prediction in this many is kept as a decision record
    uint32_t decisions_kept = 100'000;  // the newest, in <data_dir>/decisions.db
  } ml;

  // Sets one setting from its dotted key and a string value, checking it.
  Status set(const std::string& key, const std::string& value);
  // Reads a TOML file; unknown keys are errors (a typo must not be silently ignored).
  Status load_toml_file(const std::string& path);
  Status load_toml_string(const std::string& text, const std::string& source);
  // Applies every FIELDLINE_<KEY> variable of `environ`.
  Status load_environment(char** environ);
  // The effective configuration as TOML.
  std::string to_toml() const;
  // All dotted keys, for help texts.
  static std::vector<std::string> keys();
};

const char* to_string(FsyncPolicy p);

}  // namespace fieldline::core
