// The alarm lifecycle: deduplication per device and key, active/cleared × acknowledged or not,
// comments, escalation of what waits unacknowledged, maintenance windows, and a storm held
// back per type.
#include <gtest/gtest.h>

#include "fieldline/analytics/alarms.h"

namespace fieldline::analytics::alarms {
namespace {

constexpr int64_t kMinute = 60'000'000'000LL;
constexpr int64_t kT0 = 1'795'400'000'000'000'000LL;

Raise hot(const std::string& device, int64_t at, double score = 0.9) {
  Raise r;
  r.type = "bearing_overheat";
  r.device = device;
  r.dedup_key = "bearing_overheat";
  r.severity = Severity::major;
  r.at_ns = at;
  r.evidence.score = score;
  r.evidence.samples = {{at, 91.2}};
  r.evidence.explanation = "temperature 91.2, expected 62.0 (robust_z)";
  r.runbook = "https://wiki.example/runbooks/bearing";
  return r;
}

TEST(Alarms, OneActiveAlarmPerDeviceAndKeyWithItsEvidenceAndRunbook) {
  AlarmBook book;
  auto first = book.raise(hot("pump-1", kT0, 0.8));
  ASSERT_EQ(first.kind, Outcome::Kind::raised);
  auto again = book.raise(hot("pump-1", kT0 + kMinute, 0.95));
  EXPECT_EQ(again.kind, Outcome::Kind::updated);
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(book.raise(hot("pump-2", kT0)).kind, Outcome::Kind::raised) << "another device: another alarm";
  const Alarm* a = book.get(first.id);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->occurrences, 2u);
  EXPECT_EQ(a->last_seen_ns, kT0 + kMinute);
  EXPECT_DOUBLE_EQ(a->evidence.score, 0.95) << "the strongest evidence is kept";
  EXPECT_EQ(a->runbook, "https://wiki.example/runbooks/bearing");
  // It clears when its condition does; the next occurrence is a new alarm.
  EXPECT_EQ(book.clear_condition("pump-1", "bearing_overheat", kT0 + 2 * kMinute), first.id);
  EXPECT_FALSE(book.get(first.id)->active);
  EXPECT_EQ(book.get(first.id)->cleared_by, "condition");
  auto next = book.raise(hot("pump-1", kT0 + 3 * kMinute));
  EXPECT_EQ(next.kind, Outcome::Kind::raised);
  EXPECT_NE(next.id, first.id);
}

TEST(Alarms, AcknowledgedAndActiveAreIndependentAndOperatorsLeaveATrail) {
  AlarmBook book;
  auto id = book.raise(hot("pump-1", kT0)).id;
  ASSERT_TRUE(book.acknowledge(id, "ana", kT0 + kMinute));
  auto twice = book.acknowledge(id, "ben", kT0 + 2 * kMinute);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message().find("acknowledged by ana"), std::string::npos);
  EXPECT_TRUE(book.get(id)->active) << "acknowledged, still active";
  ASSERT_TRUE(book.comment(id, "ana", "replacing the bearing on Thursday", kT0 + 3 * kMinute));
  EXPECT_FALSE(book.comment(id, "ana", "", kT0));
  ASSERT_TRUE(book.clear(id, "ana", kT0 + 4 * kMinute));
  EXPECT_FALSE(book.clear(id, "ana", kT0 + 5 * kMinute));
  EXPECT_FALSE(book.acknowledge(999, "ana", kT0));
  const Alarm* a = book.get(id);
  EXPECT_EQ(a->cleared_by, "ana");
  ASSERT_EQ(a->comments.size(), 1u);
  EXPECT_EQ(a->comments[0].by, "ana");
  AlarmBook::Filter unacked;
  unacked.acknowledged = false;
  auto other = book.raise(hot("pump-2", kT0)).id;
  auto listed = book.list(unacked);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]->id, other);
}

TEST(Alarms, EscalationMaintenanceWindowsAndStorms) {
  Policy policy;
  policy.escalate_after_ns = 15 * kMinute;
  policy.max_new_per_minute = 3;
  AlarmBook book(policy);
  auto id = book.raise(hot("pump-1", kT0)).id;
  EXPECT_TRUE(book.tick(kT0 + 10 * kMinute).empty());
  EXPECT_EQ(book.tick(kT0 + 16 * kMinute), std::vector<uint64_t>{id});
  EXPECT_EQ(book.get(id)->severity, Severity::critical);
  EXPECT_TRUE(book.tick(kT0 + 40 * kMinute).empty()) << "critical is the top";
  // Acknowledged alarms do not escalate.
  auto quiet = book.raise(hot("pump-9", kT0 + 41 * kMinute)).id;
  ASSERT_TRUE(book.acknowledge(quiet, "ana", kT0 + 42 * kMinute));
  EXPECT_TRUE(book.tick(kT0 + 90 * kMinute).empty());
  // Maintenance on pump-3: its alarms are suppressed (and counted), others are not.
  book.add_maintenance({"pump-3", kT0 + 100 * kMinute, kT0 + 160 * kMinute, "bearing swap"});
  EXPECT_EQ(book.raise(hot("pump-3", kT0 + 120 * kMinute)).kind, Outcome::Kind::suppressed);
  EXPECT_EQ(book.suppressed(), 1u);
  EXPECT_EQ(book.raise(hot("pump-3", kT0 + 170 * kMinute)).kind, Outcome::Kind::raised);
  // A storm: a thousand devices at once; three new alarms a minute of one type get through.
  size_t raised = 0;
  for (int i = 0; i < 1000; ++i) raised += book.raise(hot("fleet-" + std::to_string(i), kT0 + 200 * kMinute)).kind == Outcome::Kind::raised;
  EXPECT_EQ(raised, 3u);
  EXPECT_EQ(book.rate_limited(), 997u);
  EXPECT_EQ(book.raise(hot("fleet-5", kT0 + 202 * kMinute)).kind, Outcome::Kind::raised) << "a minute later";
}

TEST(Alarms, SeveritiesReadBack) {
  for (auto s : {Severity::info, Severity::warning, Severity::minor, Severity::major, Severity::critical}) {
    EXPECT_EQ(*parse_severity(to_string(s)), s);
  }
  EXPECT_FALSE(parse_severity("urgent"));
}

}  // namespace
}  // namespace fieldline::analytics::alarms
