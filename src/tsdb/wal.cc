#include "fieldline/tsdb/wal.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "fieldline/core/bytes.h"
#include "fieldline/core/crc32c.h"
#include "fieldline/core/errc.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {

void wal_frame(WalRecordType type, std::string_view payload, std::string& out) {
  size_t start = out.size();
  core::put_u32(out, static_cast<uint32_t>(payload.size()));
  core::put_u32(out, 0);
  out.push_back(static_cast<char>(type));
  out.append(payload);
  uint32_t crc = core::crc32c(out.data() + start + 8, payload.size() + 1);
  std::memcpy(out.data() + start + 4, &crc, 4);
}

std::string wal_segment_name(uint32_t seq) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08u", seq);
  return buf;
}

Result<std::vector<uint32_t>> wal_segments(core::Env& env, const std::string& dir) {
  FL_TRY(names, env.list_dir(dir));
  std::vector<uint32_t> out;
  for (const auto& n : names) {
    if (n.size() != 8 || n.find_first_not_of("0123456789") != std::string::npos) continue;
    out.push_back(static_cast<uint32_t>(std::stoul(n)));
  }
  return out;
}

Result<WalReplayStats> wal_replay(core::Env& env, const std::string& dir, bool repair,
                                  const std::function<Status(WalRecordType, std::string_view, uint32_t segment)>& on_record) {
  WalReplayStats stats;
  if (!env.exists(dir)) return stats;
  FL_TRY(segs, wal_segments(env, dir));
  for (size_t si = 0; si < segs.size(); ++si) {
    std::string path = core::join_path(dir, wal_segment_name(segs[si]));
    FL_TRY(file, env.map_file(path));
    auto data = file->bytes();
    ++stats.segments;
    bool last = si + 1 == segs.size();
    size_t pos = 0;
    auto problem = [&](size_t at, const std::string& why) {
      stats.problems.push_back(path + " at offset " + std::to_string(at) + ": " + why);
      stats.dropped_bytes += data.size() - at;
    };
    if (data.size() < kWalSegmentHeader) {
      if (!data.empty()) problem(0, "truncated segment header");
      if (repair && last) FL_TRY_STATUS(env.truncate(path, 0));
      continue;
    }
    if (std::memcmp(data.data(), kWalMagic, 4) != 0 || core::get_u32(data.data() + 4) != kWalVersion) {
      problem(0, "bad segment magic or version");
      continue;
    }
    pos = kWalSegmentHeader;
    while (pos < data.size()) {
      if (data.size() - pos < kWalRecordHeader) {
        problem(pos, "torn record header");
        break;
      }
      uint32_t len = core::get_u32(data.data() + pos);
      uint32_t crc = core::get_u32(data.data() + pos + 4);
      if (len > kWalMaxRecord) {
        problem(pos, "record length " + std::to_string(len) + " exceeds the maximum");
        break;
      }
      if (data.size() - pos - kWalRecordHeader < len) {
        problem(pos, "torn record (" + std::to_string(len) + " bytes announced, " +
                         std::to_string(data.size() - pos - kWalRecordHeader) + " present)");
        break;
      }
      if (core::crc32c(data.data() + pos + 8, len + 1) != crc) {
        problem(pos, "checksum mismatch");
        break;
      }
      auto type = static_cast<uint8_t>(data[pos + 8]);
      if (type < static_cast<uint8_t>(WalRecordType::series) || type > static_cast<uint8_t>(WalRecordType::replace)) {
        problem(pos, "unknown record type " + std::to_string(type));
        break;
      }
      auto st = on_record(static_cast<WalRecordType>(type), std::string_view(data.data() + pos + kWalRecordHeader, len), segs[si]);
      if (!st) {
        problem(pos, st.error().message());
        break;
      }
      ++stats.records;
      pos += kWalRecordHeader + len;
    }
    stats.bytes += pos;
    if (pos < data.size() && repair && last) {
      file.reset();
      FL_TRY_STATUS(env.truncate(path, pos));
    }
  }
  return stats;
}

Wal::Wal(core::Env& env, std::string dir, WalOptions options, DurableCallback on_durable)
    : env_(env), dir_(std::move(dir)), options_(options), on_durable_(std::move(on_durable)) {}

Result<std::unique_ptr<Wal>> Wal::open(core::Env& env, std::string dir, WalOptions options,
                                       DurableCallback on_durable, std::function<std::string()> preamble) {
  FL_TRY_STATUS(env.create_dirs(dir));
  FL_TRY(segs, wal_segments(env, dir));
  std::unique_ptr<Wal> wal(new Wal(env, dir, options, std::move(on_durable)));
  wal->preamble_ = std::move(preamble);
  FL_TRY_STATUS(wal->open_segment(segs.empty() ? 1 : segs.back() + 1));
  wal->flusher_ = std::thread([w = wal.get()] { w->flusher_loop(); });
  return wal;
}

Wal::~Wal() { close(); }

Status Wal::open_segment(uint32_t seq) {
  std::string path = core::join_path(dir_, wal_segment_name(seq));
  FL_TRY(file, env_.open_writable(path, true));
  std::string header(kWalMagic, 4);
  core::put_u32(header, kWalVersion);
  FL_TRY_STATUS(file->append(header));
  if (preamble_) FL_TRY_STATUS(file->append(preamble_()));
  preamble_end_ = file->size();
  // The new segment's directory entry must be durable before anything in it counts as durable.
  FL_TRY_STATUS(file->sync());
  FL_TRY_STATUS(env_.sync_dir(dir_));
  std::shared_ptr<core::WritableFile> next(std::move(file));
  {
    std::lock_guard lock(mu_);
    if (current_) retired_.push_back(std::move(current_));
    current_ = std::move(next);
  }
  current_seq_ = seq;
  return ok();
}

