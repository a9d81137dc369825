// The mapping decoder: a vendor's JSON layout read through the JSON pointers a profile's
// contract gives (see DecoderSpec in contract.h).
#include <boost/json.hpp>

#include <cmath>

#include "fieldline/core/json.h"
#include "fieldline/core/time.h"
#include "fieldline/ingest/contract.h"
#include "decode_internal.h"

namespace fieldline::ingest {
namespace {

namespace json = boost::json;

using detail::bad_payload;

Status decode_record(const DecoderSpec& d, const json::value& record, const std::string& where, int64_t receipt_ns,
                     const DecodeLimits& limits, std::vector<Point>& out) {
  int64_t ts = receipt_ns;
  boost::system::error_code ec;
  if (!d.time_pointer.empty()) {
    const json::value* t = record.find_pointer(d.time_pointer, ec);
    if (!t) return bad_payload(where + d.time_pointer, "no timestamp here");
    FL_TRY(parsed, detail::json_timestamp(*t, where + d.time_pointer));
    ts = parsed;
  }
  for (const auto& f : d.fields) {
    auto at = [&] { return where + f.pointer; };  // built only for an error
    const json::value* v = record.find_pointer(f.pointer, ec);
    if (!v || v->is_null()) continue;  // absent: the contract's required metrics decide
    if (out.size() >= limits.max_values) return detail::too_many_values(limits.max_values);
    FL_TRY(value, detail::json_scalar(*v, limits, at));
    if (auto* x = std::get_if<double>(&value); x && (f.scale != 1 || f.offset != 0)) {
      *x = round_to_15_digits(*x * f.scale + f.offset);
      if (!std::isfinite(*x)) return bad_payload(at(), "number is not finite");
    }
    out.push_back(Point{f.metric, ts, std::move(value), {}, f.unit});
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
  auto root = core::parse_json(payload, ec, &mr, opts);
  if (ec) return bad_payload("", "invalid JSON: " + ec.message());
  std::vector<Point> out;
  if (d.records_pointer.empty()) {
    FL_TRY_STATUS(decode_record(d, root, "", receipt_ns, limits, out));
  } else {
    const json::value* records = root.find_pointer(d.records_pointer, ec);
    if (!records || !records->is_array()) return bad_payload(d.records_pointer, "expected an array of records");
    const auto& arr = records->get_array();
    for (size_t i = 0; i < arr.size(); ++i) {
      FL_TRY_STATUS(decode_record(d, arr[i], d.records_pointer + "/" + std::to_string(i), receipt_ns, limits, out));
    }
  }
  if (out.empty()) return bad_payload("", "none of the mapped fields is in the message");
  return out;
}

}  // namespace fieldline::ingest
