#include "tsdb_tools.h"

#include <boost/json.hpp>

#include <cstdio>
#include <set>

#include "fieldline/core/bytes.h"
#include "fieldline/core/env.h"
#include "fieldline/tsdb/block.h"
#include "fieldline/tsdb/wal.h"

namespace fieldline::app {
namespace {

// The shard directories under a data dir, a tsdb dir or a single shard dir.
std::vector<std::string> shard_dirs(core::Env& env, const std::string& dir) {
  for (const std::string& base : {core::join_path(dir, "tsdb"), dir}) {
    if (!env.exists(base)) continue;
    auto names = env.list_dir(base);
    std::vector<std::string> out;
    if (names) {
      for (const auto& n : *names) {
        if (n.starts_with("shard-")) out.push_back(core::join_path(base, n));
      }
    }
    if (!out.empty()) return out;
  }
  if (env.exists(core::join_path(dir, "blocks")) || env.exists(core::join_path(dir, "wal"))) return {dir};
  return {};
}

struct WalSummary {
  uint64_t samples = 0, records = 0, bytes = 0;
  std::set<uint64_t> series;
  tsdb::WalReplayStats stats;
};

WalSummary scan_wal(core::Env& env, const std::string& dir, std::set<std::string>& keys) {
  WalSummary s;
  auto st = tsdb::wal_replay(env, dir, false, [&](tsdb::WalRecordType type, std::string_view payload, uint32_t) -> Status {
    core::ByteReader r(payload);
    if (type == tsdb::WalRecordType::series) {
      r.uvarint();
      r.u8();
      auto dev = r.string(), met = r.string();
      std::string key = dev && met ? std::string(*dev) + "/" + std::string(*met) : "?";
      auto ntags = r.uvarint();
      for (uint64_t i = 0; ntags && i < *ntags; ++i) {
        auto k = r.string(), v = r.string();
        if (k && v) key += "," + std::string(*k) + "=" + std::string(*v);
      }
      keys.insert(key);
    } else {
      auto n = r.uvarint();
      if (n) s.samples += *n;
    }
    return {};
  });
  if (st) s.stats = *st;
  s.records = s.stats.records;
  s.bytes = s.stats.bytes;
  return s;
}

}  // namespace

int tsdb_inspect(const std::string& dir, bool as_json) {
  auto env = core::make_posix_env();
  auto shards = shard_dirs(*env, dir);
  if (shards.empty()) {
    std::fprintf(stderr, "error: no time-series data under %s\n", dir.c_str());
    return 2;
  }
  boost::json::array blocks_json;
  std::set<std::string> keys;
  uint64_t block_samples = 0, block_bytes = 0, wal_samples = 0, wal_bytes = 0;
  int problems = 0;
  for (const auto& shard : shards) {
    std::string bdir = core::join_path(shard, "blocks");
    if (env->exists(bdir)) {
      auto names = env->list_dir(bdir);
      for (const auto& n : names ? *names : std::vector<std::string>{}) {
        if (!n.ends_with(".blk")) continue;
        auto b = tsdb::BlockReader::open(*env, core::join_path(bdir, n));
        if (!b) {
          ++problems;
          std::fprintf(stderr, "damaged block: %s\n", b.error().message().c_str());
          continue;
        }
        const auto& m = (*b)->meta();
        for (const auto& s : (*b)->series()) {
          std::string key = s.key.device + "/" + s.key.metric;
          for (const auto& [k, v] : s.key.tags) key += "," + k + "=" + v;
          keys.insert(key);
        }
        block_samples += m.samples;
        block_bytes += (*b)->file_bytes();
        blocks_json.push_back(boost::json::object{
            {"path", (*b)->path()}, {"min_time", m.min_ts}, {"max_time", m.max_ts}, {"level", m.level},
            {"series", (*b)->series().size()}, {"samples", m.samples}, {"bytes", (*b)->file_bytes()},
            {"raw_dropped", m.raw_dropped},
            {"bytes_per_sample", m.samples ? static_cast<double>((*b)->file_bytes()) / static_cast<double>(m.samples) : 0.0}});
      }
    }
    auto w = scan_wal(*env, core::join_path(shard, "wal"), keys);
    wal_samples += w.samples;
    wal_bytes += w.bytes;
    problems += static_cast<int>(w.stats.problems.size());
  }
  uint64_t disk = 0;
  if (auto u = env->disk_usage(dir)) disk = *u;
  if (as_json) {
    boost::json::object out{{"series", keys.size()},
                            {"samples", block_samples + wal_samples},
                            {"bytes", disk},
                            {"block_samples", block_samples},
                            {"block_bytes", block_bytes},
                            {"wal_samples", wal_samples},
                            {"wal_bytes", wal_bytes},
                            {"bytes_per_sample_blocks", block_samples ? static_cast<double>(block_bytes) / static_cast<double>(block_samples) : 0.0},
                            {"shards", shards.size()},
                            {"blocks", std::move(blocks_json)}};
    std::printf("%s\n", boost::json::serialize(out).c_str());
  } else {
    std::printf("shards           %zu\n", shards.size());
    std::printf("series           %zu\n", keys.size());
    std::printf("samples          %llu (%llu in blocks, %llu in the WAL, duplicates in the WAL included)\n",
                static_cast<unsigned long long>(block_samples + wal_samples), static_cast<unsigned long long>(block_samples),
                static_cast<unsigned long long>(wal_samples));
    std::printf("bytes on disk    %llu\n", static_cast<unsigned long long>(disk));
    std::printf("blocks           %zu, %llu bytes, %.3f bytes/sample\n", blocks_json.size(),
                static_cast<unsigned long long>(block_bytes),
                block_samples ? static_cast<double>(block_bytes) / static_cast<double>(block_samples) : 0.0);
    for (const auto& b : blocks_json) {
      const auto& o = b.as_object();
      std::printf("  %s  L%lld  %lld series  %lld samples  %lld bytes\n", o.at("path").as_string().c_str(),
                  static_cast<long long>(o.at("level").to_number<int64_t>()), static_cast<long long>(o.at("series").to_number<int64_t>()),
                  static_cast<long long>(o.at("samples").to_number<int64_t>()), static_cast<long long>(o.at("bytes").to_number<int64_t>()));
    }
  }
  return problems ? 1 : 0;
}

int tsdb_verify(const std::string& dir) {
  auto env = core::make_posix_env();
  auto shards = shard_dirs(*env, dir);
  if (shards.empty()) {
    std::fprintf(stderr, "error: no time-series data under %s\n", dir.c_str());
    return 2;
  }
  size_t problems = 0, blocks = 0, chunks = 0, segments = 0;
  for (const auto& shard : shards) {
    std::string bdir = core::join_path(shard, "blocks");
    if (env->exists(bdir)) {
      auto names = env->list_dir(bdir);
      for (const auto& n : names ? *names : std::vector<std::string>{}) {
        if (!n.ends_with(".blk")) continue;
        ++blocks;
        auto b = tsdb::BlockReader::open(*env, core::join_path(bdir, n));
        if (!b) {
          ++problems;
          std::printf("DAMAGED %s\n", b.error().message().c_str());
          continue;
        }
        for (const auto& s : (*b)->series()) chunks += s.chunks.size();
        for (const auto& p : (*b)->verify()) {
          ++problems;
          std::printf("DAMAGED %s\n", p.c_str());
        }
      }
    }
    std::set<std::string> keys;
    auto w = scan_wal(*env, core::join_path(shard, "wal"), keys);
    segments += w.stats.segments;
    for (size_t i = 0; i < w.stats.problems.size(); ++i) {
      ++problems;
      std::printf("DAMAGED %s\n", w.stats.problems[i].c_str());
    }
  }
  std::printf("%zu blocks, %zu chunks, %zu WAL segments checked: %s\n", blocks, chunks, segments,
              problems ? (std::to_string(problems) + " problem(s)").c_str() : "all checksums good");
  return problems ? 1 : 0;
}

}  // namespace fieldline::app
