#pragma once
// Alarms and their lifecycle: what an operator acts on. An alarm has a type, a severity, the
// device, a deduplication key (one active alarm per device and key: a condition that keeps
// being detected updates it rather than raising another), its evidence (samples, score,
// explanation) and the runbook its profile gives. It is active or cleared, and acknowledged
// or not, independently (an operator may acknowledge an alarm that is still active, and a
// cleared alarm stays unacknowledged until someone looks). Maintenance windows suppress new
// alarms of the devices they cover; an unacknowledged active alarm escalates (severity up one
// step, once per delay); a storm is held back: beyond `max_new_per_minute` new alarms of one
// type, further ones are counted, not raised.
//
// Not thread-safe: owned by one shard (or guarded by its owner).

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::analytics::alarms {

enum class Severity { info, warning, minor, major, critical };
const char* to_string(Severity s);
Result<Severity> parse_severity(std::string_view s);

struct Evidence {
  std::vector<std::pair<int64_t, double>> samples;  // (time, value) around the detection
  double score = 0;
  std::string explanation;  // e.g. "temperature 91.2, expected 62.0 ± 3.1 (robust_z)"
};

struct Comment {
  int64_t at_ns = 0;
  std::string by, text;
};

struct Alarm {
  uint64_t id = 0;
  std::string type, device, dedup_key;
  Severity severity = Severity::warning;
  bool active = true, acknowledged = false;
  int64_t raised_ns = 0, last_seen_ns = 0, cleared_ns = 0, acknowledged_ns = 0;
  std::string acknowledged_by, cleared_by;  // cleared_by: "condition" when it cleared by itself
  uint64_t occurrences = 1;
  int escalations = 0;
  int64_t escalated_ns = 0;
  Evidence evidence;
  std::string runbook;
  std::vector<Comment> comments;
};

struct Raise {
  std::string type, device, dedup_key;
  Severity severity = Severity::warning;
  int64_t at_ns = 0;
  Evidence evidence;
  std::string runbook;
};

struct MaintenanceWindow {
  std::string device;  // "" for every device
  int64_t from_ns = 0, to_ns = 0;
  std::string reason;
};

struct Policy {
  int64_t escalate_after_ns = 0;  // 0: never
  size_t max_new_per_minute = 100;  // per alarm type
};

struct Outcome {
  enum class Kind { raised, updated, suppressed, rate_limited } kind;
  uint64_t id = 0;  // raised or updated
};

class AlarmBook {
 public:
  explicit AlarmBook(Policy policy = {}) : policy_(policy) {}

  Outcome raise(Raise r);
  // The condition behind the device's alarm with this key stopped: it clears (if active).
  std::optional<uint64_t> clear_condition(const std::string& device, const std::string& dedup_key, int64_t at_ns);
  // An operator's actions; errors name the alarm and why.
  Status acknowledge(uint64_t id, const std::string& by, int64_t at_ns);
  Status clear(uint64_t id, const std::string& by, int64_t at_ns);
  Status comment(uint64_t id, const std::string& by, std::string text, int64_t at_ns);
  // Escalates what has waited too long unacknowledged; returns the ids escalated.
  std::vector<uint64_t> tick(int64_t now_ns);

  void add_maintenance(MaintenanceWindow w) { maintenance_.push_back(std::move(w)); }
  const std::vector<MaintenanceWindow>& maintenance() const { return maintenance_; }
  // Drops maintenance windows that ended before `now_ns`.
  void expire_maintenance(int64_t now_ns);

  // Puts back an alarm kept elsewhere (loading a saved book); later ids follow the highest.
  void restore(Alarm a);
  // Forgets alarms cleared before `before_ns` (retention); returns their ids.
  std::vector<uint64_t> forget_cleared(int64_t before_ns);

  struct Filter {
    std::optional<bool> active, acknowledged;
    std::string device, type;
    std::optional<Severity> min_severity;
    bool matches(const Alarm& a) const;
  };
  // Newest first.
  std::vector<const Alarm*> list(const Filter& f) const;
  const Alarm* get(uint64_t id) const;
  uint64_t suppressed() const { return suppressed_; }
  uint64_t rate_limited() const { return rate_limited_; }

 private:
  Alarm* find(uint64_t id);
  Policy policy_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Alarm> alarms_;
  std::map<std::pair<std::string, std::string>, uint64_t> active_by_key_;  // (device, key) -> id
  std::vector<MaintenanceWindow> maintenance_;
  std::map<std::string, std::deque<int64_t>> recent_by_type_;  // raise times in the last minute
  uint64_t suppressed_ = 0, rate_limited_ = 0;
};

}  // namespace fieldline::analytics::alarms
