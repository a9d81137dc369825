#include "fieldline/ingest/rawlog.h"

#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "fieldline/core/bytes.h"
#include "fieldline/core/crc32c.h"

namespace fieldline::ingest {
namespace {

constexpr uint64_t kSeqBits = 48;

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

struct SegmentName {
  uint64_t first = 0, last = 0;
  int64_t last_received = 0;
  enum Kind { active, sealed, compressed } kind = active;
};

std::optional<SegmentName> parse_name(const std::string& name) {
  SegmentName s;
  auto dot = name.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  std::string ext = name.substr(dot + 1), stem = name.substr(0, dot);
  if (ext == "active") s.kind = SegmentName::active;
  else if (ext == "log") s.kind = SegmentName::sealed;
  else if (ext == "zst") s.kind = SegmentName::compressed;
  else return std::nullopt;
  auto number = [](std::string_view t, int base, auto& out) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out, base);
    return ec == std::errc() && p == t.data() + t.size();
  };
  if (s.kind == SegmentName::active) {
    if (!number(stem, 16, s.first)) return std::nullopt;
    return s;
  }
  auto d1 = stem.find('-'), d2 = stem.find('-', d1 == std::string::npos ? d1 : d1 + 1);
  if (d1 == std::string::npos || d2 == std::string::npos) return std::nullopt;
  if (!number(std::string_view(stem).substr(0, d1), 16, s.first) ||
      !number(std::string_view(stem).substr(d1 + 1, d2 - d1 - 1), 16, s.last) ||
      !number(std::string_view(stem).substr(d2 + 1), 10, s.last_received)) {
    return std::nullopt;
  }
  return s;
}

// Appends the record to `out` in place (the length and checksum are patched in after).
void encode(uint64_t id, const RawEntryView& e, std::string& out) {
  const size_t header = out.size();
  out.append(8, '\0');
  core::put_u64(out, id);
  core::put_varint(out, e.received_ns);
  core::put_string(out, e.device);
  core::put_string(out, e.transport);
  core::put_string(out, e.format);
  core::put_varint(out, e.contract_version);
  core::put_uvarint(out, e.calibrations.size());
  for (auto c : e.calibrations) core::put_varint(out, c);
  core::put_uvarint(out, e.metrics.size());
  for (auto m : e.metrics) core::put_string(out, m);
  core::put_varint(out, e.min_ts);
  core::put_varint(out, e.max_ts);
  core::put_uvarint(out, e.samples);
  core::put_uvarint(out, e.flagged);
  core::put_string(out, e.payload);
  // Appended later than the fields above: a record without it reads as reporting nothing.
  core::put_uvarint(out, e.reported.size());
  for (const auto& [k, v] : e.reported) {
    core::put_string(out, k);
    core::put_string(out, v);
  }
  const size_t body = header + 8;
  const auto len = static_cast<uint32_t>(out.size() - body);
  const uint32_t crc = core::crc32c(out.data() + body, len);
  std::memcpy(out.data() + header, &len, 4);  // as put_u32 writes them
  std::memcpy(out.data() + header + 4, &crc, 4);
}

std::optional<RawEntry> decode_body(std::string_view body) {
  core::ByteReader r(body);
  RawEntry e;
  auto id = r.u64();
  auto received = r.varint();
  auto device = r.string();
  auto transport = r.string();
  auto format = r.string();
  auto version = r.varint();
  auto n_cal = r.uvarint();
  if (!id || !received || !device || !transport || !format || !version || !n_cal || *n_cal > body.size()) return std::nullopt;
  e.id = *id;
  e.received_ns = *received;
  e.device = *device;
  e.transport = *transport;
  e.format = *format;
  e.contract_version = *version;
  for (uint64_t i = 0; i < *n_cal; ++i) {
    auto c = r.varint();
    if (!c) return std::nullopt;
    e.calibrations.push_back(*c);
  }
  auto n_metrics = r.uvarint();
  if (!n_metrics || *n_metrics > body.size()) return std::nullopt;
  for (uint64_t i = 0; i < *n_metrics; ++i) {
    auto m = r.string();
    if (!m) return std::nullopt;
    e.metrics.emplace_back(*m);
  }
  auto min_ts = r.varint(), max_ts = r.varint();
  auto samples = r.uvarint(), flagged = r.uvarint();
  auto payload = r.string();
  if (!min_ts || !max_ts || !samples || !flagged || !payload) return std::nullopt;
  e.min_ts = *min_ts;
  e.max_ts = *max_ts;
  e.samples = static_cast<uint32_t>(*samples);
  e.flagged = static_cast<uint32_t>(*flagged);
  e.payload = *payload;
  if (r.remaining() > 0) {
    auto n = r.uvarint();
    if (!n || *n > r.remaining()) return std::nullopt;
    for (uint64_t i = 0; i < *n; ++i) {
      auto k = r.string(), v = r.string();
      if (!k || !v) return std::nullopt;
      e.reported.emplace_back(*k, *v);
    }
  }
  return e;
}

