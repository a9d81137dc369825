#include "fieldline/api/api.h"
#include "fieldline/core/async.h"
#include "fieldline/ml/training_set.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <charconv>
#include <chrono>
#include <cmath>

#include "fieldline/core/errc.h"
#include "fieldline/core/ids.h"
#include "fieldline/core/json.h"
#include "fieldline/core/time.h"
#include "fieldline/ingest/decode.h"
#include "fieldline/security/token.h"
#include "fieldline/transport/mqtt/codec.h"
#include "fieldline/tsdb/errc.h"
#include "console.h"
#include "responses.h"

namespace fieldline::api {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using transport::http::Request;
using transport::http::Response;
using transport::http::error_response;

using detail::json_response;
using detail::value_json;
using detail::now_ns;

namespace {

Response empty_response(unsigned status, unsigned version) {
  Response res{static_cast<bhttp::status>(status), version};
  res.prepare_payload();
  return res;
}

json::object device_json(const registry::Device& d) {
  json::object tags;
  for (const auto& [k, v] : d.tags) tags[k] = v;
  json::object o{{"id", d.id}, {"name", d.name}, {"profile", d.profile}, {"tags", std::move(tags)},
                 {"state", d.enabled ? "enabled" : "disabled"}, {"created", core::format_rfc3339(d.created_ns)}};
  o["last_seen"] = d.last_seen_ns ? json::value(core::format_rfc3339(d.last_seen_ns)) : json::value(nullptr);
  return o;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    out.emplace_back(path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    i = j == std::string_view::npos ? path.size() : j;
  }
  return out;
}

struct Query {
  std::map<std::string, std::string> params;
  const std::string* get(const std::string& k) const {
    auto it = params.find(k);
    return it == params.end() ? nullptr : &it->second;
  }
};

Error bad_request(const std::string& what) { return core::make_error(core::Errc::invalid_argument, what); }

// The token of `Authorization: Bearer <t>` (or `Token <t>`), or "".
std::string bearer_token(const Request& req) {
  std::string_view auth = req[bhttp::field::authorization];
  if (auth.starts_with("Bearer ")) return std::string(auth.substr(7));
  if (auth.starts_with("Token ")) return std::string(auth.substr(6));
  return {};
}

struct Caller {
  registry::Principal principal = registry::Principal::none;
  std::string device;
  bool admin() const { return principal == registry::Principal::admin; }
  bool is_device(const std::string& id) const { return principal == registry::Principal::device && device == id; }
};

}  // namespace

Response to_http_error(const Error& e, unsigned version) {
  const auto& cat = e.code().category();
  int v = e.code().value();
  unsigned status = 500;
  if (cat == ingest::ingest_category()) {
    switch (static_cast<ingest::Errc>(v)) {
      case ingest::Errc::bad_payload:
      case ingest::Errc::bad_contract: status = 400; break;
      case ingest::Errc::bad_metric:
      case ingest::Errc::future_timestamp:
      case ingest::Errc::too_many_values:
      case ingest::Errc::type_conflict:
      case ingest::Errc::unknown_metric:
      case ingest::Errc::wrong_type:
      case ingest::Errc::unit_mismatch:
      case ingest::Errc::missing_required: status = 422; break;
      case ingest::Errc::already_replayed:
      case ingest::Errc::replay_busy: status = 409; break;
      case ingest::Errc::quarantine_quota: status = 429; break;
      case ingest::Errc::unauthorized: status = 403; break;
      case ingest::Errc::storage_full:
      case ingest::Errc::storage_failed:
      case ingest::Errc::shutting_down: status = 503; break;
      default: status = 500;
    }
  } else if (cat == registry::registry_category()) {
    switch (static_cast<registry::Errc>(v)) {
      case registry::Errc::not_found: status = 404; break;
      case registry::Errc::already_exists: status = 409; break;
      case registry::Errc::invalid_argument: status = 400; break;
      case registry::Errc::unauthorized: status = 401; break;
      default: status = 500;
    }
  } else if (cat == tsdb::tsdb_category()) {
    switch (static_cast<tsdb::Errc>(v)) {
      case tsdb::Errc::invalid_query: status = 400; break;
      case tsdb::Errc::not_found: status = 404; break;
      case tsdb::Errc::disk_full: status = 503; break;
      case tsdb::Errc::out_of_order:
      case tsdb::Errc::too_old:
      case tsdb::Errc::duplicate_conflict:
      case tsdb::Errc::type_mismatch: status = 422; break;
      default: status = 500;
    }
  } else if (cat == core::core_category()) {
    status = static_cast<core::Errc>(v) == core::Errc::invalid_argument ? 400
             : static_cast<core::Errc>(v) == core::Errc::not_found     ? 404
             : static_cast<core::Errc>(v) == core::Errc::already_exists || static_cast<core::Errc>(v) == core::Errc::failed_precondition ? 409
                                                                        : 500;
  }
  auto res = error_response(status, e.name(), e.message(), version);
  if (status == 503) res.set(bhttp::field::retry_after, "5");
  return res;
}

namespace {

// A message the pipeline refused, with the status its error maps to (400 undecodable, 422
// against the contract, 503 storage); a quarantined one says where to find it.
Response outcome_error(const ingest::MessageOutcome& o, const std::string& device, unsigned version) {
  const Error& e = o.status.error();
  auto res = to_http_error(e, version);
  if (o.quarantine_id == 0) return res;
  json::object err{{"code", e.name()}, {"message", e.message()}, {"device", device},
                   {"quarantine_id", o.quarantine_id}, {"contract_version", o.contract_version}};
  return detail::json_response(res.result_int(), json::object{{"error", std::move(err)}}, version);
}

}  // namespace

Api::Api(const core::Config& config, registry::Registry& registry, ingest::Pipeline& pipeline, ops::Metrics& metrics,
         analytics::AlarmService& alarms, analytics::DetectorBook& detectors, ml::FeatureBook& feature_views,
         const ml::OnlineFeatures& features, ml::ModelBook& models, const ml::Serving& serving, ml::DecisionLog& decisions,
         LiveSamples& live_samples, Hooks hooks)
    : config_(config), registry_(registry), pipeline_(pipeline), metrics_(metrics), alarms_(alarms), detectors_(detectors),
      feature_views_(feature_views), features_(features), models_(models), serving_(serving), decisions_(decisions), live_samples_(live_samples), training_(std::make_unique<boost::asio::thread_pool>(1)),
      hooks_(std::move(hooks)) {}

Api::~Api() { training_->join(); }

namespace {

// Hands alarm events to a WebSocket stream.
class FeedChannel final : public analytics::AlarmChannel {
 public:
  explicit FeedChannel(std::shared_ptr<transport::http::WebSocketFeed> feed) : feed_(std::move(feed)) {}
  void deliver(const analytics::AlarmNotice& notice) override { feed_->push(notice.json); }
  const char* kind() const override { return "websocket"; }

