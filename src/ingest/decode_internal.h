#pragma once
// Private to the decoders (decode_json.cc, decode_line_protocol.cc, decode_senml.cc,
// decode_mapping.cc): their errors and the JSON pieces the JSON-based ones share.

#include <boost/json/value.hpp>

#include <cmath>
#include <string>

#include "fieldline/ingest/decode.h"

namespace fieldline::ingest::detail {

inline Error bad_payload(const std::string& where, const std::string& what) {
  return make_error(Errc::bad_payload, where.empty() ? what : where + ": " + what);
}

inline Error too_many_values(uint32_t limit, const char* in = "message") {
  return make_error(Errc::too_many_values, "more than " + std::to_string(limit) + " values in one " + in);
}

// A timestamp: epoch seconds, milliseconds, microseconds or nanoseconds (told apart by size),
// or an RFC 3339 string.
Result<int64_t> json_timestamp(const boost::json::value& v, const std::string& where);

// A JSON number, bool or string as a sample value (numbers as floats). `where()` names the
// value in an error; it is called only then, so no location string is built per value.
template <typename Where>
Result<tsdb::Value> json_scalar(const boost::json::value& v, const DecodeLimits& limits, Where where) {
  if (v.is_double()) {
    if (!std::isfinite(v.get_double())) return bad_payload(where(), "number is not finite");
    return tsdb::Value(v.get_double());
  }
  if (v.is_int64()) return tsdb::Value(static_cast<double>(v.get_int64()));
  if (v.is_uint64()) return tsdb::Value(static_cast<double>(v.get_uint64()));
  if (v.is_bool()) return tsdb::Value(v.get_bool());
  if (v.is_string()) {
    if (v.get_string().size() > limits.max_string_bytes) {
      return bad_payload(where(), "string longer than " + std::to_string(limits.max_string_bytes) + " bytes");
    }
    return tsdb::Value(std::string(v.get_string()));
  }
  if (v.is_null()) return bad_payload(where(), "null is not a value");
  return bad_payload(where(), std::string("expected a number, bool or string, got ") + (v.is_object() ? "an object" : "an array"));
}

}  // namespace fieldline::ingest::detail