Result<std::string> read_segment(core::Env& env, const std::string& path, SegmentName::Kind kind) {
  FL_TRY(data, env.read_file(path));
  if (kind != SegmentName::compressed) return data;
  unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 34)) {
    return core::make_error(core::Errc::corrupt, path + ": not a zstd frame of known size");
  }
  std::string out(size, '\0');
  size_t n = ZSTD_decompress(out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n)) return core::make_error(core::Errc::corrupt, path + ": " + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

}  // namespace

size_t decode_raw_records(std::string_view data, const std::function<void(RawEntry)>& each, uint64_t first_id) {
  return decode_raw_records(data, std::function<void(RawEntry, size_t)>([&each](RawEntry e, size_t) { each(std::move(e)); }), first_id);
}

namespace {

// The whole records at the start of `data`, each checked by its length, its checksum and its id
// (at least `first_id`, above its predecessor's: the stale tail of a recycled file is not);
// on_record(body, end) may refuse one, which ends them too. Returns where they end.
template <typename OnRecord>
size_t scan_records(std::string_view data, uint64_t first_id, OnRecord on_record) {
  size_t pos = 0;
  uint64_t previous = 0;
  while (data.size() - pos >= 8) {
    const uint32_t len = core::get_u32(data.data() + pos), crc = core::get_u32(data.data() + pos + 4);
    if (len < 8 || len > data.size() - pos - 8) break;
    const std::string_view body = data.substr(pos + 8, len);
    if (core::crc32c(body.data(), body.size()) != crc) break;
    const uint64_t id = core::get_u64(body.data());  // the body's first field
    if (id < first_id || (previous != 0 && id <= previous)) break;
    if (!on_record(body, pos + 8 + len)) break;
    previous = id;
    pos += 8 + len;
  }
  return pos;
}

}  // namespace

size_t decode_raw_records(std::string_view data, const std::function<void(RawEntry, size_t end)>& each, uint64_t first_id) {
  return scan_records(data, first_id, [&each](std::string_view body, size_t end) {
    auto e = decode_body(body);
    if (!e) return false;
    each(std::move(*e), end);
    return true;
  });
}

size_t raw_records_end(std::string_view data, uint64_t first_id, const std::function<void(size_t end)>& each) {
  return scan_records(data, first_id, [&each](std::string_view, size_t end) {
    if (each) each(end);
    return true;
  });
}

RawLog::RawLog(core::Env& env, std::string dir, uint32_t shard, RawLogOptions options)
    : env_(env), dir_(std::move(dir)), shard_(shard), options_(options) {}

RawLog::~RawLog() {
  if (active_) {
    (void)flush();
    (void)active_->close();
  }
}

