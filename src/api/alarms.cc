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

json::object detector_version_json(const registry::ContractVersion& v) {
  return json::object{{"profile", v.profile},
                      {"version", v.version},
                      {"created", core::format_rfc3339(v.created_ns)},
                      {"created_by", v.created_by}};
}

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
  if (parts.size() == 3) {
    if (method == bhttp::verb::post) {
      auto parsed = analytics::parse_detector_document(body);
      if (!parsed) return to_http_error(parsed.error(), ver);
      if (parsed->profile.empty()) {
        return error_response(400, "invalid_argument", "profile: missing (the profile the document configures)", ver);
      }
      auto history = registry.detector_history(parsed->profile);
      if (!history) return to_http_error(history.error(), ver);
      if (!history->empty() && history->back().document == body) {
        auto out = detector_version_json(history->back());
        out["new_version"] = false;
        return detail::json_response(200, out, ver);
      }
      registry::ContractVersion v;
      v.profile = parsed->profile;
      v.version = history->empty() ? 1 : history->back().version + 1;
      v.document = body;
      v.created_ns = detail::now_ns();
      v.created_by = actor;
      registry::AuditEntry audit{0, v.created_ns, actor, "detectors.apply", "detectors:" + v.profile + "@" + std::to_string(v.version),
                                 std::to_string(parsed->metrics.size()) + " metric settings, " +
                                     std::to_string(parsed->rules.size()) + " rules" +
                                     (parsed->multivariate ? ", multivariate" : "")};
      if (auto st = registry.add_detector_version(v, audit); !st) return to_http_error(st.error(), ver);
      auto entry = std::make_shared<analytics::ProfileDetectors>();
      entry->version = v.version;
      entry->document = std::move(*parsed);
      book.publish(v.profile, std::move(entry),
                   [version = v.version](const analytics::ProfileDetectors& current) { return current.version >= version; });
      auto out = detector_version_json(v);
      out["new_version"] = true;
      return detail::json_response(201, out, ver);
    }
    if (method != bhttp::verb::get) return error_response(405, "method_not_allowed", "use GET or POST", ver);
    auto profiles = registry.detector_profiles();
    if (!profiles) return to_http_error(profiles.error(), ver);
    json::array out;
    for (const auto& p : *profiles) {
      auto h = registry.detector_history(p);
      if (!h) return to_http_error(h.error(), ver);
      if (!h->empty()) out.push_back(detector_version_json(h->back()));
    }
    return detail::json_response(200, json::object{{"detectors", std::move(out)}}, ver);
  }
  if (method != bhttp::verb::get) return error_response(405, "method_not_allowed", "use GET", ver);
  const std::string& profile = parts[3];
  auto history = registry.detector_history(profile);
  if (!history) return to_http_error(history.error(), ver);
  if (history->empty()) {
    return error_response(404, "not_found", "no detector document for profile '" + profile + "' (it runs the default detectors)", ver);
  }
  if (parts.size() == 4) {
    json::array versions;
    for (const auto& v : *history) versions.push_back(detector_version_json(v));
    return detail::json_response(200, json::object{{"profile", profile}, {"versions", std::move(versions)}}, ver);
  }
  if (parts.size() == 6 && parts[4] == "versions") {
    const registry::ContractVersion* found = nullptr;
    for (const auto& v : *history) {
      if (parts[5] == "latest" ? &v == &history->back() : std::to_string(v.version) == parts[5]) found = &v;
    }
    if (!found) return error_response(404, "not_found", "'" + profile + "' has no detector document version " + parts[5], ver);
    auto out = detector_version_json(*found);
    out["document"] = found->document;
    return detail::json_response(200, out, ver);
  }
  return error_response(404, "not_found", "no such detectors route", ver);
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
