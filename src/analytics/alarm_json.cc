#include "fieldline/analytics/alarm_json.h"

#include <boost/json.hpp>

#include <cmath>

#include "fieldline/core/errc.h"
#include "fieldline/core/json.h"
#include "fieldline/core/time.h"

namespace fieldline::analytics {

namespace json = boost::json;
using alarms::Alarm;

const char* to_string(AlarmEvent e) {
  switch (e) {
    case AlarmEvent::raised: return "alarm.raised";
    case AlarmEvent::updated: return "alarm.updated";
    case AlarmEvent::cleared: return "alarm.cleared";
    case AlarmEvent::acknowledged: return "alarm.acknowledged";
    case AlarmEvent::escalated: return "alarm.escalated";
    case AlarmEvent::commented: return "alarm.commented";
  }
  return "alarm.?";
}


namespace {

json::value time_or_null(int64_t ns) { return ns == 0 ? json::value(nullptr) : json::value(core::format_rfc3339(ns)); }

double number(const json::value* v) { return v && v->is_number() ? v->to_number<double>() : 0; }
int64_t integer(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : v && v->is_uint64() ? static_cast<int64_t>(v->as_uint64()) : 0;
}
std::string text(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

json::object alarm_to_json(const Alarm& a) {
  json::array samples;
  for (const auto& [ts, v] : a.evidence.samples) {
    samples.push_back(json::array{core::format_rfc3339(ts), std::isfinite(v) ? json::value(v) : json::value(nullptr), ts});
  }
  json::array comments;
  for (const auto& c : a.comments) {
    comments.push_back(json::object{{"at", core::format_rfc3339(c.at_ns)}, {"at_ns", c.at_ns}, {"by", c.by}, {"text", c.text}});
  }
  return json::object{
      {"id", a.id},
      {"type", a.type},
      {"device", a.device},
      {"dedup_key", a.dedup_key},
      {"severity", alarms::to_string(a.severity)},
      {"state", a.active ? "active" : "cleared"},
      {"active", a.active},
      {"acknowledged", a.acknowledged},
      {"raised", core::format_rfc3339(a.raised_ns)},
      {"raised_ns", a.raised_ns},
      {"last_seen", core::format_rfc3339(a.last_seen_ns)},
      {"last_seen_ns", a.last_seen_ns},
      {"cleared", time_or_null(a.cleared_ns)},
      {"cleared_ns", a.cleared_ns},
      {"cleared_by", a.cleared_by},
      {"acknowledged_at", time_or_null(a.acknowledged_ns)},
      {"acknowledged_ns", a.acknowledged_ns},
      {"acknowledged_by", a.acknowledged_by},
      {"occurrences", a.occurrences},
      {"escalations", a.escalations},
      {"escalated_ns", a.escalated_ns},
      {"evidence", json::object{{"score", a.evidence.score}, {"explanation", a.evidence.explanation}, {"samples", std::move(samples)}}},
      {"runbook", a.runbook},
      {"comments", std::move(comments)},
  };
}

Result<Alarm> alarm_from_json(const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return core::make_error(core::Errc::corrupt, "a saved alarm is not a JSON object");
  Alarm a;
  a.id = static_cast<uint64_t>(integer(*o, "id"));
  a.type = text(*o, "type");
  a.device = text(*o, "device");
  a.dedup_key = text(*o, "dedup_key");
  auto severity = alarms::parse_severity(text(*o, "severity"));
  if (a.id == 0 || !severity) return core::make_error(core::Errc::corrupt, "a saved alarm has no id or severity");
  a.severity = *severity;
  a.active = text(*o, "state") == "active";
  const auto* ack = o->if_contains("acknowledged");
  a.acknowledged = ack && ack->is_bool() && ack->as_bool();
  a.raised_ns = integer(*o, "raised_ns");
  a.last_seen_ns = integer(*o, "last_seen_ns");
  a.cleared_ns = integer(*o, "cleared_ns");
  a.cleared_by = text(*o, "cleared_by");
  a.acknowledged_ns = integer(*o, "acknowledged_ns");
  a.acknowledged_by = text(*o, "acknowledged_by");
  a.occurrences = static_cast<uint64_t>(integer(*o, "occurrences"));
  a.escalations = static_cast<int>(integer(*o, "escalations"));
  a.escalated_ns = integer(*o, "escalated_ns");
  a.runbook = text(*o, "runbook");
  if (const auto* e = o->if_contains("evidence"); e && e->is_object()) {
    const auto& eo = e->as_object();
    a.evidence.score = number(eo.if_contains("score"));
    a.evidence.explanation = text(eo, "explanation");
    if (const auto* s = eo.if_contains("samples"); s && s->is_array()) {
      for (const auto& item : s->as_array()) {
        const auto* row = item.if_array();
        if (!row || row->size() != 3) continue;
        const auto& value = (*row)[1];
        a.evidence.samples.emplace_back((*row)[2].is_int64() ? (*row)[2].as_int64() : 0,
                                        value.is_number() ? value.to_number<double>() : std::nan(""));
      }
    }
  }
  if (const auto* c = o->if_contains("comments"); c && c->is_array()) {
    for (const auto& item : c->as_array()) {
      if (const auto* co = item.if_object()) a.comments.push_back({integer(*co, "at_ns"), text(*co, "by"), text(*co, "text")});
    }
  }
  return a;
}

std::string event_json(AlarmEvent e, const Alarm& a, int64_t at_ns) {
  return core::to_json(json::object{{"event", to_string(e)}, {"at", core::format_rfc3339(at_ns)}, {"alarm", alarm_to_json(a)}});
}

}  // namespace fieldline::analytics
