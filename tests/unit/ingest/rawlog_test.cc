// The raw log: ids across restarts, a torn tail after a crash, sealing, compression, scans and
// retention, on the real file system.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "../tsdb/test_util.h"
#include "fieldline/core/env.h"
#include "fieldline/ingest/rawlog.h"

namespace fieldline::ingest {
namespace {

constexpr int64_t kT0 = 1'795'400'000'000'000'000;

uint64_t add(RawLog& log, int i, const std::string& device = "pump-1") {
  std::string payload = "{\"temperature\": " + std::to_string(i) + "}";
  std::vector<std::string_view> metrics{"temperature"};
  std::vector<int64_t> cals{7};
  RawEntryView e;
  e.received_ns = kT0 + i;
  e.device = device;
  e.transport = "mqtt";
  e.format = "auto";
  e.contract_version = 3;
  e.calibrations = cals;
  e.metrics = metrics;
  e.min_ts = e.max_ts = kT0 + i * 1000;
  e.samples = 1;
  e.payload = payload;
  return log.add(e);
}

std::vector<std::string> files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(dir)) out.push_back(f.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Shard 0's log with `records` records written and its segment left active, as a crash
// leaves it.
void write_records(core::Env& env, const std::string& dir, int records) {
  auto log = RawLog::open(env, dir, 0, {});
  ASSERT_TRUE(log);
  for (int i = 0; i < records; ++i) add(**log, i);
  ASSERT_TRUE((*log)->flush());
}

TEST(RawLog, EntriesRoundTripAndIdsContinueAcrossRestarts) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  uint64_t last = 0;
  {
    auto log = RawLog::open(*env, dir.path(), 2, {});
    ASSERT_TRUE(log) << log.error().message();
    for (int i = 0; i < 10; ++i) last = add(**log, i);
    ASSERT_TRUE((*log)->flush());
  }
  EXPECT_EQ(last >> 48, 2u);  // the shard is in the id
  auto found = RawLog::scan(*env, dir.path(), [](const RawEntry& e) { return e.payload == "{\"temperature\": 4}"; }, 10);
  ASSERT_TRUE(found);
  ASSERT_EQ(found->size(), 1u);
  const auto& e = (*found)[0];
  EXPECT_EQ(e.device, "pump-1");
  EXPECT_EQ(e.format, "auto");
  EXPECT_EQ(e.contract_version, 3);
  EXPECT_EQ(e.calibrations, (std::vector<int64_t>{7}));
  EXPECT_EQ(e.metrics, (std::vector<std::string>{"temperature"}));
  EXPECT_EQ(e.min_ts, kT0 + 4000);
  // Reopened: the segment that was being written is sealed, and ids go on from the last.
  auto log = RawLog::open(*env, dir.path(), 2, {});
  ASSERT_TRUE(log);
  EXPECT_EQ(add(**log, 10), last + 1);
  EXPECT_EQ((*log)->pending_compression().size(), 1u);
}

TEST(RawLog, ATornTailIsCutAndWholeRecordsStay) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  ASSERT_NO_FATAL_FAILURE(write_records(*env, dir.path(), 5));
  // A crash mid-write: half a record at the end.
  auto active = dir.path() + "/" + files(dir.path()).at(0);
  auto size = std::filesystem::file_size(active);
  std::filesystem::resize_file(active, size - 7);
  auto log = RawLog::open(*env, dir.path(), 0, {});
  ASSERT_TRUE(log) << log.error().message();
  auto all = RawLog::scan(*env, dir.path(), [](const RawEntry&) { return true; }, 100);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 4u);  // newest first
  EXPECT_EQ(all->front().payload, "{\"temperature\": 3}");
  // Garbage in the middle of a segment stops the reader there, never crashes it.
  std::string bytes(64, '\xff');
  size_t count = 0;
  EXPECT_EQ(decode_raw_records(bytes, [&](RawEntry) { ++count; }), 0u);
  EXPECT_EQ(count, 0u);
}

