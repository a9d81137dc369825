// Detector document routes (versioned per profile, like contracts) and the alarm routes:
// list, filter, show, acknowledge, clear, comment, maintenance windows.
#include <boost/json.hpp>

#include <charconv>

#include "fieldline/api/api.h"
#include "fieldline/core/time.h"
#include "responses.h"

namespace fieldline::api {
namespace {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using transport::http::error_response;
using transport::http::Response;

std::optional<uint64_t> parse_id(const std::string& s) {
  uint64_t id = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || p != s.data() + s.size() || id == 0) return std::nullopt;
  return id;
}

}  // namespace

Status load_detectors(registry::Registry& registry, analytics::DetectorBook& book) {
  FL_TRY(profiles, registry.detector_profiles());
  for (const auto& p : profiles) {
    FL_TRY(history, registry.detector_history(p));
    if (history.empty()) continue;
    auto doc = analytics::parse_detector_document(history.back().document);
    if (!doc) return core::make_error(core::Errc::corrupt, "detector document of '" + p + "': " + doc.error().message());
    auto entry = std::make_shared<analytics::ProfileDetectors>();
    entry->version = history.back().version;
    entry->document = std::move(*doc);
    book.publish(p, std::move(entry), [](const analytics::ProfileDetectors&) { return false; });
  }
  return {};
}

Response detectors_route(registry::Registry& registry, analytics::DetectorBook& book, bhttp::verb method,
                         const std::vector<std::string>& parts, const std::string& body, const std::string& actor,
                         unsigned ver) {
  ProfileDocuments d;
  d.noun = "detector document";
  d.list_key = "detectors";
  d.audit_action = "detectors.apply";
  d.subject = "detectors";
  d.absent = "it runs the default detectors";
  d.history = [&registry](const std::string& p) { return registry.detector_history(p); };
  d.profiles = [&registry] { return registry.detector_profiles(); };
  d.add = [&registry](const registry::ContractVersion& v, const registry::AuditEntry& a) { return registry.add_detector_version(v, a); };
  std::optional<analytics::DetectorDocument> parsed;
  d.check = [&parsed](const std::string& text) -> Result<std::pair<std::string, std::string>> {
    auto doc = analytics::parse_detector_document(text);
    if (!doc) return doc.error();
    parsed = std::move(*doc);
    return std::pair{parsed->profile, std::to_string(parsed->metrics.size()) + " metric settings, " + std::to_string(parsed->rules.size()) +
                                          " rules" + (parsed->multivariate ? ", multivariate" : "")};
  };
  d.publish = [&book, &parsed](const registry::ContractVersion& v) {
    auto entry = std::make_shared<analytics::ProfileDetectors>();
    entry->version = v.version;
    entry->document = std::move(*parsed);
    book.publish(v.profile, std::move(entry),
                 [version = v.version](const analytics::ProfileDetectors& current) { return current.version >= version; });
  };
  return profile_documents_route(d, method, parts, 3, body, actor, ver);
}

Result<analytics::alarms::AlarmBook::Filter> parse_alarm_filter(const std::map<std::string, std::string>& params) {
  analytics::alarms::AlarmBook::Filter f;
  for (const auto& [k, v] : params) {
    if (k == "state") {
      if (v != "active" && v != "cleared") return core::make_error(core::Errc::invalid_argument, "state: expected active or cleared");
      f.active = v == "active";
    } else if (k == "acknowledged") {
      if (v != "true" && v != "false") return core::make_error(core::Errc::invalid_argument, "acknowledged: expected true or false");
      f.acknowledged = v == "true";
    } else if (k == "device") {
      f.device = v;
    } else if (k == "type") {
      f.type = v;
    } else if (k == "severity") {
      FL_TRY(s, analytics::alarms::parse_severity(v));
      f.min_severity = s;
    } else if (k != "limit" && k != "token" && k != "topics") {
      return core::make_error(core::Errc::invalid_argument,
                              "unknown filter '" + k.substr(0, 40) + "' (state, acknowledged, device, type, severity, limit)");
    }
  }
  return f;
}

