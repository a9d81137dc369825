#pragma once
// Error codes of the time-series engine. Sample-level rejections (out_of_order, too_old,
// duplicate_conflict, type_mismatch) are per sample and leave the rest of a batch intact.

#include "fieldline/core/result.h"

namespace fieldline::tsdb {

enum class Errc {
  ok = 0,
  out_of_order,        // older than the series' newest sample minus the out-of-order window
  too_old,             // falls in a time range already persisted into a block
  duplicate_conflict,  // same timestamp as a stored sample, different value
  type_mismatch,       // value type differs from the series' type
  disk_full,           // the disk-usage limit is reached; writes resume when space is freed
  wal_failed,          // the write-ahead log could not be written
  corrupt,             // a checksum or framing check failed
  invalid_query,
  not_found,
  closed,
  busy,                // another block job (cut, compaction, replacement) holds the blocks; try again
};

const NamedCategory& tsdb_category();

inline Error make_error(Errc e, std::string context) {
  return Error(std::error_code(static_cast<int>(e), tsdb_category()), std::move(context));
}
inline bool is(const Error& e, Errc c) {
  return e.code().category() == tsdb_category() && e.code().value() == static_cast<int>(c);
}

}  // namespace fieldline::tsdb
