#include "fieldline/core/config.h"

#include <toml++/toml.h>

#include <charconv>
#include <functional>
#include <map>
#include <fstream>
#include <sstream>

#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"

namespace fieldline::core {
namespace {

enum class Kind { string, uint, duration, bytes, fsync };

struct Field {
  const char* key;
  Kind kind;
  std::function<void*(Config&)> ptr;
};

template <typename M>
std::function<void*(Config&)> member(M m) {
  return [m](Config& c) -> void* { return &m(c); };
}

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      {"data_dir", Kind::string, member([](Config& c) -> auto& { return c.data_dir; })},
      {"shards", Kind::uint, member([](Config& c) -> auto& { return c.shards; })},
      {"log_level", Kind::string, member([](Config& c) -> auto& { return c.log_level; })},
      {"mqtt.listen", Kind::string, member([](Config& c) -> auto& { return c.mqtt.listen; })},
      {"mqtt.tls_listen", Kind::string, member([](Config& c) -> auto& { return c.mqtt.tls_listen; })},
      {"mqtt.max_packet_size", Kind::uint, member([](Config& c) -> auto& { return c.mqtt.max_packet_size; })},
      {"mqtt.receive_maximum", Kind::uint, member([](Config& c) -> auto& { return c.mqtt.receive_maximum; })},
      {"mqtt.connect_timeout", Kind::duration, member([](Config& c) -> auto& { return c.mqtt.connect_timeout_ns; })},
      {"mqtt.max_keep_alive", Kind::uint, member([](Config& c) -> auto& { return c.mqtt.max_keep_alive_s; })},
      {"mqtt.session_expiry_max", Kind::duration, member([](Config& c) -> auto& { return c.mqtt.session_expiry_max_ns; })},
      {"mqtt.max_connections", Kind::uint, member([](Config& c) -> auto& { return c.mqtt.max_connections; })},
      {"mqtt.max_outbound_bytes", Kind::bytes, member([](Config& c) -> auto& { return c.mqtt.max_outbound_bytes; })},
      {"mqtt.max_pending_bytes", Kind::bytes, member([](Config& c) -> auto& { return c.mqtt.max_pending_bytes; })},
      {"http.listen", Kind::string, member([](Config& c) -> auto& { return c.http.listen; })},
      {"http.tls_listen", Kind::string, member([](Config& c) -> auto& { return c.http.tls_listen; })},
      {"http.max_body_bytes", Kind::bytes, member([](Config& c) -> auto& { return c.http.max_body_bytes; })},
      {"tls.cert_file", Kind::string, member([](Config& c) -> auto& { return c.tls.cert_file; })},
      {"tls.key_file", Kind::string, member([](Config& c) -> auto& { return c.tls.key_file; })},
      {"tsdb.fsync", Kind::fsync, member([](Config& c) -> auto& { return c.tsdb.fsync; })},
      {"tsdb.fsync_interval", Kind::duration, member([](Config& c) -> auto& { return c.tsdb.fsync_interval_ns; })},
      {"tsdb.block_range", Kind::duration, member([](Config& c) -> auto& { return c.tsdb.block_range_ns; })},
      {"tsdb.out_of_order_window", Kind::duration, member([](Config& c) -> auto& { return c.tsdb.out_of_order_window_ns; })},
      {"tsdb.retention", Kind::duration, member([](Config& c) -> auto& { return c.tsdb.retention_ns; })},
      {"tsdb.rollup_retention", Kind::duration, member([](Config& c) -> auto& { return c.tsdb.rollup_retention_ns; })},
      {"tsdb.retention_rules", Kind::string, member([](Config& c) -> auto& { return c.tsdb.retention_rules; })},
      {"tsdb.max_disk_bytes", Kind::bytes, member([](Config& c) -> auto& { return c.tsdb.max_disk_bytes; })},
      {"tsdb.min_free_bytes", Kind::bytes, member([](Config& c) -> auto& { return c.tsdb.min_free_bytes; })},
      {"tsdb.wal_segment_bytes", Kind::bytes, member([](Config& c) -> auto& { return c.tsdb.wal_segment_bytes; })},
      {"ingest.max_future_skew", Kind::duration, member([](Config& c) -> auto& { return c.ingest.max_future_skew_ns; })},
      {"ingest.max_values_per_message", Kind::uint, member([](Config& c) -> auto& { return c.ingest.max_values_per_message; })},
      {"ingest.quarantine_retention", Kind::duration, member([](Config& c) -> auto& { return c.ingest.quarantine_retention_ns; })},
      {"ingest.quarantine_quota", Kind::uint, member([](Config& c) -> auto& { return c.ingest.quarantine_quota; })},
      {"ingest.late_after", Kind::duration, member([](Config& c) -> auto& { return c.ingest.late_after_ns; })},
      {"ingest.raw_retention", Kind::duration, member([](Config& c) -> auto& { return c.ingest.raw_retention_ns; })},
      {"ingest.raw_log", Kind::string, member([](Config& c) -> auto& { return c.ingest.raw_log; })},
      {"ingest.raw_segment_bytes", Kind::bytes, member([](Config& c) -> auto& { return c.ingest.raw_segment_bytes; })},
      {"analytics.detection", Kind::string, member([](Config& c) -> auto& { return c.analytics.detection; })},
      {"analytics.checkpoint_interval", Kind::duration, member([](Config& c) -> auto& { return c.analytics.checkpoint_interval_ns; })},
      {"analytics.alarm_retention", Kind::duration, member([](Config& c) -> auto& { return c.analytics.alarm_retention_ns; })},
      {"analytics.max_new_alarms_per_minute", Kind::uint, member([](Config& c) -> auto& { return c.analytics.max_new_alarms_per_minute; })},
      {"analytics.escalate_after", Kind::duration, member([](Config& c) -> auto& { return c.analytics.escalate_after_ns; })},
      {"analytics.notify_per_second", Kind::uint, member([](Config& c) -> auto& { return c.analytics.notify_per_second; })},
      {"analytics.webhooks", Kind::string, member([](Config& c) -> auto& { return c.analytics.webhooks; })},
      {"analytics.webhook_secret", Kind::string, member([](Config& c) -> auto& { return c.analytics.webhook_secret; })},
      {"analytics.webhook_attempts", Kind::uint, member([](Config& c) -> auto& { return c.analytics.webhook_attempts; })},
      {"ml.serving_interval", Kind::duration, member([](Config& c) -> auto& { return c.ml.serving_interval_ns; })},
      {"ml.alarm_policies", Kind::string, member([](Config& c) -> auto& { return c.ml.alarm_policies; })},
      {"ml.decision_sample", Kind::uint, member([](Config& c) -> auto& { return c.ml.decision_sample; })},
      {"ml.decisions_kept", Kind::uint, member([](Config& c) -> auto& { return c.ml.decisions_kept; })},
  };
  return kFields;
}