 private:
  std::shared_ptr<transport::http::WebSocketFeed> feed_;
};

}  // namespace

asio::awaitable<transport::http::Upgrade> Api::upgrade(Request& req) {
  const unsigned ver = req.version();
  transport::http::Upgrade up;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) {
    up.refusal = error_response(400, "bad_request", "malformed request target", ver);
    co_return up;
  }
  std::map<std::string, std::string> params;
  for (auto p : url->params()) params[std::string(p.key)] = std::string(p.value);
  if (url->path() != "/api/v1/stream") {
    up.refusal = error_response(404, "not_found", "WebSocket streams are at /api/v1/stream", ver);
    co_return up;
  }
  std::string token = bearer_token(req);
  if (token.empty() && params.count("token")) token = params["token"];  // browsers cannot set headers on a WebSocket
  if (registry_.authenticate_bearer(token).principal != registry::Principal::admin) {
    metrics_.counter("fieldline_http_unauthorized_total", "Requests without valid credentials").inc();
    up.refusal = error_response(401, "unauthorized", token.empty() ? "missing token: send 'Authorization: Bearer <token>' or ?token="
                                                                   : "the stream needs the admin token",
                                ver);
    co_return up;
  }
  // ?samples=true (with ?device=): the device's samples too, as they are stored.
  bool samples = false;
  if (auto it = params.find("samples"); it != params.end()) {
    if (it->second != "true" && it->second != "false") {
      up.refusal = error_response(400, "bad_request", "samples: expected true or false", ver);
      co_return up;
    }
    samples = it->second == "true";
    params.erase(it);
  }
  auto filter = parse_alarm_filter(params);
  if (!filter) {
    up.refusal = to_http_error(filter.error(), ver);
    co_return up;
  }
  if (samples && filter->device.empty()) {
    up.refusal = error_response(400, "bad_request", "samples=true needs device=ID (one device's samples per stream)", ver);
    co_return up;
  }
  auto executor = co_await asio::this_coro::executor;
  up.feed = std::make_shared<transport::http::WebSocketFeed>(executor);
  up.feed->push(core::to_json(json::object{{"event", "stream.open"}, {"at", core::format_rfc3339(now_ns())}}));
  const std::string device = filter->device;
  const uint64_t id = alarms_.subscribe(std::make_shared<FeedChannel>(up.feed), std::move(*filter));
  const uint64_t watch = samples ? live_samples_.watch(pipeline_.shard_of(device), device, up.feed) : 0;
  up.closed = [this, id, watch] {
    alarms_.unsubscribe(id);
    if (watch) live_samples_.unwatch(watch);
  };
  co_return up;
}

namespace {

// Runs a blocking registry call (SQLite) off the shard? The calls are short and rare (admin
// operations), so they run inline; telemetry never waits on them.

Result<std::pair<int64_t, int64_t>> time_range(const Query& q) {
  int64_t now = now_ns();
  int64_t from = now - core::kNsPerHour, to = now;
  if (const auto* f = q.get("from")) {
    auto r = core::parse_time(*f, now, core::EpochUnit::milliseconds);
    if (!r) return bad_request("from: " + r.error().context());
    from = *r;
  }
  if (const auto* t = q.get("to")) {
    auto r = core::parse_time(*t, now, core::EpochUnit::milliseconds);
    if (!r) return bad_request("to: " + r.error().context());
    to = *r;
  }
  if (to <= from) return bad_request("'to' must be after 'from'");
  return std::make_pair(from, to == INT64_MAX ? to : to + 1);  // 'to' is inclusive for users
}

json::array aggregate_json(const tsdb::AggregateResult& r, tsdb::Agg agg) {
  json::array series;
  for (const auto& [key, g] : r.groups) {
    json::object labels;
    for (const auto& [k, v] : g.labels) labels[k] = v;
    json::array points;
    for (const auto& [ts, st] : g.buckets) {
      double v = st.result(agg);
      points.push_back(json::object{{"ts", core::format_rfc3339(ts)}, {"value", std::isfinite(v) ? json::value(v) : json::value(nullptr)}});
    }
    series.push_back(json::object{{"labels", std::move(labels)}, {"points", std::move(points)}});
  }
  return series;
}

}  // namespace

