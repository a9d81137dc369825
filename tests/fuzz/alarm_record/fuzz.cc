// libFuzzer target: a saved alarm (alarms.db keeps each as JSON, read back at start). Damage
// must be refused or read as empty fields, never crash; what reads back writes out again.
#include <boost/json.hpp>

#include <cstdint>
#include <string>

#include "fieldline/analytics/alarm_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::analytics;
  boost::system::error_code ec;
  auto v = boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
  if (ec) return 0;
  auto a = alarm_from_json(v);
  if (!a) return 0;
  auto again = alarm_from_json(alarm_to_json(*a));
  if (!again || again->id != a->id || again->comments.size() != a->comments.size()) __builtin_trap();
  (void)event_json(AlarmEvent::raised, *a, 0);
  return 0;
}