Result<uint64_t> parse_bytes(const std::string& v) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc()) return make_error(Errc::invalid_argument, "'" + v + "' is not a size");
  std::string unit(p, v.data() + v.size());
  uint64_t mult = 1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB" || unit == "K" || unit == "KB") mult = 1ULL << 10;
  else if (unit == "MiB" || unit == "M" || unit == "MB") mult = 1ULL << 20;
  else if (unit == "GiB" || unit == "G" || unit == "GB") mult = 1ULL << 30;
  else if (unit == "TiB" || unit == "T" || unit == "TB") mult = 1ULL << 40;
  else return make_error(Errc::invalid_argument, "'" + v + "': unknown size unit (use B, KiB, MiB, GiB, TiB)");
  return n * mult;
}

std::string format_bytes(uint64_t n) {
  if (n != 0 && n % (1ULL << 30) == 0) return std::to_string(n >> 30) + "GiB";
  if (n != 0 && n % (1ULL << 20) == 0) return std::to_string(n >> 20) + "MiB";
  if (n != 0 && n % (1ULL << 10) == 0) return std::to_string(n >> 10) + "KiB";
  return std::to_string(n);
}

std::string get(const Config& c, const Field& f) {
  void* p = f.ptr(const_cast<Config&>(c));
  switch (f.kind) {
    case Kind::string: return *static_cast<std::string*>(p);
    case Kind::uint: return std::to_string(*static_cast<uint32_t*>(p));
    case Kind::duration: return format_duration(*static_cast<int64_t*>(p));
    case Kind::bytes: return format_bytes(*static_cast<uint64_t*>(p));
    case Kind::fsync: return to_string(*static_cast<FsyncPolicy*>(p));
  }
  return {};
}

}  // namespace

