#include "fieldline/tsdb/block.h"

#include <cstring>

#include "fieldline/core/bytes.h"
#include "fieldline/core/crc32c.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {

std::string canonical_key(SeriesLabels key) {
  std::string out;
  out.reserve(key.device->size() + key.metric->size() + 2 + key.tags->size() * 16);
  out += *key.device;
  out.push_back('\0');
  out += *key.metric;
  for (const auto& [k, v] : *key.tags) {
    out.push_back('\0');
    out += k;
    out.push_back('\0');
    out += v;
  }
  return out;
}

namespace {
void put_frame(std::string& out, std::string_view data) {
  core::put_u32(out, static_cast<uint32_t>(data.size()));
  core::put_u32(out, core::crc32c(data.data(), data.size()));
  out.append(data);
}
}  // namespace

Result<std::unique_ptr<BlockWriter>> BlockWriter::create(core::Env& env, std::string dir, std::string name,
                                                          std::function<Status(std::string_view)> crash_point) {
  std::unique_ptr<BlockWriter> w(new BlockWriter);
  w->env_ = &env;
  w->dir_ = std::move(dir);
  w->name_ = std::move(name);
  w->crash_point_ = std::move(crash_point);
  FL_TRY(file, env.open_writable(core::join_path(w->dir_, w->name_ + ".tmp"), true));
  w->file_ = std::move(file);
  w->buffer_.assign(kBlockMagic, 4);
  core::put_u32(w->buffer_, kBlockVersion);
  return w;
}

Status BlockWriter::flush() {
  if (buffer_.empty()) return ok();
  FL_TRY_STATUS(file_->append(buffer_));
  offset_ += buffer_.size();
  buffer_.clear();
  return ok();
}

Status BlockWriter::add(const SeriesChunks& s) {
  std::string& table = entries_;
  core::put_string(table, s.key.device);
  core::put_string(table, s.key.metric);
  core::put_uvarint(table, s.key.tags.size());
  for (const auto& [k, v] : s.key.tags) {
    core::put_string(table, k);
    core::put_string(table, v);
  }
  table.push_back(static_cast<char>(s.type));
  core::put_uvarint(table, s.chunks.size());
  for (size_t i = 0; i < s.chunks.size(); ++i) {
    uint64_t offset = offset_ + buffer_.size();
    put_frame(buffer_, s.chunks[i]);
    core::put_varint(table, s.metas[i].min_ts);
    core::put_uvarint(table, static_cast<uint64_t>(s.metas[i].max_ts - s.metas[i].min_ts));
    core::put_uvarint(table, s.metas[i].count);
    core::put_uvarint(table, offset);
  }
  for (const auto* r : {&s.rollup_1m, &s.rollup_1h}) {
    if (r->empty()) {
      core::put_uvarint(table, 0);
    } else {
      uint64_t offset = offset_ + buffer_.size();
      put_frame(buffer_, encode_rollups(*r));
      core::put_uvarint(table, offset);
    }
  }
  ++series_count_;
  return buffer_.size() >= (1u << 20) ? flush() : ok();
}

Status BlockWriter::finish(const BlockMeta& meta) {
  std::string table;
  core::put_varint(table, meta.min_ts);
  core::put_varint(table, meta.max_ts);
  core::put_uvarint(table, meta.samples);
  core::put_uvarint(table, meta.level);
  table.push_back(meta.raw_dropped ? 1 : 0);
  core::put_uvarint(table, meta.sources.size());
  for (const auto& s : meta.sources) core::put_string(table, s);
  core::put_uvarint(table, series_count_);
  table += entries_;
  uint64_t table_offset = offset_ + buffer_.size();
  buffer_ += table;
  std::string footer;
  core::put_u64(footer, table_offset);
  core::put_u32(footer, static_cast<uint32_t>(table.size()));
  core::put_u32(footer, core::crc32c(table.data(), table.size()));
  core::put_u32(footer, core::crc32c(footer.data(), footer.size()));
  footer.append(kBlockMagic, 4);
  buffer_ += footer;
  FL_TRY_STATUS(flush());
  if (crash_point_) FL_TRY_STATUS(crash_point_("block.written"));
  FL_TRY_STATUS(file_->sync());
  FL_TRY_STATUS(file_->close());
  if (crash_point_) FL_TRY_STATUS(crash_point_("block.synced"));
  FL_TRY_STATUS(env_->rename(core::join_path(dir_, name_ + ".tmp"), core::join_path(dir_, name_)));
  if (crash_point_) FL_TRY_STATUS(crash_point_("block.renamed"));
  return env_->sync_dir(dir_);
}

Status write_block(core::Env& env, const std::string& dir, const std::string& name, const BlockMeta& meta,
                   const std::vector<SeriesChunks>& series,
                   const std::function<Status(std::string_view)>& crash_point) {
  FL_TRY(writer, BlockWriter::create(env, dir, name, crash_point));
  for (const auto& s : series) FL_TRY_STATUS(writer->add(s));
  return writer->finish(meta);
}

