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
  quarantine_quota,  // refused, and not kept: the device's quarantine quota is spent
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
// `automatic`: what a transport sends when the message does not say (an MQTT 3.1.1 publish,
// an HTTP body without a SenML content type): the pipeline takes SenML CBOR when the bytes
// are CBOR, else the decoder the profile's contract names, else the core JSON format.
enum class Format : uint8_t { json, line_protocol, senml_json, senml_cbor, mapping, automatic };
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

// SenML (RFC 8428) packs in JSON and in CBOR. Base fields carry over; times below 2^28 are
// relative to receipt; the metric is the record's name, or the last segment (after ':', '/'
// or ';') of the base name when the record has none; a sum "s" becomes "<name>_sum"; units
// travel with the points (and are converted to the contract's).
Result<std::vector<Point>> decode_senml_json(std::string_view payload, int64_t receipt_ns, const DecodeLimits& limits = {});
Result<std::vector<Point>> decode_senml_cbor(std::string_view payload, int64_t receipt_ns, const DecodeLimits& limits = {});

// True when `payload` starts like CBOR (an array or map head) and so cannot be JSON text.
bool looks_like_cbor(std::string_view payload);

// The format a content type names (MQTT 5 content type, HTTP Content-Type): SenML JSON or
// CBOR, the core JSON format, or automatic for anything else.
Format format_of_content_type(std::string_view content_type);

}  // namespace fieldline::ingest