Result<std::unique_ptr<RawLog>> RawLog::open(core::Env& env, std::string dir, uint32_t shard, RawLogOptions options) {
  FL_TRY_STATUS(env.create_dirs(dir));
  std::unique_ptr<RawLog> log(new RawLog(env, dir, shard, options));
  FL_TRY(names, env.list_dir(dir));
  uint64_t last = 0;
  for (const auto& name : names) {
    auto s = parse_name(name);
    if (!s) continue;
    const std::string path = core::join_path(dir, name);
    if (s->kind != SegmentName::active) {
      last = std::max(last, s->last);
      continue;
    }
    // A segment that was being written: keep its whole records, cut a torn tail, seal it.
    FL_TRY(data, env.read_file(path));
    uint64_t first = 0, seg_last = 0;
    int64_t last_received = 0;
    size_t whole = decode_raw_records(data, [&](RawEntry e) {
      if (first == 0) first = e.id;
      seg_last = e.id;
      last_received = std::max(last_received, e.received_ns);
    }, s->first);
    if (first == 0) {
      FL_TRY_STATUS(env.remove(path));
      continue;
    }
    if (whole < data.size()) FL_TRY_STATUS(env.truncate(path, whole));
    FL_TRY_STATUS(env.rename(path, core::join_path(dir, hex16(first) + "-" + hex16(seg_last) + "-" + std::to_string(last_received) + ".log")));
    last = std::max(last, seg_last);
  }
  FL_TRY_STATUS(env.sync_dir(dir));
  log->next_seq_ = (last & ((uint64_t{1} << kSeqBits) - 1)) + 1;
  log->flushed_through_ = last;
  return log;
}

uint64_t RawLog::add(const RawEntryView& e) {
  const uint64_t id = (static_cast<uint64_t>(shard_) << kSeqBits) | next_seq_++;
  encode(id, e, buffer_);
  if (active_first_ == 0) active_first_ = id;
  active_last_ = id;
  active_last_received_ = std::max(active_last_received_, e.received_ns);
  return id;
}

Status RawLog::start_segment(int64_t now_ns) {
  const std::string path = core::join_path(dir_, hex16(active_first_) + ".active");
  // A spare file (a compressed segment's) is written over rather than a new one allocated.
  std::string spare;
  if (auto names = env_.list_dir(dir_)) {
    for (const auto& n : *names) {
      if (n.starts_with("spare-") && n.ends_with(".free")) spare = core::join_path(dir_, n);
    }
  }
  std::unique_ptr<core::WritableFile> file;
  if (!spare.empty() && env_.rename(spare, path)) {
    FL_TRY(reused, env_.overwrite_writable(path));
    file = std::move(reused);
  } else {
    FL_TRY(fresh, env_.open_writable(path, true));
    file = std::move(fresh);
  }
  active_ = std::move(file);
  active_started_ns_ = now_ns;
  return env_.sync_dir(dir_);
}

Status RawLog::flush() {
  if (buffer_.empty()) return {};
  if (!active_) FL_TRY_STATUS(start_segment(env_.now_ns()));
  FL_TRY_STATUS(active_->append(buffer_));
  unsynced_bytes_ += buffer_.size();
  buffer_.clear();
  flushed_through_ = active_last_;
  return {};
}

Status RawLog::sync() { return active_ ? active_->sync() : Status{}; }

std::optional<RawLog::Sealed> RawLog::rotate_if_due(int64_t now_ns) {
  if (!active_) return std::nullopt;
  if (active_->size() < options_.segment_bytes && now_ns - active_started_ns_ < options_.segment_age_ns) return std::nullopt;
  // Under steady load messages are always waiting in the buffer when this runs: they go into
  // the segment being sealed (its name already counts them). Waiting for an empty buffer left
  // a busy log one segment that grew without end, never compressed and never expired.
  if (!flush()) return std::nullopt;
  std::string to = core::join_path(dir_, hex16(active_first_) + "-" + hex16(active_last_) + "-" +
                                             std::to_string(active_last_received_) + ".log");
  // Renaming an open file is safe; the sync and close happen off the shard.
  if (!env_.rename(active_->path(), to)) return std::nullopt;
  Sealed sealed{to, std::move(active_)};
  active_.reset();
  active_first_ = active_last_ = 0;
  active_last_received_ = 0;
  return sealed;
}

Status RawLog::seal(core::Env& env, Sealed sealed) {
  FL_TRY_STATUS(sealed.file->sync());
  FL_TRY_STATUS(sealed.file->close());
  auto slash = sealed.path.rfind('/');
  return env.sync_dir(slash == std::string::npos ? "." : sealed.path.substr(0, slash));
}