// Compression finds a segment's records by their framing alone; it must end them where the
// decoder does: at a torn record, a damaged one, or a stale one from an earlier file.
TEST(RawLog, TheFramingScanEndsWhereTheDecoderDoes) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  ASSERT_NO_FATAL_FAILURE(write_records(*env, dir.path(), 6));
  auto bytes = env->read_file(dir.path() + "/" + files(dir.path()).at(0));
  ASSERT_TRUE(bytes);
  const std::string whole = *bytes;
  auto decoded_end = [](std::string_view data, uint64_t first) {
    return decode_raw_records(data, std::function<void(RawEntry, size_t)>([](RawEntry, size_t) {}), first);
  };
  std::vector<size_t> ends;
  EXPECT_EQ(raw_records_end(whole, 0, [&](size_t end) { ends.push_back(end); }), whole.size());
  ASSERT_EQ(ends.size(), 6u);
  EXPECT_EQ(ends.back(), whole.size());
  const size_t third = ends[2];
  // Torn inside the fourth record.
  const std::string torn = whole.substr(0, third + 5);
  EXPECT_EQ(raw_records_end(torn, 0), third);
  EXPECT_EQ(decoded_end(torn, 0), third);
  // A flipped byte in the fourth record's body.
  std::string damaged = whole;
  damaged[third + 20] ^= 0x40;
  EXPECT_EQ(raw_records_end(damaged, 0), third);
  EXPECT_EQ(decoded_end(damaged, 0), third);
  // The first three records again after the six: ids that go back are a stale tail.
  const std::string stale = whole + whole.substr(0, third);
  EXPECT_EQ(raw_records_end(stale, 0), whole.size());
  EXPECT_EQ(decoded_end(stale, 0), whole.size());
  // Ids below the segment's first are not its own.
  EXPECT_EQ(raw_records_end(whole, UINT64_MAX), 0u);
  EXPECT_EQ(decoded_end(whole, UINT64_MAX), 0u);
}

TEST(RawLog, SegmentsAreSealedCompressedScannedAndExpired) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  RawLogOptions options;
  options.segment_bytes = 1024;
  options.retention_ns = 3600LL * 1'000'000'000;
  auto log = RawLog::open(*env, dir.path(), 1, options);
  ASSERT_TRUE(log);
  uint64_t wanted = 0;
  int sealed = 0;
  for (int i = 0; i < 200; ++i) {
    uint64_t id = add(**log, i, i % 2 ? "pump-1" : "pump-2");
    if (i == 17) wanted = id;
    ASSERT_TRUE((*log)->flush());
    if (auto s = (*log)->rotate_if_due(kT0)) {
      const std::string path = s->path;
      ASSERT_TRUE(RawLog::seal(*env, std::move(*s)));
      ASSERT_TRUE(RawLog::compress(*env, path));
      ++sealed;
    }
  }
  EXPECT_GT(sealed, 5);
  auto names = files(dir.path());
  EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n.ends_with(".zst"); }), sealed);
  // By id (the segment is found by name) and by device, across compressed segments.
  auto byid = RawLog::scan(*env, dir.path(), [&](const RawEntry& e) { return e.id == wanted; }, 1, wanted);
  ASSERT_TRUE(byid);
  ASSERT_EQ(byid->size(), 1u);
  EXPECT_EQ(byid->front().payload, "{\"temperature\": 17}");
  auto pump2 = RawLog::scan(*env, dir.path(), [](const RawEntry& e) { return e.device == "pump-2"; }, 1000);
  ASSERT_TRUE(pump2);
  EXPECT_EQ(pump2->size(), 100u);
  // Retention: sealed segments whose last message is older than an hour go; the active stays.
  ASSERT_TRUE((*log)->expire(kT0 + 2 * 3600LL * 1'000'000'000));
  names = files(dir.path());
  std::erase_if(names, [](const std::string& n) { return n.starts_with("spare-"); });
  EXPECT_EQ(names.size(), 1u);
  EXPECT_TRUE(names.at(0).ends_with(".active"));
}

// A log that is never idle: every time it is asked to seal, messages are waiting in its
// buffer. It seals anyway, with them in the sealed segment, and nothing is lost or doubled.
TEST(RawLog, ALogThatIsNeverIdleIsStillSealed) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  RawLogOptions options;
  options.segment_bytes = 1024;
  auto log = RawLog::open(*env, dir.path(), 0, options);
  ASSERT_TRUE(log);
  int sealed = 0;
  for (int i = 0; i < 300; ++i) {
    add(**log, i);
    if (i % 3 == 0) {
      ASSERT_TRUE((*log)->flush());  // the round's flush; then more arrive before the tick
    }
    if (i % 3 != 1) continue;
    if (auto s = (*log)->rotate_if_due(kT0)) {
      ASSERT_TRUE(RawLog::seal(*env, std::move(*s)));
      ++sealed;
    }
  }
  ASSERT_TRUE((*log)->flush());
  EXPECT_GT(sealed, 10) << "segments of 1 KiB over ~20 KiB of messages";
  auto all = RawLog::scan(*env, dir.path(), [](const RawEntry&) { return true; }, 1000);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 300u);
  std::set<std::string> payloads;
  for (const auto& e : *all) payloads.insert(e.payload);
  EXPECT_EQ(payloads.size(), 300u);
}

