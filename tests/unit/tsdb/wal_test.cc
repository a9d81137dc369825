#include <gtest/gtest.h>

#include <fstream>

#include "fieldline/tsdb/wal.h"
#include "test_util.h"

namespace fieldline::tsdb {

namespace {
std::vector<std::string> read_all(core::Env& env, const std::string& dir, WalReplayStats* stats = nullptr) {
  std::vector<std::string> out;
  auto st = wal_replay(env, dir, true, [&](WalRecordType, std::string_view p, uint32_t) {
    out.emplace_back(p);
    return Status{};
  });
  EXPECT_TRUE(st);
  if (stats && st) *stats = *st;
  return out;
}
}  // namespace

TEST(Wal, AppendSyncReplay) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  uint64_t durable = 0;
  {
    auto wal = Wal::open(*env, dir.path(), {core::FsyncPolicy::always, 0, 1 << 20}, [&](uint64_t l) { durable = l; });
    ASSERT_TRUE(wal);
    for (int i = 0; i < 100; ++i) {
      std::string f;
      wal_frame(WalRecordType::samples, "record-" + std::to_string(i), f);
      ASSERT_TRUE((*wal)->append(f));
    }
    ASSERT_TRUE((*wal)->sync_now());
    EXPECT_EQ((*wal)->durable_lsn(), 100u);
  }
  EXPECT_EQ(durable, 100u);
  auto recs = read_all(*env, dir.path());
  ASSERT_EQ(recs.size(), 100u);
  EXPECT_EQ(recs[42], "record-42");
}

TEST(Wal, TornTailIsDroppedReportedAndRepaired) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  {
    auto wal = Wal::open(*env, dir.path(), {}, nullptr);
    ASSERT_TRUE(wal);
    for (int i = 0; i < 10; ++i) {
      std::string f;
      wal_frame(WalRecordType::samples, std::string(50, static_cast<char>('a' + i)), f);
      ASSERT_TRUE((*wal)->append(f));
    }
  }
  std::string seg = dir.path() + "/" + wal_segment_name(1);
  auto size = *env->file_size(seg);
  ASSERT_TRUE(env->truncate(seg, size - 20));  // tear the last record
  WalReplayStats stats;
  auto recs = read_all(*env, dir.path(), &stats);
  EXPECT_EQ(recs.size(), 9u);
  ASSERT_EQ(stats.problems.size(), 1u);
  EXPECT_NE(stats.problems[0].find(seg), std::string::npos);
  EXPECT_NE(stats.problems[0].find("torn record"), std::string::npos);
  EXPECT_GT(stats.dropped_bytes, 0u);
  // Repaired: a second replay is clean.
  WalReplayStats again;
  EXPECT_EQ(read_all(*env, dir.path(), &again).size(), 9u);
  EXPECT_TRUE(again.problems.empty());
}

TEST(Wal, FlippedByteIsDetectedWithFileAndOffset) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  {
    auto wal = Wal::open(*env, dir.path(), {}, nullptr);
    for (int i = 0; i < 5; ++i) {
      std::string f;
      wal_frame(WalRecordType::samples, std::string(30, 'x'), f);
      ASSERT_TRUE((*wal)->append(f));
    }
  }
  std::string seg = dir.path() + "/" + wal_segment_name(1);
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kWalSegmentHeader + 2 * (kWalRecordHeader + 30) + 15));
    f.put('y');
  }
  WalReplayStats stats;
  auto recs = read_all(*env, dir.path(), &stats);
  EXPECT_EQ(recs.size(), 2u);
  ASSERT_EQ(stats.problems.size(), 1u);
  EXPECT_NE(stats.problems[0].find("offset " + std::to_string(kWalSegmentHeader + 2 * (kWalRecordHeader + 30))),
            std::string::npos);
  EXPECT_NE(stats.problems[0].find("checksum"), std::string::npos);
}

TEST(Wal, SegmentsRotateAndOldOnesAreRemoved) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  auto wal = Wal::open(*env, dir.path(), {core::FsyncPolicy::never, 0, 1024}, nullptr);
  ASSERT_TRUE(wal);
  for (int i = 0; i < 100; ++i) {
    std::string f;
    wal_frame(WalRecordType::samples, std::string(100, 'z'), f);
    ASSERT_TRUE((*wal)->append(f));
  }
  auto segs = wal_segments(*env, dir.path());
  ASSERT_TRUE(segs);
  EXPECT_GT(segs->size(), 5u);
  ASSERT_TRUE((*wal)->remove_segments_before((*wal)->current_segment()));
  EXPECT_EQ(wal_segments(*env, dir.path())->size(), 1u);
}

TEST(Wal, FailedAppendLeavesTheLogReadable) {
  testing::TempDir dir;
  auto base = core::make_posix_env();
  core::FaultInjectionEnv env(*base);
  {
    auto wal = Wal::open(env, dir.path(), {}, nullptr);
    ASSERT_TRUE(wal);
    env.fail_appends(3, 1, core::Errc::no_space);
    int failures = 0;
    for (int i = 0; i < 6; ++i) {
      std::string f;
      wal_frame(WalRecordType::samples, "r" + std::to_string(i), f);
      if (!(*wal)->append(f)) ++failures;
    }
    EXPECT_EQ(failures, 1);
  }
  EXPECT_EQ(read_all(*base, dir.path()).size(), 5u);
}

}  // namespace fieldline::tsdb
