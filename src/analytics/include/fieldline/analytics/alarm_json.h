#pragma once
// Alarms as JSON: what the API shows, what channels receive and what alarms.db keeps.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>

#include "fieldline/analytics/alarms.h"
#include "fieldline/core/result.h"

namespace fieldline::analytics {

// What happened to an alarm, as its event says ("alarm.raised", ...).
enum class AlarmEvent { raised, updated, cleared, acknowledged, escalated, commented };
const char* to_string(AlarmEvent e);

// An alarm as the API shows it, and back (the saved form). Reading refuses a document
// without an id or severity; anything else missing or of the wrong type reads as empty.
boost::json::object alarm_to_json(const alarms::Alarm& a);
Result<alarms::Alarm> alarm_from_json(const boost::json::value& v);
// {"event": "alarm.raised", "at": ..., "alarm": {...}}: what channels receive.
std::string event_json(AlarmEvent e, const alarms::Alarm& a, int64_t at_ns);

}  // namespace fieldline::analytics
