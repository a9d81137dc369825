// /api/v1/devices/{id}/calibrations and /api/v1/events; calibrations published to ingestion,
// and the overdue check that raises calibration.overdue events.
#include <boost/json.hpp>

#include <charconv>
#include <cmath>

#include "fieldline/api/api.h"
#include "fieldline/core/time.h"
#include "fieldline/ingest/calibration.h"
#include "responses.h"

namespace fieldline::api {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using transport::http::error_response;
using transport::http::Response;

Result<ingest::Calibration> calibration_of(const registry::CalibrationRecord& r) {
  FL_TRY(c, ingest::parse_calibration(r.document, r.valid_from_ns));
  c.id = r.id;
  c.device = r.device;
  return c;
}

// The record in force for each metric now: the latest valid_from at or before `now`.
std::map<std::string, int64_t> current_ids(const std::vector<registry::CalibrationRecord>& records, int64_t now) {
  std::map<std::string, std::pair<int64_t, int64_t>> best;  // metric -> (valid_from, id)
  for (const auto& r : records) {
    if (r.valid_from_ns > now) continue;
    auto& b = best[r.device + "\n" + r.metric];
    if (r.valid_from_ns >= b.first) b = {r.valid_from_ns, r.id};
  }
  std::map<std::string, int64_t> out;
  for (const auto& [k, v] : best) out[k] = v.second;
  return out;
}

json::object record_json(const registry::CalibrationRecord& r, const std::map<std::string, int64_t>& current, int64_t now) {
  boost::system::error_code ec;
  auto doc = json::parse(r.document, ec);
  // The registry holds what calibration_json wrote; anything else shows as an empty record.
  json::object o = !ec && doc.is_object() ? doc.as_object() : json::object{};
  if (ec || !doc.is_object()) o["metric"] = r.metric;
  o["id"] = r.id;
  o["device"] = r.device;
  o["created"] = core::format_rfc3339(r.created_ns);
  o["created_by"] = r.created_by;
  auto it = current.find(r.device + "\n" + r.metric);
  const char* status = r.valid_from_ns > now                          ? "scheduled"
                       : it == current.end() || it->second != r.id   ? "superseded"
                       : r.due_ns != 0 && r.due_ns <= now            ? "overdue"
                                                                      : "current";
  o["status"] = status;
  return o;
}

}  // namespace

namespace {
// Publishes to ingestion the calibrations of every device that has records in `records`
// (all of each such device's records).
Status publish(const std::vector<registry::CalibrationRecord>& records, ingest::CalibrationBook& book) {
  std::map<std::string, std::vector<ingest::Calibration>> by_device;
  for (const auto& r : records) {
    FL_TRY(c, calibration_of(r));
    by_device[r.device].push_back(std::move(c));
  }
  for (auto& [device, list] : by_device) book.publish(device, std::move(list));
  return {};
}
}  // namespace

Status load_calibrations(registry::Registry& registry, ingest::CalibrationBook& book) {
  FL_TRY(all, registry.calibrations(""));
  return publish(all, book);
}

Result<size_t> raise_overdue_calibrations(registry::Registry& registry, ops::Metrics& metrics, int64_t now) {
  FL_TRY(all, registry.calibrations(""));
  auto current = current_ids(all, now);
  size_t overdue = 0, raised = 0;
  for (const auto& r : all) {
    auto it = current.find(r.device + "\n" + r.metric);
    if (it == current.end() || it->second != r.id || r.due_ns == 0 || r.due_ns > now) continue;
    ++overdue;
    registry::Event e;
    e.at_ns = now;
    e.kind = "calibration.overdue";
    e.device = r.device;
    e.subject = "calibration:" + std::to_string(r.id);
    boost::system::error_code ec;
    auto doc = json::parse(r.document, ec);
    e.detail = core::to_json(json::object{{"metric", r.metric}, {"due", core::format_rfc3339(r.due_ns)},
                                          {"reference", doc.is_object() && doc.as_object().contains("reference") ? doc.at("reference") : json::value("")}});
    FL_TRY(added, registry.add_event(e));
    raised += added;
  }
  metrics.gauge("fieldline_calibrations_overdue", "Calibrations in force whose due date has passed").set(static_cast<int64_t>(overdue));
  return raised;
}

Response calibrations_route(registry::Registry& registry, ingest::CalibrationBook& book, ops::Metrics& metrics, bhttp::verb method,
                            const std::string& device, const std::string& body, const std::string& actor, unsigned ver) {
  const int64_t now = detail::now_ns();
  if (method == bhttp::verb::get) {
    auto list = registry.calibrations(device);
    if (!list) return to_http_error(list.error(), ver);
    auto current = current_ids(*list, now);
    json::array out;
    for (const auto& r : *list) out.push_back(record_json(r, current, now));
    return detail::json_response(200, json::object{{"device", device}, {"calibrations", std::move(out)}}, ver);
  }
  if (method != bhttp::verb::post) return error_response(405, "method_not_allowed", "use GET or POST", ver);
  if (auto d = registry.get_device(device); !d) return to_http_error(d.error(), ver);
  auto c = ingest::parse_calibration(body, now);
  if (!c) return to_http_error(c.error(), ver);
  registry::CalibrationRecord rec;
  rec.device = device;
  rec.metric = c->metric;
  rec.document = ingest::calibration_json(*c);
  rec.valid_from_ns = c->valid_from_ns;
  rec.due_ns = c->due_ns;
  rec.created_ns = now;
  rec.created_by = actor;
  registry::AuditEntry audit;
  audit.at_ns = now;
  audit.actor = actor;
  audit.action = "calibration.add";
  audit.subject = "calibration:" + device + "/" + c->metric;
  audit.detail = rec.document;
  auto id = registry.add_calibration(rec, audit);
  if (!id) return to_http_error(id.error(), ver);
  rec.id = *id;
  // Ingestion applies it from the next message on (samples from valid_from on).
  auto all = registry.calibrations(device);
  if (!all) return to_http_error(all.error(), ver);
  if (auto st = publish(*all, book); !st) return to_http_error(st.error(), ver);
  // One recorded already past its due date is overdue now, not at the next minute's check.
  (void)raise_overdue_calibrations(registry, metrics, now);
  auto current = current_ids(*all, now);
  return detail::json_response(201, record_json(rec, current, now), ver);
}

Response events_route(registry::Registry& registry, const std::map<std::string, std::string>& params, unsigned ver) {
  std::string kind;
  size_t limit = 100;
  for (const auto& [k, v] : params) {
    if (k == "kind") {
      kind = v;
    } else if (k == "limit") {
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
      if (ec != std::errc() || p != v.data() + v.size()) return error_response(400, "bad_request", "limit must be a number", ver);
    } else {
      return error_response(400, "bad_request", "unknown parameter '" + k + "' (kind, limit)", ver);
    }
  }
  auto list = registry.events(kind, limit);
  if (!list) return to_http_error(list.error(), ver);
  json::array out;
  for (const auto& e : *list) {
    boost::system::error_code ec;
    auto detail = json::parse(e.detail, ec);
    out.push_back(json::object{{"id", e.id}, {"at", core::format_rfc3339(e.at_ns)}, {"kind", e.kind}, {"device", e.device},
                               {"subject", e.subject}, {"detail", ec ? json::value(e.detail) : detail}});
  }
  return detail::json_response(200, json::object{{"events", std::move(out)}}, ver);
}

}  // namespace fieldline::api
