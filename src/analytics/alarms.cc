#include "fieldline/analytics/alarms.h"

#include <algorithm>

#include "fieldline/core/errc.h"

namespace fieldline::analytics::alarms {

namespace {
constexpr Severity kAll[] = {Severity::info, Severity::warning, Severity::minor, Severity::major, Severity::critical};
constexpr int64_t kMinute = 60'000'000'000LL;
}  // namespace

const char* to_string(Severity s) {
  switch (s) {
    case Severity::info: return "info";
    case Severity::warning: return "warning";
    case Severity::minor: return "minor";
    case Severity::major: return "major";
    case Severity::critical: return "critical";
  }
  return "?";
}

Result<Severity> parse_severity(std::string_view s) {
  for (auto v : kAll) {
    if (s == to_string(v)) return v;
  }
  return core::make_error(core::Errc::invalid_argument,
                          "unknown severity '" + std::string(s.substr(0, 40)) + "' (info, warning, minor, major, critical)");
}

Outcome AlarmBook::raise(Raise r) {
  // Already active for this device and key: the same alarm, seen again.
  if (auto it = active_by_key_.find({r.device, r.dedup_key}); it != active_by_key_.end()) {
    Alarm& a = alarms_.at(it->second);
    ++a.occurrences;
    a.last_seen_ns = std::max(a.last_seen_ns, r.at_ns);
    if (r.severity > a.severity) a.severity = r.severity;
    if (r.evidence.score >= a.evidence.score) a.evidence = std::move(r.evidence);
    return {Outcome::Kind::updated, a.id};
  }
  for (const auto& w : maintenance_) {
    if ((w.device.empty() || w.device == r.device) && r.at_ns >= w.from_ns && r.at_ns < w.to_ns) {
      ++suppressed_;
      return {Outcome::Kind::suppressed, 0};
    }
  }
  auto& recent = recent_by_type_[r.type];
  while (!recent.empty() && recent.front() <= r.at_ns - kMinute) recent.pop_front();
  if (policy_.max_new_per_minute > 0 && recent.size() >= policy_.max_new_per_minute) {
    ++rate_limited_;
    return {Outcome::Kind::rate_limited, 0};
  }
  recent.push_back(r.at_ns);
  Alarm a;
  a.id = next_id_++;
  a.type = std::move(r.type);
  a.device = std::move(r.device);
  a.dedup_key = std::move(r.dedup_key);
  a.severity = r.severity;
  a.raised_ns = a.last_seen_ns = r.at_ns;
  a.evidence = std::move(r.evidence);
  a.runbook = std::move(r.runbook);
  active_by_key_[{a.device, a.dedup_key}] = a.id;
  const uint64_t id = a.id;
  alarms_.emplace(id, std::move(a));
  return {Outcome::Kind::raised, id};
}

std::optional<uint64_t> AlarmBook::clear_condition(const std::string& device, const std::string& key, int64_t at_ns) {
  auto it = active_by_key_.find({device, key});
  if (it == active_by_key_.end()) return std::nullopt;
  const uint64_t id = it->second;
  Alarm& a = alarms_.at(id);
  a.active = false;
  a.cleared_ns = at_ns;
  a.cleared_by = "condition";
  active_by_key_.erase(it);
  return id;
}

Alarm* AlarmBook::find(uint64_t id) {
  auto it = alarms_.find(id);
  return it == alarms_.end() ? nullptr : &it->second;
}

const Alarm* AlarmBook::get(uint64_t id) const {
  auto it = alarms_.find(id);
  return it == alarms_.end() ? nullptr : &it->second;
}

Status AlarmBook::acknowledge(uint64_t id, const std::string& by, int64_t at_ns) {
  Alarm* a = find(id);
  if (!a) return core::make_error(core::Errc::not_found, "no alarm " + std::to_string(id));
  if (a->acknowledged) {
    return core::make_error(core::Errc::already_exists, "alarm " + std::to_string(id) + " was acknowledged by " + a->acknowledged_by);
  }
  a->acknowledged = true;
  a->acknowledged_by = by;
  a->acknowledged_ns = at_ns;
  return {};
}

Status AlarmBook::clear(uint64_t id, const std::string& by, int64_t at_ns) {
  Alarm* a = find(id);
  if (!a) return core::make_error(core::Errc::not_found, "no alarm " + std::to_string(id));
  if (!a->active) return core::make_error(core::Errc::already_exists, "alarm " + std::to_string(id) + " is already cleared");
  a->active = false;
  a->cleared_ns = at_ns;
  a->cleared_by = by;
  active_by_key_.erase({a->device, a->dedup_key});
  return {};
}

Status AlarmBook::comment(uint64_t id, const std::string& by, std::string text, int64_t at_ns) {
  Alarm* a = find(id);
  if (!a) return core::make_error(core::Errc::not_found, "no alarm " + std::to_string(id));
  if (text.empty() || text.size() > 4096) {
    return core::make_error(core::Errc::invalid_argument, "a comment is 1 to 4096 characters");
  }
  a->comments.push_back({at_ns, by, std::move(text)});
  return {};
}

std::vector<uint64_t> AlarmBook::tick(int64_t now_ns) {
  std::vector<uint64_t> escalated;
  if (policy_.escalate_after_ns <= 0) return escalated;
  for (const auto& [key, id] : active_by_key_) {
    Alarm& a = alarms_.at(id);
    const int64_t since = a.escalations == 0 ? a.raised_ns : a.escalated_ns;
    if (a.acknowledged || a.severity == Severity::critical || now_ns - since < policy_.escalate_after_ns) continue;
    a.severity = static_cast<Severity>(static_cast<int>(a.severity) + 1);
    ++a.escalations;
    a.escalated_ns = now_ns;
    escalated.push_back(id);
  }
  return escalated;
}

bool AlarmBook::Filter::matches(const Alarm& a) const {
  if (active && a.active != *active) return false;
  if (acknowledged && a.acknowledged != *acknowledged) return false;
  if (!device.empty() && a.device != device) return false;
  if (!type.empty() && a.type != type) return false;
  if (min_severity && a.severity < *min_severity) return false;
  return true;
}

std::vector<const Alarm*> AlarmBook::list(const Filter& f) const {
  std::vector<const Alarm*> out;
  for (auto it = alarms_.rbegin(); it != alarms_.rend(); ++it) {
    if (f.matches(it->second)) out.push_back(&it->second);
  }
  return out;
}

void AlarmBook::restore(Alarm a) {
  next_id_ = std::max(next_id_, a.id + 1);
  if (a.active) active_by_key_[{a.device, a.dedup_key}] = a.id;
  const uint64_t id = a.id;
  alarms_[id] = std::move(a);
}

std::vector<uint64_t> AlarmBook::forget_cleared(int64_t before_ns) {
  std::vector<uint64_t> gone;
  for (auto it = alarms_.begin(); it != alarms_.end();) {
    if (!it->second.active && it->second.cleared_ns < before_ns) {
      gone.push_back(it->first);
      it = alarms_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

void AlarmBook::expire_maintenance(int64_t now_ns) {
  std::erase_if(maintenance_, [now_ns](const MaintenanceWindow& w) { return w.to_ns < now_ns; });
}

}  // namespace fieldline::analytics::alarms
