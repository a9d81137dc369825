// libFuzzer target: WAL replay over an arbitrary segment file — the framing, and the engine's
// decoding and applying of its records (series, samples, replace) when a Db opens over it —
// and every chunk decoder on arbitrary bytes. Damage must be reported, never crash.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "fieldline/core/env.h"
#include "fieldline/tsdb/chunk.h"
#include "fieldline/tsdb/db.h"
#include "fieldline/tsdb/wal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline;
  static auto env = core::make_posix_env();
  static std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("fl-fuzz-wal-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  const std::string wal_dir = dir + "/wal";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(wal_dir);
  std::string path = wal_dir + "/" + tsdb::wal_segment_name(1);
  {
    auto f = env->open_writable(path, true);
    if (!f) return 0;
    (void)(*f)->append(std::span<const char>(reinterpret_cast<const char*>(data), size));
  }
  (void)tsdb::wal_replay(*env, wal_dir, false, [](tsdb::WalRecordType, std::string_view, uint32_t) { return Status{}; });
  tsdb::DbOptions options;
  options.wal.fsync = core::FsyncPolicy::never;
  if (auto db = tsdb::Db::open(*env, dir, options, nullptr)) (void)(*db)->close();
  (void)tsdb::decode_chunk(std::string_view(reinterpret_cast<const char*>(data), size));
  (void)tsdb::decode_rollups(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
