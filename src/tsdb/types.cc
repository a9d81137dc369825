#include "fieldline/tsdb/types.h"

#include <cstring>

#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {

const char* to_string(ValueType t) {
  switch (t) {
    case ValueType::float64: return "float";
    case ValueType::int64: return "int";
    case ValueType::boolean: return "bool";
    case ValueType::string: return "string";
  }
  return "?";
}

bool numeric_value(const Value& v, double& out) {
  switch (v.index()) {
    case 0: out = std::get<0>(v); return true;
    case 1: out = static_cast<double>(std::get<1>(v)); return true;
    case 2: out = std::get<2>(v) ? 1.0 : 0.0; return true;
    default: return false;
  }
}

bool same_value(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (a.index() == 0) {
    double x = std::get<0>(a), y = std::get<0>(b);
    return std::memcmp(&x, &y, sizeof x) == 0;
  }
  return a == b;
}

const std::string* SeriesLabels::label(std::string_view name) const {
  if (name == "device") return device;
  if (name == "metric") return metric;
  for (const auto& [k, v] : *tags) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string SeriesLabels::to_string() const {
  std::string out = *device + "/" + *metric;
  if (!tags->empty()) {
    out += "{";
    for (size_t i = 0; i < tags->size(); ++i) {
      if (i) out += ",";
      out += (*tags)[i].first + "=" + (*tags)[i].second;
    }
    out += "}";
  }
  return out;
}

const std::string* SeriesKey::label(std::string_view name) const { return SeriesLabels(*this).label(name); }
std::string SeriesKey::to_string() const { return SeriesLabels(*this).to_string(); }

namespace {
class TsdbCategory final : public NamedCategory {
 public:
  const char* name() const noexcept override { return "tsdb"; }
  const char* code_name(int code) const noexcept override {
    switch (static_cast<Errc>(code)) {
      case Errc::ok: return "ok";
      case Errc::out_of_order: return "out_of_order";
      case Errc::too_old: return "too_old";
      case Errc::duplicate_conflict: return "duplicate_conflict";
      case Errc::type_mismatch: return "type_mismatch";
      case Errc::disk_full: return "disk_full";
      case Errc::wal_failed: return "wal_failed";
      case Errc::corrupt: return "corrupt";
      case Errc::invalid_query: return "invalid_query";
      case Errc::not_found: return "not_found";
      case Errc::closed: return "closed";
      case Errc::busy: return "busy";
    }
    return "unknown";
  }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::ok: return "ok";
      case Errc::out_of_order: return "sample is older than the out-of-order window";
      case Errc::too_old: return "sample falls in a time range already persisted";
      case Errc::duplicate_conflict: return "a different value is already stored at this timestamp";
      case Errc::type_mismatch: return "value type differs from the series' type";
      case Errc::disk_full: return "storage is full";
      case Errc::wal_failed: return "write-ahead log write failed";
      case Errc::corrupt: return "data is corrupt";
      case Errc::invalid_query: return "invalid query";
      case Errc::not_found: return "not found";
      case Errc::closed: return "database is closed";
      case Errc::busy: return "the blocks are being rewritten; try again";
    }
    return "unknown tsdb error";
  }
};
}  // namespace

const NamedCategory& tsdb_category() {
  static const TsdbCategory category;
  return category;
}

}  // namespace fieldline::tsdb