const char* to_string(FsyncPolicy p) {
  switch (p) {
    case FsyncPolicy::always: return "always";
    case FsyncPolicy::interval: return "interval";
    case FsyncPolicy::never: return "never";
  }
  return "?";
}

Status Config::set(const std::string& key, const std::string& value) {
  for (const auto& f : fields()) {
    if (key != f.key) continue;
    void* p = f.ptr(*this);
    switch (f.kind) {
      case Kind::string:
        *static_cast<std::string*>(p) = value;
        return ok();
      case Kind::uint: {
        uint32_t n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || end != value.data() + value.size()) {
          return make_error(Errc::invalid_argument, key + ": '" + value + "' is not a non-negative integer");
        }
        *static_cast<uint32_t*>(p) = n;
        return ok();
      }
      case Kind::duration: {
        auto d = parse_duration(value);
        if (!d) return make_error(Errc::invalid_argument, key + ": " + d.error().context());
        *static_cast<int64_t*>(p) = *d;
        return ok();
      }
      case Kind::bytes: {
        auto b = parse_bytes(value);
        if (!b) return make_error(Errc::invalid_argument, key + ": " + b.error().context());
        *static_cast<uint64_t*>(p) = *b;
        return ok();
      }
      case Kind::fsync: {
        auto& policy = *static_cast<FsyncPolicy*>(p);
        if (value == "always") policy = FsyncPolicy::always;
        else if (value == "interval") policy = FsyncPolicy::interval;
        else if (value == "never") policy = FsyncPolicy::never;
        else return make_error(Errc::invalid_argument, key + ": '" + value + "' is not one of always, interval, never");
        return ok();
      }
    }
  }
  return make_error(Errc::invalid_argument, "unknown setting '" + key + "'");
}

Status Config::load_toml_string(const std::string& text, const std::string& source) {
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    return make_error(Errc::invalid_argument, source + ":" + where.str() + ": " + std::string(e.description()));
  }
  Status status = ok();
  std::function<void(const toml::table&, const std::string&)> walk = [&](const toml::table& t, const std::string& prefix) {
    for (const auto& [k, node] : t) {
      if (!status) return;
      std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (const auto* sub = node.as_table()) {
        walk(*sub, key);
        continue;
      }
      std::string value;
      if (auto s = node.value<std::string>()) value = *s;
      else if (auto i = node.value<int64_t>()) value = std::to_string(*i);
      else if (auto b = node.value<bool>()) value = *b ? "true" : "false";
      else {
        status = make_error(Errc::invalid_argument, source + ": " + key + ": unsupported value type");
        return;
      }
      auto st = set(key, value);
      if (!st) status = make_error(Errc::invalid_argument, source + ": " + st.error().context());
    }
  };
  walk(table, "");
  return status;
}

Status Config::load_toml_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(Errc::not_found, "cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return load_toml_string(ss.str(), path);
}

Status Config::load_environment(char** env) {
  std::map<std::string, std::string> by_var;
  for (const auto& f : fields()) {
    std::string var = "FIELDLINE_";
    for (const char* c = f.key; *c; ++c) var += *c == '.' ? '_' : static_cast<char>(std::toupper(*c));
    by_var[var] = f.key;
  }
  for (char** e = env; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    auto it = by_var.find(entry.substr(0, eq));
    if (it == by_var.end()) continue;
    auto st = set(it->second, entry.substr(eq + 1));
    if (!st) return make_error(Errc::invalid_argument, it->first + ": " + st.error().context());
  }
  return ok();
}

std::string Config::to_toml() const {
  std::string out;
  std::string section;
  for (const auto& f : fields()) {
    std::string key = f.key;
    auto dot = key.find('.');
    std::string sec = dot == std::string::npos ? "" : key.substr(0, dot);
    std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
    if (sec != section) {
      out += "\n[" + sec + "]\n";
      section = sec;
    }
    std::string v = get(*this, f);
    // Secrets are not shown: `config print` output ends up in tickets and chat.
    if (name.ends_with("secret") && !v.empty()) v = "(set, not shown)";
    bool numeric = f.kind == Kind::uint;
    out += name + " = " + (numeric ? v : "\"" + v + "\"") + "\n";
  }
  return out;
}

std::vector<std::string> Config::keys() {
  std::vector<std::string> out;
  for (const auto& f : fields()) out.emplace_back(f.key);
  return out;
}

}  // namespace fieldline::core
