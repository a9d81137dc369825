#include <boost/json.hpp>

#include <algorithm>
#include <cmath>

#include "fieldline/core/ids.h"
#include "fieldline/core/json.h"
#include "fieldline/ingest/decode.h"
#include "decode_internal.h"

namespace fieldline::ingest {
namespace {

namespace json = boost::json;

class IngestCategory final : public NamedCategory {
 public:
  const char* name() const noexcept override { return "ingest"; }
  const char* code_name(int c) const noexcept override {
    switch (static_cast<Errc>(c)) {
      case Errc::ok: return "ok";
      case Errc::bad_payload: return "bad_payload";
      case Errc::bad_metric: return "bad_metric";
      case Errc::future_timestamp: return "future_timestamp";
      case Errc::too_many_values: return "too_many_values";
      case Errc::type_conflict: return "type_conflict";
      case Errc::unauthorized: return "unauthorized";
      case Errc::storage_full: return "storage_full";
      case Errc::storage_failed: return "storage_failed";
      case Errc::shutting_down: return "shutting_down";
      case Errc::bad_contract: return "bad_contract";
      case Errc::unknown_metric: return "unknown_metric";
      case Errc::wrong_type: return "wrong_type";
      case Errc::unit_mismatch: return "unit_mismatch";
      case Errc::missing_required: return "missing_required";
      case Errc::already_replayed: return "already_replayed";
      case Errc::replay_busy: return "replay_busy";
      case Errc::quarantine_quota: return "quarantine_quota";
    }
    return "unknown";
  }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::ok: return "ok";
      case Errc::bad_payload: return "malformed payload";
      case Errc::bad_metric: return "invalid metric or tag name";
      case Errc::future_timestamp: return "timestamp too far in the future";
      case Errc::too_many_values: return "too many values in one message";
      case Errc::type_conflict: return "metric changed its value type";
      case Errc::unauthorized: return "not authorized";
      case Errc::storage_full: return "storage is full";
      case Errc::storage_failed: return "storage failed";
      case Errc::shutting_down: return "server is shutting down";
      case Errc::bad_contract: return "invalid data contract";
      case Errc::unknown_metric: return "metric not in the data contract";
      case Errc::wrong_type: return "value of the wrong type for the data contract";
      case Errc::unit_mismatch: return "unit does not convert to the data contract's";
      case Errc::missing_required: return "required metric missing";
      case Errc::already_replayed: return "already replayed";
      case Errc::replay_busy: return "being replayed";
      case Errc::quarantine_quota: return "quarantine quota exceeded";
    }
    return "unknown ingest error";
  }
};

using detail::bad_payload;

// `prefix` + `name` says where a value is; built only for an error message (a location
// string per value was a heap allocation per value on the ingest path).
Status add_value(std::string_view name, const json::value& v, int64_t ts, std::string_view prefix,
                 const DecodeLimits& limits, std::vector<Point>& out) {
  auto where_ = [&] { return std::string(prefix) + std::string(name); };
  if (auto st = core::validate_metric_name(name); !st) {
    return make_error(Errc::bad_metric, where_() + ": " + st.error().context());
  }
  if (out.size() >= limits.max_values) return detail::too_many_values(limits.max_values);
  FL_TRY(value, detail::json_scalar(v, limits, where_));
  out.push_back(Point{std::string(name), ts, std::move(value), {}, {}});
  return {};
}

Status decode_entry(const json::value& entry, const std::string& where, int64_t receipt_ns, const DecodeLimits& limits,
                    std::vector<Point>& out) {
  if (!entry.is_object()) return bad_payload(where, "expected an object");
  const auto& obj = entry.get_object();
  int64_t ts = receipt_ns;
  if (const auto* t = obj.if_contains("ts")) {
    FL_TRY(parsed, detail::json_timestamp(*t, where.empty() ? "ts" : where + ".ts"));
    ts = parsed;
  }
  if (const auto* values = obj.if_contains("values")) {
    if (!values->is_object()) return bad_payload(where.empty() ? "values" : where + ".values", "expected an object of name -> value");
    const std::string prefix = where.empty() ? "values." : where + ".values.";
    const size_t first = out.size();
    out.reserve(out.size() + values->get_object().size());
    for (const auto& [k, v] : values->get_object()) FL_TRY_STATUS(add_value(k, v, ts, prefix, limits, out));
    for (const auto& [k, v] : obj) {
      if (k != "ts" && k != "values" && k != "units") {
        return bad_payload(where.empty() ? std::string(k) : where + "." + std::string(k), "unexpected key beside ts, values and units");
      }
    }
    if (const auto* units = obj.if_contains("units")) {
      const std::string at = where.empty() ? "units" : where + ".units";
      if (!units->is_object()) return bad_payload(at, "expected an object of name -> UCUM unit");
      for (const auto& [k, u] : units->get_object()) {
        if (!u.is_string() || u.get_string().empty() || u.get_string().size() > 64) {
          return bad_payload(at + "." + std::string(k), "expected a UCUM unit string of at most 64 bytes");
        }
        std::string_view name(k);  // a structured binding cannot be captured (clang)
        auto it = std::find_if(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
                               [name](const Point& p) { return p.metric == name; });
        if (it == out.end()) return bad_payload(at + "." + std::string(k), "a unit for a metric that has no value");
        it->unit = std::string(u.get_string());
      }
    }
    return {};
  }
  // Flat object: every key but ts is a metric.
  const std::string prefix = where.empty() ? "" : where + ".";
  out.reserve(out.size() + obj.size());
  for (const auto& [k, v] : obj) {
    if (k == "ts") continue;
    FL_TRY_STATUS(add_value(k, v, ts, prefix, limits, out));
  }
  return {};
}

}  // namespace

