#pragma once
// Telemetry decoders (pure functions: bytes in, points or a located error out). Each is a
// fuzz target (tests/fuzz/). Errors use ingest::Errc::bad_payload and say what and where
// ("[2].values.temp: expected a number, bool or string").

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/core/time.h"
#include "fieldline/tsdb/types.h"

namespace fieldline::ingest {

enum class Errc {
  ok = 0,
  bad_payload,    // not decodable: syntax, structure, types
  bad_metric,     // a metric or tag name that is not allowed
  future_timestamp,
  too_many_values,
  type_conflict,  // a metric changed its value type
  unauthorized,
  storage_full,
  storage_failed,
  shutting_down,
  bad_contract,  // a contract document that does not parse or breaks the rules
  // A message that breaks its device's data contract (it goes to quarantine):
  unknown_metric,    // a metric the contract does not list
  wrong_type,        // a value of another type than the contract's
  unit_mismatch,     // a unit that is not the contract's and does not convert to it
  missing_required,  // a required metric absent from the message
  already_replayed,  // a quarantined message that was replayed before
  replay_busy,       // a quarantined message another replay is working on
};
const NamedCategory& ingest_category();
inline Error make_error(Errc e, std::string context) {
  return Error(std::error_code(static_cast<int>(e), ingest_category()), std::move(context));
}
inline bool is(const Error& e, Errc c) {
  return e.code().category() == ingest_category() && e.code().value() == static_cast<int>(c);
}

struct Point {
  std::string metric;
  int64_t ts = 0;
  tsdb::Value value;
  std::vector<std::pair<std::string, std::string>> tags;  // extra series tags (line protocol)
  std::string unit;  // UCUM, as sent (JSON "units", SenML "u"); empty: the contract's unit
};

// How a message's bytes are decoded; kept with a quarantined (and a retained) raw payload so
// it can be decoded again later.
enum class Format : uint8_t { json, line_protocol };
const char* to_string(Format f);
Result<Format> parse_format(std::string_view name);

struct DecodeLimits {
  uint32_t max_values = 10000;
  uint32_t max_string_bytes = 4096;
};

// The core JSON format: {"ts": <epoch s|ms|ns or RFC 3339>, "values": {"name": number|bool|string},
// "units": {"name": "<UCUM>"}} ("units" optional: values in another unit than the contract's
// are converted), an array of those, or a flat object of name -> value (ts = receipt time).
Result<std::vector<Point>> decode_json_telemetry(std::string_view payload, int64_t receipt_ns,
                                                 const DecodeLimits& limits = {});

// InfluxDB line protocol. The metric is "<measurement>_<field>", or the measurement alone for a
// field called "value". Timestamps are in `precision` (default ns); lines without one get
// receipt time. `lines`, when given, receives each point's line as [begin, end) offsets in
// `body`, so a body that writes for many devices can be split into each device's own lines.
Result<std::vector<Point>> decode_line_protocol(std::string_view body, core::EpochUnit precision, int64_t receipt_ns,
                                                const DecodeLimits& limits = {},
                                                std::vector<std::pair<uint32_t, uint32_t>>* lines = nullptr);

}  // namespace fieldline::ingest
