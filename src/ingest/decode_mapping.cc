// The mapping decoder: a vendor's JSON layout read through the JSON pointers a profile's
// contract gives (see DecoderSpec in contract.h).
#include <boost/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "fieldline/core/time.h"
#include "fieldline/ingest/contract.h"

namespace fieldline::ingest {
namespace {

namespace json = boost::json;

Error bad(const std::string& where, const std::string& what) {
  return make_error(Errc::bad_payload, where.empty() ? what : where + ": " + what);
}

Result<int64_t> read_time(const json::value& v, const std::string& where) {
  if (v.is_int64() || v.is_uint64()) {
    int64_t raw = v.is_int64() ? v.get_int64() : static_cast<int64_t>(std::min<uint64_t>(v.get_uint64(), INT64_MAX));
    auto t = core::epoch_to_ns(raw, core::EpochUnit::guess);
    if (!t) return bad(where, t.error().context());
    return t;
  }
  if (v.is_double()) {
    auto t = core::epoch_to_ns(v.get_double(), core::EpochUnit::guess);
    if (!t) return bad(where, t.error().context());
    return t;
  }
  if (v.is_string()) {
    auto t = core::parse_rfc3339(std::string_view(v.get_string()));
    if (!t) return bad(where, t.error().context());
    return t;
  }
  return bad(where, "expected epoch seconds, milliseconds, microseconds or nanoseconds, or an RFC 3339 string");
}

Status decode_record(const DecoderSpec& d, const json::value& record, const std::string& where, int64_t receipt_ns,
                     const DecodeLimits& limits, std::vector<Point>& out) {
  int64_t ts = receipt_ns;
  boost::system::error_code ec;
  if (!d.time_pointer.empty()) {
    const json::value* t = record.find_pointer(d.time_pointer, ec);
    if (!t) return bad(where + d.time_pointer, "no timestamp here");
    FL_TRY(parsed, read_time(*t, where + d.time_pointer));
    ts = parsed;
  }
  for (const auto& f : d.fields) {
    const std::string at = where + f.pointer;
    const json::value* v = record.find_pointer(f.pointer, ec);
    if (!v || v->is_null()) continue;  // absent: the contract's required metrics decide
    if (out.size() >= limits.max_values) {
      return make_error(Errc::too_many_values, "more than " + std::to_string(limits.max_values) + " values in one message");
    }
    Point p{f.metric, ts, 0.0, {}, f.unit};
    if (v->is_double() || v->is_int64() || v->is_uint64()) {
      double x = v->is_double() ? v->get_double() : v->is_int64() ? static_cast<double>(v->get_int64())
                                                                   : static_cast<double>(v->get_uint64());
      if (f.scale != 1 || f.offset != 0) x = round_to_15_digits(x * f.scale + f.offset);
      if (!std::isfinite(x)) return bad(at, "number is not finite");
      p.value = x;
    } else if (v->is_bool()) {
      p.value = v->get_bool();
    } else if (v->is_string()) {
      if (v->get_string().size() > limits.max_string_bytes) {
        return bad(at, "string longer than " + std::to_string(limits.max_string_bytes) + " bytes");
      }
      p.value = std::string(v->get_string());
    } else {
      return bad(at, std::string("expected a number, bool or string, got ") + (v->is_object() ? "an object" : "an array"));
    }
    out.push_back(std::move(p));
  }
  return {};
}

}  // namespace

Result<std::vector<Point>> decode_mapped(const DecoderSpec& d, std::string_view payload, int64_t receipt_ns,
                                         const DecodeLimits& limits) {
  json::parse_options opts;
  opts.max_depth = 32;
  boost::system::error_code ec;
  json::monotonic_resource mr;
  auto root = json::parse(payload, ec, &mr, opts);
  if (ec) return bad("", "invalid JSON: " + ec.message());
  std::vector<Point> out;
  if (d.records_pointer.empty()) {
    FL_TRY_STATUS(decode_record(d, root, "", receipt_ns, limits, out));
  } else {
    const json::value* records = root.find_pointer(d.records_pointer, ec);
    if (!records || !records->is_array()) return bad(d.records_pointer, "expected an array of records");
    const auto& arr = records->get_array();
    for (size_t i = 0; i < arr.size(); ++i) {
      FL_TRY_STATUS(decode_record(d, arr[i], d.records_pointer + "/" + std::to_string(i), receipt_ns, limits, out));
    }
  }
  if (out.empty()) return bad("", "none of the mapped fields is in the message");
  return out;
}

}  // namespace fieldline::ingest