std::vector<std::string> RawLog::pending_compression() const {
  std::vector<std::string> out;
  auto names = env_.list_dir(dir_);
  if (!names) return out;
  for (const auto& n : *names) {
    auto s = parse_name(n);
    if (s && s->kind == SegmentName::sealed) out.push_back(core::join_path(dir_, n));
  }
  return out;
}

Status RawLog::compress(core::Env& env, const std::string& sealed) {
  FL_TRY(mapped, env.map_file(sealed));
  std::string_view data(mapped->bytes().data(), mapped->bytes().size());
  // A recycled file holds stale bytes past its records: only the records are kept.
  const auto slash_at = sealed.rfind('/');
  const std::string name = slash_at == std::string::npos ? sealed : sealed.substr(slash_at + 1);
  const auto parsed = parse_name(name);
  // The segment's pages go back as they are read (twice: this scan, then the compression);
  // held, a 64 MiB segment showed as 64 MiB more resident memory while it compressed.
  // Framing and checksums alone: the records themselves are not decoded (building each one's
  // strings cost more than compressing it).
  size_t released = 0;
  auto scanned = [&](size_t end) {
    if (end - released >= (1u << 20)) mapped->done_with(released = end);
  };
  data = data.substr(0, raw_records_end(data, parsed ? parsed->first : 0, scanned));
  mapped->done_with(mapped->bytes().size());
  const std::string stem = sealed.substr(0, sealed.size() - 4);
  const std::string tmp = stem + ".zst.tmp", final_path = stem + ".zst";
  {
    // Streamed a quarter MiB at a time with a pause between, through small buffers, and
    // written and synced a MiB at a time: compressing a 64 MiB segment in one go (two 64 MiB
    // buffers, ~150 ms of a core, a 10 MB write and fsync queued ahead of the WAL's) showed
    // as a 100+ ms tail in PUBACK latency at 150k messages/s. Level 1: at 300k messages/s the
    // raw log grows ~45 MB/s, which level 6 cannot keep up with on one core of a gateway.
    std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
    if (!cctx) return core::make_error(core::Errc::io_error, sealed + ": cannot create a zstd context");
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 1);
    ZSTD_CCtx_setPledgedSrcSize(cctx.get(), data.size());  // readers size their buffer from it
    FL_TRY(file, env.open_writable(tmp, true));
    constexpr size_t kInStep = 256u << 10, kOutFlush = 1u << 20;
    std::string out(ZSTD_CStreamOutSize() + kOutFlush, '\0');
    size_t out_used = 0;
    auto write_out = [&]() -> Status {
      FL_TRY_STATUS(file->append(std::span<const char>(out.data(), out_used)));
      out_used = 0;
      return file->sync();
    };
    for (size_t at = 0;;) {
      const size_t step = std::min(kInStep, data.size() - at);
      const bool last = at + step == data.size();
      ZSTD_inBuffer in{data.data() + at, step, 0};
      for (;;) {
        ZSTD_outBuffer o{out.data() + out_used, out.size() - out_used, 0};
        size_t left = ZSTD_compressStream2(cctx.get(), &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left)) return core::make_error(core::Errc::io_error, sealed + ": " + ZSTD_getErrorName(left));
        out_used += o.pos;
        if (out_used >= kOutFlush || o.pos == o.size) FL_TRY_STATUS(write_out());
        if (last ? left == 0 : in.pos == in.size) break;
      }
      at += step;
      mapped->done_with(at);
      if (last) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (out_used > 0) FL_TRY_STATUS(write_out());
    FL_TRY_STATUS(file->close());
  }
  FL_TRY_STATUS(env.rename(tmp, final_path));
  // Kept (two at most) to be written over by a later segment instead of freed now.
  const std::string dir = slash_at == std::string::npos ? "." : sealed.substr(0, slash_at);
  size_t spares = 0;
  if (auto names = env.list_dir(dir)) {
    for (const auto& n : *names) spares += n.starts_with("spare-") && n.ends_with(".free");
  }
  if (spares < 2 && parsed) FL_TRY_STATUS(env.rename(sealed, core::join_path(dir, "spare-" + hex16(parsed->first) + ".free")));
  else FL_TRY_STATUS(env.remove(sealed));
  return env.sync_dir(dir);
}