asio::awaitable<Response> alarms_route(analytics::AlarmService& alarms, bhttp::verb method, const std::vector<std::string>& parts,
                                       const std::map<std::string, std::string>& params, const std::string& body,
                                       const std::string& actor, unsigned ver) {
  if (parts[2] == "maintenance") {
    if (parts.size() != 3) co_return error_response(404, "not_found", "no such maintenance route", ver);
    if (method == bhttp::verb::get) {
      auto job = alarms.maintenance();  // named: GCC 12 and temporaries in co_await
      auto windows = co_await std::move(job);
      json::array out;
      for (const auto& w : windows) {
        out.push_back(json::object{{"device", w.device}, {"from", core::format_rfc3339(w.from_ns)},
                                   {"to", core::format_rfc3339(w.to_ns)}, {"reason", w.reason}});
      }
      co_return detail::json_response(200, json::object{{"maintenance", std::move(out)}}, ver);
    }
    if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use GET or POST", ver);
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) co_return error_response(400, "bad_request", "expected a JSON object {device, from, to, reason}", ver);
    const auto& o = v.as_object();
    auto str = [&](const char* k) {
      const auto* x = o.if_contains(k);
      return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    const int64_t now = detail::now_ns();
    analytics::alarms::MaintenanceWindow w;
    w.device = str("device");
    w.reason = str("reason");
    auto from = str("from").empty() ? Result<int64_t>(now) : core::parse_time(str("from"), now);
    auto to = core::parse_time(str("to"), now);
    if (!from || !to) co_return error_response(400, "invalid_argument", "from and to: expected RFC 3339 times (from defaults to now)", ver);
    if (w.reason.empty()) co_return error_response(400, "invalid_argument", "reason: missing (why the alarms are held)", ver);
    w.from_ns = *from;
    w.to_ns = *to;
    auto job = alarms.add_maintenance(w);
    auto st = co_await std::move(job);
    if (!st) co_return to_http_error(st.error(), ver);
    co_return detail::json_response(201, json::object{{"device", w.device}, {"from", core::format_rfc3339(w.from_ns)},
                                                      {"to", core::format_rfc3339(w.to_ns)}, {"reason", w.reason}},
                                    ver);
  }
  if (parts.size() == 3) {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto filter = parse_alarm_filter(params);
    if (!filter) co_return to_http_error(filter.error(), ver);
    size_t limit = 100;
    if (auto it = params.find("limit"); it != params.end()) {
      auto n = parse_id(it->second);
      if (!n || *n > 10000) co_return error_response(400, "invalid_argument", "limit: expected 1 to 10000", ver);
      limit = *n;
    }
    auto job = alarms.list(std::move(*filter), limit);
    auto list = co_await std::move(job);
    json::array out;
    for (const auto& a : list) out.push_back(analytics::alarm_to_json(a));
    co_return detail::json_response(200, json::object{{"alarms", std::move(out)}}, ver);
  }
  auto id = parse_id(parts[3]);
  if (!id) co_return error_response(400, "invalid_argument", "'" + parts[3].substr(0, 40) + "' is not an alarm id", ver);
  if (parts.size() == 4) {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto job = alarms.get(*id);
    auto a = co_await std::move(job);
    if (!a) co_return to_http_error(a.error(), ver);
    co_return detail::json_response(200, analytics::alarm_to_json(*a), ver);
  }
  if (parts.size() != 5) co_return error_response(404, "not_found", "no such alarm route", ver);
  if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
  Result<analytics::alarms::Alarm> done = core::make_error(core::Errc::not_found, "");
  if (parts[4] == "acknowledge") {
    auto job = alarms.acknowledge(*id, actor);
    done = co_await std::move(job);
  } else if (parts[4] == "clear") {
    auto job = alarms.clear(*id, actor);
    done = co_await std::move(job);
  } else if (parts[4] == "comment") {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    const auto* text = !ec && v.is_object() ? v.as_object().if_contains("text") : nullptr;
    if (!text || !text->is_string()) co_return error_response(400, "bad_request", "expected {\"text\": \"...\"}", ver);
    auto job = alarms.comment(*id, actor, std::string(text->as_string()));
    done = co_await std::move(job);
  } else {
    co_return error_response(404, "not_found", "no alarm action '" + parts[4].substr(0, 40) + "' (acknowledge, clear, comment)", ver);
  }
  if (!done) co_return to_http_error(done.error(), ver);
  co_return detail::json_response(200, analytics::alarm_to_json(*done), ver);
}

}  // namespace fieldline::api