Result<uint64_t> Wal::append(std::string_view framed) {
  if (failed()) return make_error(Errc::wal_failed, "write-ahead log in " + dir_ + " failed earlier; restart to recover");
  if (current_->size() + framed.size() > options_.segment_bytes && current_->size() > preamble_end_) {
    FL_TRY_STATUS(rotate());
  }
  uint64_t before = current_->size();
  auto st = current_->append(framed);
  if (!st) {
    // Cut the partial record off so later records stay reachable on replay.
    if (!env_.truncate(current_->path(), before)) failed_.store(true, std::memory_order_release);
    return st.error();
  }
  bytes_written_.fetch_add(framed.size(), std::memory_order_relaxed);
  uint64_t lsn = written_lsn_.fetch_add(1, std::memory_order_acq_rel) + 1;
  // One wake-up per group, not per append: only the append that raises the flag notifies.
  if (!sync_requested_.exchange(true, std::memory_order_acq_rel)) {
    std::lock_guard lock(mu_);
    cv_.notify_one();
  }
  return lsn;
}

Result<uint32_t> Wal::rotate() {
  FL_TRY_STATUS(open_segment(current_seq_ + 1));
  return current_seq_;
}

Status Wal::remove_segments_before(uint32_t seq) {
  FL_TRY(segs, wal_segments(env_, dir_));
  bool removed = false;
  for (uint32_t s : segs) {
    if (s >= seq || s == current_seq_) continue;
    FL_TRY_STATUS(env_.remove(core::join_path(dir_, wal_segment_name(s))));
    removed = true;
  }
  if (removed) FL_TRY_STATUS(env_.sync_dir(dir_));
  return ok();
}

void Wal::sync_pending(bool force) {
  std::lock_guard sync_lock(sync_mu_);
  const bool do_sync = force || options_.fsync != core::FsyncPolicy::never;
  std::vector<std::shared_ptr<core::WritableFile>> retired;
  std::shared_ptr<core::WritableFile> current;
  {
    std::lock_guard lock(mu_);
    // Retired segments stay queued until a real sync: closing them unsynced would let a later
    // forced sync (a checkpoint) miss their data.
    if (do_sync) retired.swap(retired_);
    current = current_;
  }
  uint64_t target = written_lsn_.load(std::memory_order_acquire);
  // Under `never` the reported LSN runs ahead of what is on disk, so a forced sync compares
  // against what was really synced.
  uint64_t reference = do_sync ? synced_lsn_ : durable_lsn_.load(std::memory_order_acquire);
  if (target == reference && retired.empty()) return;
  if (failed()) return;
  auto start = std::chrono::steady_clock::now();
  bool good = true;
  if (do_sync) {
    for (auto& f : retired) good = good && f->sync().has_value();
    good = good && current->sync().has_value();
  }
  for (auto& f : retired) (void)f->close();
  if (!good) {
    failed_.store(true, std::memory_order_release);
    return;
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  sync_ns_total_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (do_sync) synced_lsn_ = target;
  durable_lsn_.store(target, std::memory_order_release);
  if (on_durable_) on_durable_(target);
}

void Wal::flusher_loop() {
  // Group commit. `always` and `never`: act on every request at once (never skips the fsync).
  // `interval`: start an fsync as soon as data is waiting, so an append waits for at most one
  // fsync in progress plus its own, but leave at least a quarter of the interval between fsyncs
  // so a busy log commits in groups instead of fsyncing per batch; the interval bounds the wait.
  // Each fdatasync costs its thread ~95 µs of CPU on the VMs we measure on: with a tenth of
  // the interval between them (~550 a second per shard at 150k messages/s) the two flushers
  // spent 0.67 µs per message, with a quarter (~290) 0.37, for ~1 ms more latency at a low
  // rate (bench/server_threads.sh; bench/README, "Group commit").
  const bool interval = options_.fsync == core::FsyncPolicy::interval;
  auto period = std::chrono::nanoseconds(options_.fsync_interval_ns > 0 ? options_.fsync_interval_ns : 10'000'000);
  auto spacing = period / 4;
  auto last_sync = std::chrono::steady_clock::now() - period;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, period, [this] { return stop_ || sync_requested_.load(std::memory_order_acquire); });
      if (stop_) break;
      if (interval) {
        auto earliest = last_sync + spacing;
        if (std::chrono::steady_clock::now() < earliest) {
          cv_.wait_until(lock, earliest, [this] { return stop_; });
          if (stop_) break;
        }
      }
      sync_requested_.store(false, std::memory_order_release);
    }
    sync_pending(false);
    last_sync = std::chrono::steady_clock::now();
  }
}

Status Wal::sync_now() {
  sync_pending(true);
  if (failed()) return make_error(Errc::wal_failed, "sync of the write-ahead log in " + dir_ + " failed");
  return ok();
}

void Wal::close() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
    cv_.notify_all();
  }
  if (flusher_.joinable()) flusher_.join();
  sync_pending(true);
  std::lock_guard lock(mu_);
  if (current_) (void)current_->close();
}

}  // namespace fieldline::tsdb
