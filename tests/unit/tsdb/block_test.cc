#include <gtest/gtest.h>

#include <fstream>

#include "fieldline/core/time.h"
#include "fieldline/tsdb/block.h"
#include "fieldline/tsdb/db.h"
#include "fieldline/tsdb/errc.h"
#include "test_util.h"

namespace fieldline::tsdb {
namespace {
std::string make_block(core::Env& env, const std::string& dir) {
  SeriesChunks sc;
  sc.key = {"pump-1", "temp", {{"site", "north"}}};
  sc.type = ValueType::float64;
  for (int c = 0; c < 3; ++c) {
    ChunkEncoder enc(ValueType::float64);
    for (int i = 0; i < 100; ++i) enc.append((c * 100 + i) * core::kNsPerSecond, c * 100.0 + i);
    sc.chunks.push_back(enc.finish());
    sc.metas.push_back({enc.min_ts(), enc.max_ts(), enc.count(), 0});
  }
  sc.rollup_1m.push_back({0, 0, 59, 1770, 60});
  BlockMeta meta{0, 3600 * core::kNsPerSecond, 300, 1, false, {}};
  EXPECT_TRUE(write_block(env, dir, "test.blk", meta, {sc}, nullptr));
  return dir + "/test.blk";
}
void flip(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x40));
}
}  // namespace

TEST(Block, WriteOpenVerifyRead) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  auto path = make_block(*env, dir.path());
  auto b = BlockReader::open(*env, path);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ((*b)->series().size(), 1u);
  EXPECT_TRUE((*b)->verify().empty());
  const auto* s = (*b)->find(canonical_key({"pump-1", "temp", {{"site", "north"}}}));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->chunks.size(), 3u);
  EXPECT_FALSE(env->exists(path + ".tmp"));
}

TEST(Block, FlippedChunkByteIsReportedWithFileAndOffsetOtherChunksStayReadable) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  auto path = make_block(*env, dir.path());
  uint64_t second_chunk;
  {
    auto b = BlockReader::open(*env, path);
    second_chunk = (*b)->series()[0].chunks[1].offset;
  }
  flip(path, second_chunk + 20);
  auto b = BlockReader::open(*env, path);
  ASSERT_TRUE(b);  // the index is intact
  auto problems = (*b)->verify();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find(path), std::string::npos);
  EXPECT_NE(problems[0].find("offset " + std::to_string(second_chunk)), std::string::npos);
  EXPECT_TRUE((*b)->chunk((*b)->series()[0].chunks[0].offset));
  EXPECT_FALSE((*b)->chunk(second_chunk));
  EXPECT_TRUE((*b)->chunk((*b)->series()[0].chunks[2].offset));
}

TEST(Block, DamagedIndexOrTruncatedFileIsRejectedNotCrashed) {
  testing::TempDir dir;
  auto env = core::make_posix_env();
  auto path = make_block(*env, dir.path());
  auto size = *env->file_size(path);
  for (uint64_t cut : {uint64_t{0}, uint64_t{10}, size / 2, size - 1}) {
    std::string copy = dir.path() + "/cut.blk";
    auto data = *env->read_file(path);
    {
      auto f = *env->open_writable(copy, true);
      ASSERT_TRUE(f->append(std::string_view(data).substr(0, cut)));
    }
    auto b = BlockReader::open(*env, copy);
    EXPECT_FALSE(b) << "cut at " << cut;
    if (!b) {
      EXPECT_TRUE(is(b.error(), Errc::corrupt));
    }
  }
  flip(path, size - kBlockFooter - 3);  // inside the index
  auto b = BlockReader::open(*env, path);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("index checksum"), std::string::npos);
}

}  // namespace fieldline::tsdb