Status RawLog::expire(int64_t now_ns) {
  if (options_.retention_ns <= 0) return {};
  FL_TRY(names, env_.list_dir(dir_));
  for (const auto& n : names) {
    auto s = parse_name(n);
    if (!s || s->kind == SegmentName::active) continue;
    if (s->last_received < now_ns - options_.retention_ns) FL_TRY_STATUS(env_.remove(core::join_path(dir_, n)));
  }
  return {};
}

namespace {

// The segments of `dir`, oldest first (ids grow).
Result<std::vector<std::pair<SegmentName, std::string>>> list_segments(core::Env& env, const std::string& dir) {
  std::vector<std::pair<SegmentName, std::string>> segments;
  if (!env.exists(dir)) return segments;
  FL_TRY(names, env.list_dir(dir));
  for (const auto& n : names) {
    if (auto s = parse_name(n)) segments.emplace_back(*s, n);
  }
  std::sort(segments.begin(), segments.end(), [](const auto& a, const auto& b) { return a.first.first < b.first.first; });
  return segments;
}

// A segment's bytes; one sealed or compressed since it was listed is read under its new name.
// not_found: expired meanwhile, as its retention says.
Result<std::string> read_listed(core::Env& env, const std::string& dir, const SegmentName& s, const std::string& name) {
  auto data = read_segment(env, core::join_path(dir, name), s.kind);
  for (int attempt = 0; attempt < 3 && !data && core::is(data.error(), core::Errc::not_found); ++attempt) {
    FL_TRY(now, env.list_dir(dir));
    for (const auto& n : now) {
      auto renamed = parse_name(n);
      if (renamed && renamed->first == s.first && renamed->kind > s.kind) {
        data = read_segment(env, core::join_path(dir, n), renamed->kind);
        break;
      }
    }
  }
  return data;
}

}  // namespace

Result<std::vector<RawEntry>> RawLog::scan(core::Env& env, const std::string& dir, const std::function<bool(const RawEntry&)>& match,
                                           size_t limit, std::optional<uint64_t> id) {
  std::vector<RawEntry> out;
  FL_TRY(segments, list_segments(env, dir));
  for (auto seg = segments.rbegin(); seg != segments.rend(); ++seg) {  // newest first
    const auto& [s, name] = *seg;
    if (id && (*id < s.first || (s.kind != SegmentName::active && *id > s.last))) continue;
    auto data = read_listed(env, dir, s, name);
    if (!data) {
      if (core::is(data.error(), core::Errc::not_found)) continue;
      return data.error();
    }
    std::vector<RawEntry> found;
    decode_raw_records(*data, [&](RawEntry e) {
      if (match(e)) found.push_back(std::move(e));
    }, s.first);
    for (auto it = found.rbegin(); it != found.rend() && out.size() < limit; ++it) out.push_back(std::move(*it));
    if (out.size() >= limit) break;
  }
  return out;
}

Status RawLog::scan_range(core::Env& env, const std::string& dir, uint64_t after, uint64_t through, int64_t received_since,
                          const std::function<bool(const RawEntry&)>& match, const std::function<void(RawEntry)>& each) {
  FL_TRY(segments, list_segments(env, dir));
  for (const auto& [s, name] : segments) {
    const bool sealed = s.kind != SegmentName::active;
    if (s.first > through || (sealed && (s.last <= after || s.last_received < received_since))) continue;
    auto data = read_listed(env, dir, s, name);
    if (!data) {
      if (core::is(data.error(), core::Errc::not_found)) continue;
      return data.error();
    }
    decode_raw_records(*data, [&](RawEntry e) {
      if (e.id > after && e.id <= through && match(e)) each(std::move(e));
    }, s.first);
  }
  return {};
}

}  // namespace fieldline::ingest