// Compressed segments' files are kept and written over by later segments; whatever a recycled
// file held past its new records never shows up: not in scans, not after a restart, not when a
// restart finds a spare that was renamed into place but never written.
TEST(RawLog, RecycledFilesNeverShowStaleRecords) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  RawLogOptions options;
  options.segment_bytes = 2048;
  std::set<uint64_t> written;
  uint64_t last = 0;
  auto write = [&](RawLog& log, int from, int to) {
    for (int i = from; i < to; ++i) {
      // Later payloads are shorter: a recycled file keeps a stale tail past its records.
      std::string payload = "{\"temperature\": " + std::to_string(i) + ", \"pad\": \"" + std::string(static_cast<size_t>(400 - i), 'x') + "\"}";
      std::vector<std::string_view> metrics{"temperature"};
      RawEntryView e;
      e.received_ns = kT0 + i;
      e.device = "pump-1";
      e.transport = "mqtt";
      e.format = "auto";
      e.metrics = metrics;
      e.min_ts = e.max_ts = kT0 + i;
      e.samples = 1;
      e.payload = payload;
      last = log.add(e);
      written.insert(last);
      ASSERT_TRUE(log.flush());
      if (auto sealed = log.rotate_if_due(kT0)) {
        const std::string path = sealed->path;
        ASSERT_TRUE(RawLog::seal(*env, std::move(*sealed)));
        ASSERT_TRUE(RawLog::compress(*env, path));
      }
    }
  };
  auto expect_exactly_written = [&] {
    auto all = RawLog::scan(*env, dir.path(), [](const RawEntry&) { return true; }, 100'000);
    ASSERT_TRUE(all);
    std::set<uint64_t> seen;
    for (const auto& e : *all) EXPECT_TRUE(seen.insert(e.id).second) << "id " << e.id << " twice";
    EXPECT_EQ(seen, written);
  };
  {
    auto log = RawLog::open(*env, dir.path(), 0, options);
    ASSERT_TRUE(log);
    write(**log, 0, 300);
  }
  auto names = files(dir.path());
  EXPECT_GE(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n.starts_with("spare-"); }), 1);
  expect_exactly_written();
  // Restarted: the active segment (a recycled file) is sealed with its records only.
  {
    auto log = RawLog::open(*env, dir.path(), 0, options);
    ASSERT_TRUE(log);
    expect_exactly_written();
    write(**log, 300, 330);
  }
  expect_exactly_written();
  // A spare renamed into place as the next active segment, then the process died before
  // writing to it: its old records are not taken for new ones.
  {
    auto log = RawLog::open(*env, dir.path(), 0, options);  // seals the last active segment
    ASSERT_TRUE(log);
    for (const auto& sealed : (*log)->pending_compression()) ASSERT_TRUE(RawLog::compress(*env, sealed));
  }
  names = files(dir.path());
  auto spare = std::find_if(names.begin(), names.end(), [](const std::string& n) { return n.starts_with("spare-"); });
  ASSERT_NE(spare, names.end());
  char next[17];
  std::snprintf(next, sizeof next, "%016llx", static_cast<unsigned long long>(last + 1));
  std::filesystem::rename(dir.path() + "/" + *spare, dir.path() + "/" + next + ".active");
  {
    auto log = RawLog::open(*env, dir.path(), 0, options);
    ASSERT_TRUE(log);
    expect_exactly_written();
    write(**log, 330, 340);
  }
  expect_exactly_written();
}

}  // namespace
}  // namespace fieldline::ingest