Result<int64_t> detail::json_timestamp(const json::value& v, const std::string& where) {
  if (v.is_int64() || v.is_uint64()) {
    if (v.is_uint64() && v.get_uint64() > static_cast<uint64_t>(INT64_MAX)) return bad_payload(where, "timestamp out of range");
    auto r = core::epoch_to_ns(v.is_int64() ? v.get_int64() : static_cast<int64_t>(v.get_uint64()), core::EpochUnit::guess);
    if (!r) return bad_payload(where, r.error().context());
    return r;
  }
  if (v.is_double()) {
    auto r = core::epoch_to_ns(v.get_double(), core::EpochUnit::guess);
    if (!r) return bad_payload(where, r.error().context());
    return r;
  }
  if (v.is_string()) {
    auto r = core::parse_rfc3339(std::string_view(v.get_string()));
    if (!r) return bad_payload(where, r.error().context());
    return r;
  }
  return bad_payload(where, "expected epoch seconds, milliseconds, microseconds or nanoseconds, or an RFC 3339 string");
}

const NamedCategory& ingest_category() {
  static const IngestCategory c;
  return c;
}

const char* to_string(Format f) {
  switch (f) {
    case Format::json: return "json";
    case Format::line_protocol: return "line_protocol";
    case Format::senml_json: return "senml_json";
    case Format::senml_cbor: return "senml_cbor";
    case Format::mapping: return "mapping";
    case Format::automatic: return "auto";
  }
  return "?";
}

bool looks_like_cbor(std::string_view payload) {
  if (payload.empty()) return false;
  auto b = static_cast<unsigned char>(payload[0]);
  return b >= 0x80 && b <= 0xbf;  // major type 4 (array) or 5 (map); JSON text never starts so
}

Format format_of_content_type(std::string_view ct) {
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  if (ct == "application/senml+json") return Format::senml_json;
  if (ct == "application/senml+cbor") return Format::senml_cbor;
  return Format::automatic;
}

Result<Format> parse_format(std::string_view name) {
  for (auto f : {Format::json, Format::line_protocol, Format::senml_json, Format::senml_cbor, Format::mapping, Format::automatic}) {
    if (name == to_string(f)) return f;
  }
  return make_error(Errc::bad_payload, "unknown payload format '" + std::string(name) + "'");
}

Result<std::vector<Point>> decode_json_telemetry(std::string_view payload, int64_t receipt_ns, const DecodeLimits& limits) {
  // The document and the parser's own working stack both live on this stack frame: a
  // telemetry message is decoded without touching the heap. (A json::parser, told the text is
  // complete, never suspends; a stream_parser saved its state to the heap at the end of every
  // message, and without reset() its document went to the heap too, an allocation per key.)
  unsigned char buffer[4096], temp[2048];
  json::monotonic_resource mr(buffer, sizeof buffer);
  json::parse_options opts;
  opts.max_depth = 8;
  boost::system::error_code ec;
  size_t consumed = 0;
  json::value root = core::parse_json(payload, ec, &mr, opts, temp, sizeof temp, &consumed);
  if (ec) {
    return bad_payload("", "invalid JSON at byte " + std::to_string(consumed) + ": " + ec.message());
  }
  std::vector<Point> out;
  if (root.is_array()) {
    const auto& arr = root.get_array();
    if (arr.empty()) return bad_payload("", "empty array");
    for (size_t i = 0; i < arr.size(); ++i) {
      FL_TRY_STATUS(decode_entry(arr[i], "[" + std::to_string(i) + "]", receipt_ns, limits, out));
    }
  } else if (root.is_object()) {
    FL_TRY_STATUS(decode_entry(root, "", receipt_ns, limits, out));
  } else {
    return bad_payload("", "expected a JSON object or array");
  }
  if (out.empty()) return bad_payload("", "no values");
  return out;
}

}  // namespace fieldline::ingest