Result<std::unique_ptr<BlockReader>> BlockReader::open(core::Env& env, const std::string& path) {
  FL_TRY(file, env.map_file(path));
  auto data = file->bytes();
  auto corrupt = [&](uint64_t offset, const std::string& why) {
    return make_error(Errc::corrupt, path + " at offset " + std::to_string(offset) + ": " + why);
  };
  if (data.size() < 8 + kBlockFooter) return corrupt(0, "file too short for a block");
  const uint32_t version = core::get_u32(data.data() + 4);
  if (std::memcmp(data.data(), kBlockMagic, 4) != 0 || version < 1 || version > kBlockVersion) {
    return corrupt(0, "bad magic or version");
  }
  const char* footer = data.data() + data.size() - kBlockFooter;
  size_t footer_at = data.size() - kBlockFooter;
  if (std::memcmp(footer + 20, kBlockMagic, 4) != 0 || core::crc32c(footer, 16) != core::get_u32(footer + 16)) {
    return corrupt(footer_at, "footer checksum mismatch");
  }
  uint64_t table_offset = core::get_u64(footer);
  uint32_t table_len = core::get_u32(footer + 8);
  if (table_offset < 8 || table_offset + table_len != footer_at) return corrupt(footer_at, "index offset out of range");
  if (core::crc32c(data.data() + table_offset, table_len) != core::get_u32(footer + 12)) {
    return corrupt(table_offset, "index checksum mismatch");
  }
  std::unique_ptr<BlockReader> block(new BlockReader());
  block->version_ = version;
  core::ByteReader r(data.data() + table_offset, table_len);
  auto bad = [&]() { return corrupt(table_offset + (r.position() - (data.data() + table_offset)), "malformed index"); };
  auto mint = r.varint(), maxt = r.varint();
  auto samples = r.uvarint(), level = r.uvarint();
  auto dropped = r.u8();
  auto nsources = r.uvarint();
  if (!mint || !maxt || !samples || !level || !dropped || !nsources || *nsources > table_len) return bad();
  block->meta_ = {*mint, *maxt, *samples, static_cast<uint32_t>(*level), *dropped != 0, {}};
  for (uint64_t i = 0; i < *nsources; ++i) {
    auto s = r.string();
    if (!s) return bad();
    block->meta_.sources.emplace_back(*s);
  }
  auto nseries = r.uvarint();
  if (!nseries || *nseries > table_len) return bad();
  block->series_.reserve(*nseries);
  for (uint64_t i = 0; i < *nseries; ++i) {
    BlockSeries s;
    auto dev = r.string(), met = r.string();
    auto ntags = r.uvarint();
    if (!dev || !met || !ntags || *ntags > table_len) return bad();
    s.key.device = *dev;
    s.key.metric = *met;
    for (uint64_t t = 0; t < *ntags; ++t) {
      auto k = r.string(), v = r.string();
      if (!k || !v) return bad();
      s.key.tags.emplace_back(*k, *v);
    }
    auto type = r.u8();
    auto nchunks = r.uvarint();
    if (!type || *type < 1 || *type > 4 || !nchunks || *nchunks > table_len) return bad();
    s.type = static_cast<ValueType>(*type);
    for (uint64_t c = 0; c < *nchunks; ++c) {
      auto cmin = r.varint();
      auto span = r.uvarint(), count = r.uvarint(), off = r.uvarint();
      if (!cmin || !span || !count || !off || *off + 8 > table_offset) return bad();
      s.chunks.push_back({*cmin, *cmin + static_cast<int64_t>(*span), static_cast<uint32_t>(*count), *off});
    }
    auto r1m = r.uvarint(), r1h = r.uvarint();
    if (!r1m || !r1h || *r1m + 8 > table_offset || *r1h + 8 > table_offset) return bad();
    s.rollup_1m = *r1m;
    s.rollup_1h = *r1h;
    block->by_key_.emplace(canonical_key(s.key), block->series_.size());
    block->series_.push_back(std::move(s));
  }
  block->file_ = std::move(file);
  return block;
}

const BlockSeries* BlockReader::find(const std::string& key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &series_[it->second];
}

Result<std::string_view> BlockReader::chunk(uint64_t offset) const {
  auto data = file_->bytes();
  if (offset + 8 > data.size()) return make_error(Errc::corrupt, path() + " at offset " + std::to_string(offset) + ": chunk offset out of range");
  uint32_t len = core::get_u32(data.data() + offset);
  uint32_t crc = core::get_u32(data.data() + offset + 4);
  if (offset + 8 + len > data.size()) return make_error(Errc::corrupt, path() + " at offset " + std::to_string(offset) + ": chunk length out of range");
  std::string_view bytes(data.data() + offset + 8, len);
  if (core::crc32c(bytes.data(), bytes.size()) != crc) {
    return make_error(Errc::corrupt, path() + " at offset " + std::to_string(offset) + ": chunk checksum mismatch");
  }
  return bytes;
}

Result<std::vector<RollupPoint>> BlockReader::rollups(uint64_t offset, bool extremes) const {
  FL_TRY(bytes, chunk(offset));
  auto points = version_ == 1 ? decode_rollups_v1(bytes) : version_ == 2 ? decode_rollups_v2(bytes) : decode_rollups(bytes, extremes);
  if (!points) return make_error(Errc::corrupt, path() + " at offset " + std::to_string(offset) + ": " + points.error().context());
  return points;
}

std::string BlockReader::name() const {
  auto pos = path().rfind('/');
  return pos == std::string::npos ? path() : path().substr(pos + 1);
}

std::vector<std::string> BlockReader::verify() const {
  std::vector<std::string> problems;
  for (const auto& s : series_) {
    for (const auto& c : s.chunks) {
      auto bytes = chunk(c.offset);
      if (!bytes) {
        problems.push_back(bytes.error().context());
        continue;
      }
      auto samples = decode_chunk(*bytes);
      if (!samples) {
        problems.push_back(path() + " at offset " + std::to_string(c.offset) + ": " + samples.error().context());
      } else if (samples->size() != c.count) {
        problems.push_back(path() + " at offset " + std::to_string(c.offset) + ": sample count differs from the index");
      }
    }
    for (uint64_t off : {s.rollup_1m, s.rollup_1h}) {
      if (off == 0) continue;
      auto r = rollups(off);
      if (!r) problems.push_back(r.error().context());
    }
  }
  return problems;
}

}  // namespace fieldline::tsdb