asio::awaitable<Response> Api::handle(Request& req) {
  const unsigned ver = req.version();
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) co_return error_response(400, "bad_request", "malformed request target", ver);
  Query q;
  for (auto p : url->params()) q.params[std::string(p.key)] = std::string(p.value);
  std::string path(url->path());
  auto parts = split_path(path);
  auto method = req.method();

  if (path == "/healthz") co_return json_response(200, json::object{{"status", "ok"}}, ver);
  if (path == "/readyz") {
    bool ready = pipeline_.ready();
    co_return json_response(ready ? 200 : 503, json::object{{"status", ready ? "ready" : "not ready"}}, ver);
  }
  // The operator console's files: code without data, so no token (the console asks for one).
  if (is_console_path(path)) co_return console_response(req, path);

  // Everything else needs a token: Authorization: Bearer <t> or Token <t>.
  Caller caller;
  {
    const std::string token = bearer_token(req);
    if (token.empty()) {
      metrics_.counter("fieldline_http_unauthorized_total", "Requests without valid credentials").inc();
      auto res = error_response(401, "unauthorized", "missing token: send 'Authorization: Bearer <token>'", ver);
      res.set(bhttp::field::www_authenticate, "Bearer");
      co_return res;
    }
    // A device token on a device path is checked against that device directly (no scan).
    if (parts.size() >= 4 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "devices" && token.starts_with("fld_")) {
      if (registry_.authenticate_device(parts[3], token)) caller = {registry::Principal::device, parts[3]};
    } else {
      auto r = registry_.authenticate_bearer(token);
      caller = {r.principal, r.device_id};
    }
    if (caller.principal == registry::Principal::none) {
      metrics_.counter("fieldline_http_unauthorized_total", "Requests without valid credentials").inc();
      auto res = error_response(401, "unauthorized", "invalid token", ver);
      res.set(bhttp::field::www_authenticate, "Bearer error=\"invalid_token\"");
      co_return res;
    }
  }
  auto forbidden = [&](const std::string& what) { return error_response(403, "forbidden", what, ver); };

  if (path == "/metrics") {
    if (!caller.admin()) co_return forbidden("metrics need the admin token");
    Response res{bhttp::status::ok, ver};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics_.render();
    res.prepare_payload();
    co_return res;
  }

  // POST /api/v2/write — InfluxDB line protocol.
  if (path == "/api/v2/write" || path == "/write") {
    if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
    core::EpochUnit unit = core::EpochUnit::nanoseconds;
    if (const auto* p = q.get("precision")) {
      if (*p == "s") unit = core::EpochUnit::seconds;
      else if (*p == "ms") unit = core::EpochUnit::milliseconds;
      else if (*p == "us" || *p == "u") unit = core::EpochUnit::microseconds;
      else if (*p != "ns" && *p != "n") co_return error_response(400, "bad_request", "precision must be ns, us, ms or s", ver);
    }
    ingest::DecodeLimits limits;
    limits.max_values = 5'000'000;
    const int64_t received = now_ns();
    std::vector<std::pair<uint32_t, uint32_t>> lines;
    auto points = ingest::decode_line_protocol(req.body(), unit, received, limits, &lines);
    // Route points by device: a device token writes its own; the admin token names it per line.
    // Each device's message keeps its own lines as the raw payload (quarantine, replay).
    struct DeviceMessage {
      ingest::Message msg;
      uint32_t last_line = UINT32_MAX;
    };
    std::map<std::string, DeviceMessage> by_device;
    if (!points) {
      // A device's body that does not parse is still its message: it goes to quarantine. An
      // admin's bulk write names no one device, so it is refused whole.
      if (caller.principal != registry::Principal::device) {
        metrics_.counter("fieldline_messages_rejected_total", "Messages refused, by transport and reason",
                         {{"transport", "lineproto"}, {"reason", points.error().name()}}).inc();
        co_return to_http_error(points.error(), ver);
      }
      auto& dm = by_device[caller.device];
      dm.msg.decoded = points.error();
      dm.msg.raw = req.body();
    } else {
      for (size_t i = 0; i < points->size(); ++i) {
        auto& p = (*points)[i];
        std::string device;
        for (auto it = p.tags.begin(); it != p.tags.end(); ++it) {
          if (it->first == "device") {
            device = it->second;
            p.tags.erase(it);
            break;
          }
        }
        if (caller.principal == registry::Principal::device) {
          if (!device.empty() && device != caller.device) co_return forbidden("device '" + caller.device + "' may not write for '" + device + "'");
          device = caller.device;
        } else if (device.empty()) {
          co_return error_response(400, "bad_request", "with the admin token every line needs a 'device' tag", ver);
        }
        auto& dm = by_device[device];
        if (dm.last_line != lines[i].first) {
          dm.msg.raw.append(req.body(), lines[i].first, lines[i].second - lines[i].first);
          if (dm.msg.raw.back() != '\n') dm.msg.raw.push_back('\n');
          dm.last_line = lines[i].first;
        }
        dm.msg.points.push_back(std::move(p));
      }
    }
    auto reported = ingest::reported_tags(req["X-Fieldline-Firmware"], req["X-Fieldline-Gateway"]);
    if (!reported) co_return error_response(400, "bad_request", reported.error().context(), ver);
    auto exec = co_await asio::this_coro::executor;
    boost::json::array flagged;
    for (auto& [device, dm] : by_device) {
      // From the registry's cache: telemetry never waits on the database or its lock.
      auto dev = registry_.identity(device);
      if (!dev) {
        if (registry::is(dev.error(), registry::Errc::unauthorized)) co_return forbidden(dev.error().context());
        co_return to_http_error(dev.error(), ver);
      }
      auto ctx = ingest::make_device_context(device, dev->profile, dev->tags, *reported);
      dm.msg.format = ingest::Format::line_protocol;
      dm.msg.precision = unit;
      dm.msg.receipt_ns = received;
      std::vector<ingest::Message> msgs;
      msgs.push_back(std::move(dm.msg));
      auto outcomes = co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<ingest::MessageOutcome>)>(
          [&](auto handler) {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            pipeline_.submit(ctx, std::move(msgs), ingest::Transport::lineproto, exec,
                             [h](std::vector<ingest::MessageOutcome> o) { (*h)(std::move(o)); });
          },
          asio::use_awaitable);
      if (!outcomes[0].status) co_return outcome_error(outcomes[0], device, ver);
      if (outcomes[0].rejected > 0) {
        co_return error_response(422, "tsdb.samples_rejected",
                                 std::to_string(outcomes[0].stored) + " samples stored, " + std::to_string(outcomes[0].rejected) +
                                     " refused; first: " + outcomes[0].first_rejection, ver);
      }
      if (outcomes[0].flagged > 0) {
        flagged.push_back(boost::json::object{{"device", device}, {"flagged", outcomes[0].flagged}, {"warning", outcomes[0].first_warning}});
      }
      registry_.touch(device, now_ns());
    }
    if (!flagged.empty()) co_return json_response(200, boost::json::object{{"flagged", std::move(flagged)}}, ver);
    co_return empty_response(204, ver);
  }

  // GET /api/v1/quality[?device=&profile=]: conformance, warnings, rejections by reason,
  // out-of-range share, late and missing samples, per device and per profile.
  if (parts.size() == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "quality") {
    if (!caller.admin()) co_return forbidden("data quality needs the admin token");
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    std::string device = q.get("device") ? *q.get("device") : "";
    std::string profile = q.get("profile") ? *q.get("profile") : "";
    auto list = co_await pipeline_.quality(device);
    const int64_t now = now_ns();
    auto ratio = [](uint64_t a, uint64_t b) { return b ? json::value(static_cast<double>(a) / static_cast<double>(b)) : json::value(nullptr); };
    auto figures = [&](const ingest::DeviceQuality& d) {
      json::object reasons;
      for (const auto& [r, n] : d.rejected_by_reason) reasons[r] = n;
      return json::object{{"messages", d.messages}, {"conforming", d.conforming}, {"with_warnings", d.with_warnings},
                          {"rejected", d.rejected}, {"conformance_rate", ratio(d.conforming, d.messages)},
                          {"rejected_by_reason", std::move(reasons)}, {"samples", d.samples},
                          {"out_of_range", d.out_of_range}, {"out_of_range_share", ratio(d.out_of_range, d.samples)},
                          {"rate_exceeded", d.rate_exceeded}, {"late", d.late}, {"late_share", ratio(d.late, d.samples)},
                          {"missing", d.missing}};
    };
    json::array devices;
    std::map<std::string, ingest::DeviceQuality> by_profile;
    std::map<std::string, uint64_t> devices_of;
    for (const auto& d : list) {
      if (!profile.empty() && d.profile != profile) continue;
      auto o = figures(d);
      o["device"] = d.device;
      o["profile"] = d.profile;
      o["contract_version"] = d.contract_version;
      o["last_message"] = core::format_rfc3339(d.last_receipt_ns);
      const double silent_s = static_cast<double>(now - d.last_receipt_ns) / 1e9;
      o["silent_for_s"] = silent_s;
      // Silent: quiet for more than two of its contract's shortest expected intervals.
      o["silent"] = d.expected_interval_s > 0 && silent_s > 2 * d.expected_interval_s;
      devices.push_back(std::move(o));
      auto& p = by_profile[d.profile];
      p.profile = d.profile;
      p.contract_version = std::max(p.contract_version, d.contract_version);
      p.messages += d.messages;
      p.conforming += d.conforming;
      p.with_warnings += d.with_warnings;
      p.rejected += d.rejected;
      for (const auto& [r, n] : d.rejected_by_reason) p.rejected_by_reason[r] += n;
      p.samples += d.samples;
      p.out_of_range += d.out_of_range;
      p.rate_exceeded += d.rate_exceeded;
      p.late += d.late;
      p.missing += d.missing;
      ++devices_of[d.profile];
    }
    json::array profiles;
    for (const auto& [name, p] : by_profile) {
      auto o = figures(p);
      o["profile"] = name;
      o["contract_version"] = p.contract_version;
      o["devices"] = devices_of[name];
      profiles.push_back(std::move(o));
    }
    co_return json_response(200, json::object{{"since", "server start"}, {"devices", std::move(devices)}, {"profiles", std::move(profiles)}}, ver);
  }

  // Lineage: GET /api/v1/lineage/msg-<id>, or /api/v1/lineage?device=&metric=&at= for the
  // message(s) that stored a sample.
  if (parts.size() >= 3 && parts.size() <= 4 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "lineage") {
    if (!caller.admin()) co_return forbidden("lineage needs the admin token");
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    Result<std::vector<ingest::RawEntry>> found = std::vector<ingest::RawEntry>{};
    if (parts.size() == 4) {
      uint64_t id = 0;
      const std::string& name = parts[3];
      const char* digits = name.data() + std::min<size_t>(name.size(), 4);
      auto [p, ec] = std::from_chars(digits, name.data() + name.size(), id);
      if (!name.starts_with("msg-") || ec != std::errc() || p != name.data() + name.size()) {
        co_return error_response(400, "bad_request", "'" + name + "' is not a message id (msg-<number>)", ver);
      }
      found = co_await pipeline_.message(id);
      if (found && found->empty()) co_return error_response(404, "not_found", "no message " + name + " in the raw log (expired?)", ver);
    } else {
      const auto* device = q.get("device");
      const auto* metric = q.get("metric");
      const auto* at = q.get("at");
      if (!device || !metric || !at) co_return error_response(400, "bad_request", "give device, metric and at (the sample's time)", ver);
      auto ts = core::parse_time(*at, now_ns(), core::EpochUnit::milliseconds);
      if (!ts) co_return error_response(400, "bad_request", "at: " + ts.error().context(), ver);
      found = co_await pipeline_.messages_at(*device, *metric, *ts, 10);
    }
    if (!found) co_return to_http_error(found.error(), ver);
    json::array messages;
    std::map<std::string, std::vector<ReprocessedRange>> reprocessed;  // by device
    for (const auto& e : *found) {
      auto jobs = reprocessed.find(e.device);
      if (jobs == reprocessed.end()) jobs = reprocessed.emplace(e.device, reprocessed_ranges(registry_, e.device)).first;
      // Derived again since it came: the newest job over its samples' times says how.
      json::array again;
      int64_t derived_with = e.contract_version;
      for (const auto& job : jobs->second) {
        if (e.max_ts < job.from_ns || e.min_ts >= job.to_ns) continue;
        if (again.empty()) derived_with = job.contract_version;
        again.push_back(json::object{{"job", job.job}, {"at", core::format_rfc3339(job.at_ns)},
                                     {"contract_version", job.contract_version}, {"from", core::format_rfc3339(job.from_ns)},
                                     {"to", core::format_rfc3339(job.to_ns)}});
      }
      json::array cals, metrics;
      for (auto c : e.calibrations) cals.push_back(c);
      for (const auto& m : e.metrics) metrics.push_back(json::value(m));
      json::object series_tags{{"protocol", e.transport}};
      if (derived_with) series_tags["contract_version"] = std::to_string(derived_with);
      for (const auto& [k, v] : e.reported) series_tags[k] = v;
      json::object o{{"id", "msg-" + std::to_string(e.id)},
                     {"device", e.device},
                     {"received", core::format_rfc3339(e.received_ns)},
                     {"transport", e.transport},
                     {"decoder", e.format},
                     {"contract_version", e.contract_version},
                     {"calibrations", std::move(cals)},
                     {"metrics", std::move(metrics)},
                     {"series_tags", std::move(series_tags)},
                     {"samples", e.samples},
                     {"flagged", e.flagged},
                     {"first_ts", core::format_rfc3339(e.min_ts)},
                     {"last_ts", core::format_rfc3339(e.max_ts)},
                     {"bytes", e.payload.size()},
                     {"sha256", security::sha256_hex(e.payload)},
                     {"payload_base64", security::to_base64(e.payload)}};
      if (!again.empty()) o["reprocessed"] = std::move(again);
      messages.push_back(std::move(o));
    }
    co_return json_response(200, json::object{{"messages", std::move(messages)}}, ver);
  }

  if (parts.size() == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "fleet") {
    if (!caller.admin()) co_return forbidden("the fleet overview needs the admin token");
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto job = fleet_route(registry_, pipeline_, alarms_, serving_, ver);
    co_return co_await std::move(job);
  }

  if (parts.size() == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "events") {
    if (!caller.admin()) co_return forbidden("events need the admin token");
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    co_return events_route(registry_, q.params, ver);
  }

  if (parts.size() == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "reprocess") {
    if (!caller.admin()) co_return forbidden("reprocessing needs the admin token");
    auto res = co_await reprocess_route(registry_, pipeline_, method, req.body(), "admin", ver);
    co_return res;
  }

  if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "quarantine") {
    if (!caller.admin()) co_return forbidden("the quarantine needs the admin token");
    auto res = co_await quarantine_route(registry_, pipeline_, config_, method, parts, q.params, req.body(), "admin", ver);
    co_return res;
  }

  if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "detectors") {
    if (!caller.admin()) co_return forbidden("detector documents need the admin token");
    co_return detectors_route(registry_, detectors_, method, parts, req.body(), "admin", ver);
  }

  if (parts.size() >= 4 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "kpis" && parts[3] == "definitions") {
    if (!caller.admin()) co_return forbidden("KPI definitions need the admin token");
    co_return kpi_definitions_route(registry_, method, parts, req.body(), "admin", ver);
  }
  if (parts.size() == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "kpis") {
    if (!caller.admin()) co_return forbidden("KPIs need the admin token");
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto job = kpis_route(registry_, pipeline_, alarms_, q.params, ver);
    auto res = co_await std::move(job);
    co_return res;
  }

  if (parts.size() >= 4 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "features" && parts[3] == "views") {
    if (!caller.admin()) co_return forbidden("feature views need the admin token");
    co_return feature_views_route(registry_, feature_views_, method, parts, req.body(), "admin", ver);
  }

  // GET /api/v1/features/training-set?profile=P&label=METRIC[&kind=classification][&from&to]:
  // a point-in-time-correct training set from the stored samples of the profile's devices, a
  // row at each sample of the label metric, as CSV (see ml/training_set.h).
  if (parts.size() == 4 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "features" && parts[3] == "training-set") {
    if (!caller.admin()) co_return forbidden("training sets need the admin token");
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    const auto* profile = q.get("profile");
    const auto* label = q.get("label");
    if (!profile || !label) co_return error_response(400, "bad_request", "profile and label (the metric whose samples label the rows) are required", ver);
    ml::LabelKind kind = ml::LabelKind::regression;
    if (const auto* k = q.get("kind")) {
      if (*k != "regression" && *k != "classification") co_return error_response(400, "bad_request", "kind: regression or classification", ver);
      if (*k == "classification") kind = ml::LabelKind::classification;
    }
    // Everything stored unless a range is given.
    int64_t from = 0, to = INT64_MAX;
    if (q.get("from") || q.get("to")) {
      auto range = time_range(q);
      if (!range) co_return to_http_error(range.error(), ver);
      std::tie(from, to) = *range;
    }
    auto view = feature_views_.find(*profile);
    if (!view) co_return error_response(404, "not_found", "profile '" + *profile + "' has no feature view", ver);
    auto job = stored_training_set(registry_, pipeline_, view, *profile, *label, kind, from, to);
    auto set = co_await std::move(job);
    if (!set) co_return to_http_error(set.error(), ver);
    Response res{bhttp::status::ok, ver};
    res.set(bhttp::field::content_type, "text/csv");
    res.set("X-Training-Set-SHA256", set->sha256);
    res.set("X-Feature-View", set->lineage.view + "@" + std::to_string(set->lineage.view_version));
    res.set("X-Training-Set-Lineage",
            core::to_json(json::object{{"profile", *profile}, {"view", set->lineage.view}, {"view_version", set->lineage.view_version},
                                       {"devices", set->lineage.devices.size()}, {"rows", set->rows.size()}, {"samples", set->lineage.samples},
                                       {"from", core::format_rfc3339(set->lineage.from_ns)}, {"to", core::format_rfc3339(set->lineage.to_ns)},
                                       {"label", *label}}));
    res.body() = set->csv();
    res.prepare_payload();
    co_return res;
  }

  // GET /api/v1/models/{name}/decisions?device=&version=&limit=&before=: the sampled decision
  // records, newest first; `next_before` pages on.
  if (parts.size() == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "models" && parts[4] == "decisions") {
    if (!caller.admin()) co_return forbidden("decision records need the admin token");
    ml::DecisionLog::Filter filter;
    filter.model = parts[3];
    if (const auto* device = q.get("device")) filter.device = *device;
    auto number = [&](const char* name, uint64_t fallback, uint64_t max) -> Result<uint64_t> {
      const auto* text = q.get(name);
      if (!text) return fallback;
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
      if (ec != std::errc() || end != text->data() + text->size() || n > max) {
        return core::make_error(core::Errc::invalid_argument, std::string(name) + " must be a whole number up to " + std::to_string(max));
      }
      return n;
    };
    auto version = number("version", 0, INT64_MAX);
    auto limit = number("limit", 100, 1000);
    auto before = number("before", 0, INT64_MAX);
    for (const auto* r : {&version, &limit, &before}) {
      if (!*r) co_return to_http_error(r->error(), ver);
    }
    filter.version = static_cast<int64_t>(*version);
    filter.limit = *limit;
    filter.before_id = *before;
    auto records = decisions_.list(filter);
    if (!records) co_return to_http_error(records.error(), ver);
    json::array out;
    for (const auto& d : *records) {
      json::object inputs;
      for (size_t i = 0; i < d.record.names.size(); ++i) {
        if (std::isnan(d.record.inputs[i])) inputs[d.record.names[i]] = nullptr;
        else inputs[d.record.names[i]] = d.record.inputs[i];
      }
      auto o = prediction_json(d.record.prediction);
      o["id"] = d.id;
      o["recorded"] = core::format_rfc3339(d.recorded_ns);
      o["inputs"] = std::move(inputs);
      out.push_back(std::move(o));
    }
    json::object body{{"model", filter.model}, {"decisions", std::move(out)}};
    if (records->size() == filter.limit && !records->empty()) body["next_before"] = records->back().id;
    co_return json_response(200, std::move(body), ver);
  }

  // GET /api/v1/devices/{id}/predictions: its latest prediction of each production model.
  if (parts.size() == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "devices" && parts[4] == "predictions") {
    if (!caller.admin()) co_return forbidden("predictions need the admin token");
    const std::string id = parts[3];
    auto device = registry_.get_device(id);
    if (!device) co_return to_http_error(device.error(), ver);
    const uint32_t shard = pipeline_.shard_of(id);
    auto job = core::on_executor(pipeline_.shard_executor(shard), [this, shard, id] { return serving_.predictions(shard, id); });
    json::array out;
    auto predictions = co_await std::move(job);
    for (const auto& p : predictions) out.push_back(prediction_json(p));
    co_return json_response(200, json::object{{"device", id}, {"predictions", std::move(out)}}, ver);
  }

  if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "models") {
    if (!caller.admin()) co_return forbidden("the model registry needs the admin token");
    auto job = models_route(registry_, pipeline_, feature_views_, models_, *training_, method, parts, req.body(), "admin", ver);
    auto res = co_await std::move(job);
    co_return res;
  }

  if (parts.size() == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "devices" && parts[4] == "features") {
    if (!caller.admin()) co_return forbidden("a device's features need the admin token");
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    const std::string id = parts[3];
    auto device = registry_.get_device(id);
    if (!device) co_return to_http_error(device.error(), ver);
    // Read on the device's shard, which owns its features.
    const uint32_t shard = pipeline_.shard_of(id);
    auto job = core::on_executor(pipeline_.shard_executor(shard), [this, shard, id] { return features_.read(shard, id); });
    auto reading = co_await std::move(job);
    if (!reading) {
      co_return error_response(404, "not_found", "no features for '" + id + "' (its profile has no feature view, or no sample has come since it was applied or the server started)", ver);
    }
    co_return json_response(200, features_json(id, *reading), ver);
  }

  if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && (parts[2] == "alarms" || parts[2] == "maintenance")) {
    if (!caller.admin()) co_return forbidden("alarms need the admin token");
    auto res = co_await alarms_route(alarms_, method, parts, q.params, req.body(), "admin", ver);
    co_return res;
  }

  if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && (parts[2] == "contracts" || parts[2] == "audit")) {
    if (!caller.admin()) co_return forbidden("contracts and the audit log need the admin token");
    co_return contracts_route(registry_, pipeline_.contracts(), method, parts, q.params, req.body(), "admin", ver);
  }

  if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "devices") {
    // /api/v1/devices
    if (parts.size() == 3) {
      if (!caller.admin()) co_return forbidden("listing or adding devices needs the admin token");
      if (method == bhttp::verb::get) {
        auto list = registry_.list_devices();
        if (!list) co_return to_http_error(list.error(), ver);
        json::array arr;
        for (const auto& d : *list) arr.push_back(device_json(d));
        co_return json_response(200, json::object{{"devices", std::move(arr)}}, ver);
      }
      if (method == bhttp::verb::post) {
        boost::system::error_code ec;
        auto body = json::parse(req.body(), ec);
        if (ec || !body.is_object()) co_return error_response(400, "bad_request", "body must be a JSON object like {\"id\": \"pump-1\"}", ver);
        const auto& o = body.as_object();
        registry::NewDevice nd;
        auto str = [&](const char* k) -> std::string {
          const auto* v = o.if_contains(k);
          return v && v->is_string() ? std::string(v->as_string()) : std::string();
        };
        nd.id = str("id");
        nd.name = str("name");
        nd.profile = str("profile");
        if (const auto* t = o.if_contains("tags")) {
          if (!t->is_object()) co_return error_response(400, "bad_request", "tags must be an object of strings", ver);
          for (const auto& [k, v] : t->as_object()) {
            if (!v.is_string()) co_return error_response(400, "bad_request", "tag '" + std::string(k) + "' must be a string", ver);
            nd.tags.emplace_back(std::string(k), std::string(v.as_string()));
          }
        }
        if (auto st = check_required_tags(registry_, nd.profile.empty() ? "generic" : nd.profile, nd.tags); !st) {
          co_return to_http_error(st.error(), ver);
        }
        auto token = registry_.add_device(nd);
        if (!token) co_return to_http_error(token.error(), ver);
        auto dev = registry_.get_device(nd.id);
        auto out = device_json(*dev);
        out["token"] = *token;
        co_return json_response(201, out, ver);
      }
      co_return error_response(405, "method_not_allowed", "use GET or POST", ver);
    }
    const std::string& id = parts[3];
    if (auto st = core::validate_device_id(id); !st) co_return error_response(400, "bad_request", st.error().context(), ver);
    const bool self_or_admin = caller.admin() || caller.is_device(id);
    // /api/v1/devices/{id}
    if (parts.size() == 4) {
      if (method == bhttp::verb::get) {
        if (!self_or_admin) co_return forbidden("not your device");
        auto d = registry_.get_device(id);
        if (!d) co_return to_http_error(d.error(), ver);
        co_return json_response(200, device_json(*d), ver);
      }
      if (method == bhttp::verb::delete_) {
        if (!caller.admin()) co_return forbidden("deleting a device needs the admin token");
        auto st = registry_.delete_device(id);
        if (!st) co_return to_http_error(st.error(), ver);
        co_return empty_response(204, ver);
      }
      co_return error_response(405, "method_not_allowed", "use GET or DELETE", ver);
    }
    const std::string& action = parts[4];
    if (parts.size() == 5 && (action == "disable" || action == "enable" || action == "rotate-token")) {
      if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
      if (!caller.admin()) co_return forbidden(action + " needs the admin token");
      if (action == "rotate-token") {
        auto token = registry_.rotate_token(id);
        if (!token) co_return to_http_error(token.error(), ver);
        co_return json_response(200, json::object{{"id", id}, {"token", *token}}, ver);
      }
      auto st = registry_.set_enabled(id, action == "enable");
      if (!st) co_return to_http_error(st.error(), ver);
      auto d = registry_.get_device(id);
      co_return json_response(200, device_json(*d), ver);
    }
    if (parts.size() == 5 && action == "calibrations") {
      if (!caller.admin()) co_return forbidden("calibrations need the admin token");
      co_return calibrations_route(registry_, pipeline_.calibrations(), metrics_, method, id, req.body(), "admin", ver);
    }
    if (parts.size() == 5 && action == "telemetry") {
      if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
      if (!self_or_admin) co_return forbidden("a device may only send its own telemetry");
      auto dev = registry_.identity(id);
      if (!dev) {
        if (registry::is(dev.error(), registry::Errc::unauthorized)) co_return forbidden(dev.error().context());
        co_return to_http_error(dev.error(), ver);
      }
      const int64_t received = now_ns();
      auto reported = ingest::reported_tags(req["X-Fieldline-Firmware"], req["X-Fieldline-Gateway"]);
      if (!reported) co_return error_response(400, "bad_request", reported.error().context(), ver);
      // Decoded in the pipeline with the profile's decoder (Content-Type may name SenML JSON
      // or CBOR); stored, or put in quarantine.
      std::vector<ingest::Message> msgs(1);
      msgs[0].format = ingest::format_of_content_type(req[bhttp::field::content_type]);
      msgs[0].raw = std::move(req.body());
      msgs[0].receipt_ns = received;
      msgs[0].decode = true;
      auto ctx = ingest::make_device_context(id, dev->profile, dev->tags, *reported);
      auto exec = co_await asio::this_coro::executor;
      auto outcomes = co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<ingest::MessageOutcome>)>(
          [&](auto handler) {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            pipeline_.submit(ctx, std::move(msgs), ingest::Transport::http, exec,
                             [h](std::vector<ingest::MessageOutcome> o) { (*h)(std::move(o)); });
          },
          asio::use_awaitable);
      if (!outcomes[0].status) co_return outcome_error(outcomes[0], id, ver);
      registry_.touch(id, now_ns());
      if (outcomes[0].rejected > 0) {
        co_return error_response(422, "tsdb.samples_rejected",
                                 std::to_string(outcomes[0].stored) + " samples stored, " + std::to_string(outcomes[0].rejected) +
                                     " refused; first: " + outcomes[0].first_rejection, ver);
      }
      if (outcomes[0].flagged > 0) {
        auto res = json_response(200, boost::json::object{{"stored", outcomes[0].stored}, {"flagged", outcomes[0].flagged},
                                                           {"warning", outcomes[0].first_warning},
                                                           {"contract_version", outcomes[0].contract_version},
                                                           {"message_id", "msg-" + std::to_string(outcomes[0].message_id)}}, ver);
        res.set("X-Fieldline-Message-Id", "msg-" + std::to_string(outcomes[0].message_id));
        co_return res;
      }
      auto res = empty_response(204, ver);
      // Where its lineage starts: GET /api/v1/lineage/<this id>.
      if (outcomes[0].message_id) res.set("X-Fieldline-Message-Id", "msg-" + std::to_string(outcomes[0].message_id));
      co_return res;
    }
    if (action == "commands" && parts.size() == 6) {
      if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
      if (!caller.admin()) co_return forbidden("sending commands needs the admin token");
      if (!transport::mqtt::valid_utf8(parts[5]) || parts[5].find_first_of("+#") != std::string::npos) {
        co_return error_response(400, "bad_request", "bad command name", ver);
      }
      size_t n = hooks_.deliver_command ? hooks_.deliver_command(id, parts[5], req.body()) : 0;
      co_return json_response(202, json::object{{"delivered_to_sessions", n}}, ver);
    }
    if (action == "metrics") {
      if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
      if (!self_or_admin) co_return forbidden("not your device");
      if (parts.size() == 5) {
        auto list = co_await pipeline_.metrics_of(id);
        json::array arr;
        for (const auto& [name, type] : list) arr.push_back(json::object{{"name", name}, {"type", tsdb::to_string(type)}});
        co_return json_response(200, json::object{{"device", id}, {"metrics", std::move(arr)}}, ver);
      }
      if (parts.size() == 6) {
        const std::string& metric = parts[5];
        auto range = time_range(q);
        if (!range) co_return to_http_error(range.error(), ver);
        auto [from, to] = *range;
        const std::string* agg_name = q.get("agg");
        // ?format=columns: {"ts": [epoch ms...], "value": [...]}, a third of the bytes and
        // quick to parse for charts with days of points (the console's).
        bool columns = false;
        if (const auto* f = q.get("format")) {
          if (*f != "columns" && *f != "points") co_return error_response(400, "bad_request", "format: points (the default) or columns", ver);
          columns = *f == "columns";
        }
        auto columns_response = [&](json::array ts, json::array values, const char* agg) {
          json::object body{{"device", id}, {"metric", metric}, {"ts", std::move(ts)}, {"value", std::move(values)}};
          if (agg) body["agg"] = agg;
          return json_response(200, body, ver);
        };
        if (!agg_name || *agg_name == "none" || *agg_name == "raw") {
          auto samples = co_await pipeline_.read(id, metric, from, to);
          if (!samples) co_return to_http_error(samples.error(), ver);
          if (columns) {
            json::array ts, values;
            ts.reserve(samples->size());
            values.reserve(samples->size());
            for (const auto& s : *samples) {
              ts.push_back(s.ts / core::kNsPerMs);
              values.push_back(value_json(s.value));
            }
            co_return columns_response(std::move(ts), std::move(values), nullptr);
          }
          json::array pts;
          pts.reserve(samples->size());
          // ?raw=true: each calibrated value with the reading it was calibrated from.
          const bool with_raw = q.get("raw") && *q.get("raw") == "true";
          auto calibrations = with_raw ? pipeline_.calibrations().find(id) : nullptr;
          for (const auto& s : *samples) {
            json::object pt{{"ts", core::format_rfc3339(s.ts)}, {"value", value_json(s.value)}};
            if (s.quality != ingest::Quality::good) pt["quality"] = ingest::to_string(s.quality);
            if (s.calibration != 0) {
              pt["calibration"] = s.calibration;
              const auto* cal = calibrations ? calibrations->by_id(s.calibration) : nullptr;
              const auto* v = std::get_if<double>(&s.value);
              if (cal && v) {
                if (auto raw = cal->invert(*v)) pt["raw"] = ingest::round_to_15_digits(*raw);
              }
            }
            pts.push_back(std::move(pt));
          }
          co_return json_response(200, json::object{{"device", id}, {"metric", metric}, {"points", std::move(pts)}}, ver);
        }
        auto agg = tsdb::parse_agg(*agg_name);
        if (!agg) co_return to_http_error(agg.error(), ver);
        tsdb::AggregateQuery aq;
        aq.from = from;
        aq.to = to;
        aq.agg = *agg;
        if (const auto* st = q.get("step")) {
          auto d = core::parse_duration(*st);
          if (!d || *d <= 0) co_return error_response(400, "bad_request", "step: expected a duration such as 1m", ver);
          aq.step = *d;
          // Align buckets to the step so results are stable between calls.
          aq.from = from - ((from % aq.step) + aq.step) % aq.step;
        }
        auto dm = tsdb::Matcher::make("device", tsdb::Matcher::Op::eq, id);
        auto mm = tsdb::Matcher::make("metric", tsdb::Matcher::Op::eq, metric);
        aq.selector.matchers = {*dm, *mm};
        aq.group_by = {"device", "metric"};
        auto r = co_await pipeline_.aggregate(aq);
        if (!r) co_return to_http_error(r.error(), ver);
        if (columns) {
          json::array ts, values;
          for (const auto& [key, g] : r->groups) {
            for (const auto& [t, st] : g.buckets) {
              double v = st.result(*agg);
              ts.push_back(t / core::kNsPerMs);
              values.push_back(std::isfinite(v) ? json::value(v) : json::value(nullptr));
            }
          }
          co_return columns_response(std::move(ts), std::move(values), tsdb::to_string(*agg));
        }
        json::array pts;
        for (const auto& [key, g] : r->groups) {
          for (const auto& [ts, st] : g.buckets) {
            double v = st.result(*agg);
            pts.push_back(json::object{{"ts", core::format_rfc3339(ts)}, {"value", std::isfinite(v) ? json::value(v) : json::value(nullptr)}});
          }
        }
        co_return json_response(200, json::object{{"device", id}, {"metric", metric}, {"agg", tsdb::to_string(*agg)},
                                                  {"points", std::move(pts)}}, ver);
      }
    }
    co_return error_response(404, "not_found", "no route for " + std::string(req.method_string()) + " " + path, ver);
  }

  // GET /api/v1/query?selector=...&from&to&step&agg&group_by=a,b — many series at once.
  if (path == "/api/v1/query" || path == "/api/v1/export") {
    if (!caller.admin()) co_return forbidden("queries across devices need the admin token");
    const auto* sel_text = q.get("selector");
    if (!sel_text) co_return error_response(400, "bad_request", "selector is required, e.g. temp{site=\"north\"}", ver);
    auto sel = tsdb::Selector::parse(*sel_text);
    if (!sel) co_return to_http_error(sel.error(), ver);
    auto range = time_range(q);
    if (!range) co_return to_http_error(range.error(), ver);
    if (path == "/api/v1/export") {
      // CSV or JSON lines of raw samples: device,metric,tags,ts,value
      bool csv = !q.get("format") || *q.get("format") == "csv";
      auto infos = co_await pipeline_.select(*sel);
      if (!infos) co_return to_http_error(infos.error(), ver);
      std::string body = csv ? "device,metric,tags,ts,value\n" : "";
      for (const auto& info : *infos) {
        auto samples = co_await pipeline_.read_series(info.key, range->first, range->second);
        if (!samples) co_return to_http_error(samples.error(), ver);
        std::string tags;
        for (const auto& [k, v] : info.key.tags) tags += (tags.empty() ? "" : ";") + k + "=" + v;
        for (const auto& s : *samples) {
          if (csv) {
            std::string v = core::to_json(value_json(s.value));
            body += info.key.device + "," + info.key.metric + "," + tags + "," + core::format_rfc3339(s.ts) + "," + v + "\n";
          } else {
            json::object t;
            for (const auto& [k, v] : info.key.tags) t[k] = v;
            body += core::to_json(json::object{{"device", info.key.device}, {"metric", info.key.metric}, {"tags", std::move(t)},
                                                 {"ts", core::format_rfc3339(s.ts)}, {"value", value_json(s.value)}}) + "\n";
          }
        }
      }
      Response res{bhttp::status::ok, ver};
      res.set(bhttp::field::content_type, csv ? "text/csv" : "application/x-ndjson");
      res.body() = std::move(body);
      res.prepare_payload();
      co_return res;
    }
    tsdb::AggregateQuery aq;
    aq.selector = std::move(*sel);
    aq.from = range->first;
    aq.to = range->second;
    auto agg = tsdb::parse_agg(q.get("agg") ? *q.get("agg") : "avg");
    if (!agg || *agg == tsdb::Agg::none) co_return error_response(400, "bad_request", "agg must be an aggregate such as avg", ver);
    aq.agg = *agg;
    if (const auto* st = q.get("step")) {
      auto d = core::parse_duration(*st);
      if (!d || *d <= 0) co_return error_response(400, "bad_request", "step: expected a duration such as 1m", ver);
      aq.step = *d;
      aq.from = aq.from - ((aq.from % aq.step) + aq.step) % aq.step;
    }
    if (const auto* g = q.get("group_by")) {
      size_t i = 0;
      while (i <= g->size()) {
        size_t c = g->find(',', i);
        std::string part = g->substr(i, c == std::string::npos ? std::string::npos : c - i);
        if (!part.empty()) aq.group_by.push_back(part);
        if (c == std::string::npos) break;
        i = c + 1;
      }
    }
    auto r = co_await pipeline_.aggregate(aq);
    if (!r) co_return to_http_error(r.error(), ver);
    co_return json_response(200, json::object{{"agg", tsdb::to_string(*agg)}, {"series", aggregate_json(*r, *agg)},
                                              {"samples_read", r->samples_read}, {"rollup_points_read", r->rollup_points_read}}, ver);
  }

  co_return error_response(404, "not_found", "no route for " + std::string(req.method_string()) + " " + path, ver);
}

}  // namespace fieldline::api
