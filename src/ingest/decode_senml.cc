// SenML (RFC 8428) in JSON and CBOR. Both are read into one record form and resolved the
// same way: base fields carry over to later records, times below 2^28 are relative to
// receipt, values add the base value, and the metric is the record's name (or, without one,
// the last segment of the base name) since the device itself is already authenticated.
#include <boost/json.hpp>

#include <cmath>
#include <cstring>
#include <optional>

#include "fieldline/core/ids.h"
#include "fieldline/core/json.h"
#include "fieldline/ingest/decode.h"
#include "decode_internal.h"

namespace fieldline::ingest {
namespace {

namespace json = boost::json;

using detail::bad_payload;

// One SenML record's fields, as either encoding gives them.
struct Record {
  std::optional<std::string> bn, bu, n, u, vs;
  std::optional<double> bt, bv, bs, v, s, t;
  std::optional<bool> vb;
  std::optional<int64_t> bver;
  bool vd = false;  // a data value: not stored (no binary sample type)
};

struct Resolver {
  int64_t receipt_ns;
  const DecodeLimits& limits;
  std::vector<Point>& out;
  std::string bn, bu;
  double bt = 0, bv = 0, bs = 0;

  Status add(const Record& r, const std::string& where) {
    if (r.bver && *r.bver > 10) return bad_payload(where, "SenML version " + std::to_string(*r.bver) + " is newer than 10");
    if (r.bn) bn = *r.bn;
    if (r.bu) bu = *r.bu;
    if (r.bt) bt = *r.bt;
    if (r.bv) bv = *r.bv;
    if (r.bs) bs = *r.bs;
    const bool has_value = r.v || r.vs || r.vb || r.s || r.vd;
    if (!has_value) {
      if (r.n || r.u || r.t) return bad_payload(where, "record has no value (v, vs, vb, vd or s)");
      return {};  // a record of base fields only
    }
    std::string name = r.n ? *r.n : std::string();
    if (name.empty()) {
      // The base name names the device and the sensor ("urn:dev:ow:10e2073a01080063:temp"):
      // the sensor is its last segment.
      size_t cut = bn.find_last_of(":/;");
      name = cut == std::string::npos ? bn : bn.substr(cut + 1);
    }
    if (name.empty()) return bad_payload(where, "record has no name (n) and the base name (bn) ends without one");
    if (auto st = core::validate_metric_name(name); !st) return make_error(Errc::bad_metric, where + ".n: " + st.error().context());
    double t = bt + (r.t ? *r.t : 0);
    if (!std::isfinite(t)) return bad_payload(where, "time is not finite");
    // To the microsecond: a double holds today's epoch seconds to about 0.2 us, so finer
    // digits are noise (1276020076.001 must not become ...076000999936 ns).
    auto to_ns = [](double secs) {
      double whole = std::floor(secs);
      return static_cast<int64_t>(whole) * 1'000'000'000 + std::llround((secs - whole) * 1e6) * 1000;
    };
    int64_t ts;
    // RFC 8428 section 4.5.3: values below 2^28 are relative to now.
    if (std::fabs(t) < 268435456.0) {
      ts = receipt_ns + to_ns(t);
    } else {
      if (t < 0 || t > 9.2e9) return bad_payload(where, "time " + std::to_string(t) + " is out of range");
      ts = to_ns(t);
    }
    auto push = [&](std::string metric, tsdb::Value value, std::string unit) -> Status {
      if (out.size() >= limits.max_values) return detail::too_many_values(limits.max_values);
      out.push_back(Point{std::move(metric), ts, std::move(value), {}, std::move(unit)});
      return {};
    };
    std::string unit = r.u ? *r.u : bu;
    if (unit.size() > 64) return bad_payload(where, "unit longer than 64 bytes");
    if (r.v) {
      double v = bv + *r.v;
      if (!std::isfinite(v)) return bad_payload(where, "value is not finite");
      FL_TRY_STATUS(push(name, v, unit));
    } else if (r.vs) {
      if (r.vs->size() > limits.max_string_bytes) {
        return bad_payload(where, "string longer than " + std::to_string(limits.max_string_bytes) + " bytes");
      }
      FL_TRY_STATUS(push(name, *r.vs, ""));
    } else if (r.vb) {
      FL_TRY_STATUS(push(name, *r.vb, ""));
    } else if (r.vd) {
      return bad_payload(where, "data values (vd) are not supported");
    }
    if (r.s) {
      double s = bs + *r.s;
      if (!std::isfinite(s)) return bad_payload(where, "sum is not finite");
      std::string sum_name = name + "_sum";
      if (auto st = core::validate_metric_name(sum_name); !st) return make_error(Errc::bad_metric, where + ".s: " + st.error().context());
      FL_TRY_STATUS(push(std::move(sum_name), s, unit));
    }
    return {};
  }
};

// ---- JSON -----------------------------------------------------------------------------------

Status json_record(const json::object& o, const std::string& where, Record& r) {
  auto number = [&](const json::value& v, const char* key) -> Result<double> {
    if (v.is_double()) return v.get_double();
    if (v.is_int64()) return static_cast<double>(v.get_int64());
    if (v.is_uint64()) return static_cast<double>(v.get_uint64());
    return bad_payload(where + "." + key, "expected a number");
  };
  auto text = [&](const json::value& v, const char* key) -> Result<std::string> {
    if (!v.is_string()) return bad_payload(where + "." + key, "expected a string");
    return std::string(v.get_string());
  };
  for (const auto& [k, v] : o) {
    if (k == "bn") { FL_TRY(x, text(v, "bn")); r.bn = x; }
    else if (k == "bu") { FL_TRY(x, text(v, "bu")); r.bu = x; }
    else if (k == "n") { FL_TRY(x, text(v, "n")); r.n = x; }
    else if (k == "u") { FL_TRY(x, text(v, "u")); r.u = x; }
    else if (k == "vs") { FL_TRY(x, text(v, "vs")); r.vs = x; }
    else if (k == "vd") { FL_TRY(x, text(v, "vd")); r.vd = true; }
    else if (k == "bt") { FL_TRY(x, number(v, "bt")); r.bt = x; }
    else if (k == "bv") { FL_TRY(x, number(v, "bv")); r.bv = x; }
    else if (k == "bs") { FL_TRY(x, number(v, "bs")); r.bs = x; }
    else if (k == "v") { FL_TRY(x, number(v, "v")); r.v = x; }
    else if (k == "s") { FL_TRY(x, number(v, "s")); r.s = x; }
    else if (k == "t") { FL_TRY(x, number(v, "t")); r.t = x; }
    else if (k == "ut") { FL_TRY(x, number(v, "ut")); (void)x; }
    else if (k == "vb") {
      if (!v.is_bool()) return bad_payload(where + ".vb", "expected true or false");
      r.vb = v.get_bool();
    } else if (k == "bver") {
      if (!v.is_int64()) return bad_payload(where + ".bver", "expected an integer");
      r.bver = v.get_int64();
    } else if (!k.empty() && k.back() == '_') {
      // RFC 8428 section 4.4: a label ending in '_' must be understood; none is.
      return bad_payload(where + "." + std::string(k), "mandatory extension field is not supported");
    }
    // Other labels are extensions that may be ignored (section 4.4).
  }
  return {};
}

// ---- CBOR (RFC 8949), the subset SenML uses -------------------------------------------------

class Cbor {
 public:
  explicit Cbor(std::string_view in) : in_(in) {}
  size_t pos() const { return pos_; }
  bool done() const { return pos_ >= in_.size(); }

  struct Head {
    uint8_t major;
    uint64_t arg;
    bool indefinite;
    uint8_t info;
  };
  Result<Head> head() {
    if (pos_ >= in_.size()) return err("unexpected end of data");
    uint8_t b = static_cast<uint8_t>(in_[pos_++]);
    Head h{static_cast<uint8_t>(b >> 5), 0, false, static_cast<uint8_t>(b & 31)};
    if (h.info < 24) {
      h.arg = h.info;
    } else if (h.info <= 27) {
      size_t n = size_t{1} << (h.info - 24);
      if (in_.size() - pos_ < n) return err("unexpected end of data");
      for (size_t i = 0; i < n; ++i) h.arg = (h.arg << 8) | static_cast<uint8_t>(in_[pos_++]);
    } else if (h.info == 31 && (h.major >= 2 && h.major <= 5)) {
      h.indefinite = true;
    } else if (h.info == 31 && h.major == 7) {
      h.indefinite = true;  // "break"
    } else {
      return err("reserved additional information " + std::to_string(h.info));
    }
    return h;
  }
  bool at_break() const { return pos_ < in_.size() && static_cast<uint8_t>(in_[pos_]) == 0xff; }
  void skip_break() { ++pos_; }

  // A number (int or float), text, bool, or anything else skipped.
  struct Item {
    enum Kind { number, text, boolean, other } kind = other;
    double num = 0;
    int64_t integer = 0;
    bool is_integer = false;
    std::string str;
    bool b = false;
  };
  Result<Item> item(int depth) {
    if (depth > 16) return err("nested too deeply");
    FL_TRY(h, head());
    Item it;
    switch (h.major) {
      case 0:
        it.kind = Item::number;
        it.num = static_cast<double>(h.arg);
        it.is_integer = h.arg <= static_cast<uint64_t>(INT64_MAX);
        it.integer = static_cast<int64_t>(h.arg);
        return it;
      case 1:
        it.kind = Item::number;
        it.num = -1.0 - static_cast<double>(h.arg);
        it.is_integer = h.arg < static_cast<uint64_t>(INT64_MAX);
        it.integer = -1 - static_cast<int64_t>(h.arg);
        return it;
      case 2:
      case 3: {
        if (h.indefinite) return err("indefinite-length strings are not supported");
        if (h.arg > in_.size() - pos_) return err("string runs past the end");
        if (h.major == 3) {
          it.kind = Item::text;
          it.str.assign(in_.substr(pos_, h.arg));
        }
        pos_ += h.arg;
        return it;
      }
      case 4:
      case 5: {
        const uint64_t per = h.major == 5 ? 2 : 1;
        if (h.indefinite) {
          while (!at_break()) {
            for (uint64_t k = 0; k < per; ++k) FL_TRY_STATUS(item(depth + 1));
          }
          skip_break();
        } else {
          if (h.arg > in_.size() - pos_) return err("container longer than the data");
          for (uint64_t i = 0; i < h.arg * per; ++i) FL_TRY_STATUS(item(depth + 1));
        }
        return it;
      }
      case 6:
        return item(depth + 1);  // a tag: its content is the value
      default:  // 7
        if (h.indefinite) return err("unexpected break");
        if (h.info == 20 || h.info == 21) {
          it.kind = Item::boolean;
          it.b = h.info == 21;
        } else if (h.info == 25) {
          it.kind = Item::number;
          it.num = half(static_cast<uint16_t>(h.arg));
        } else if (h.info == 26) {
          uint32_t bits = static_cast<uint32_t>(h.arg);
          float f;
          std::memcpy(&f, &bits, sizeof f);
          it.kind = Item::number;
          it.num = f;
        } else if (h.info == 27) {
          uint64_t bits = h.arg;
          std::memcpy(&it.num, &bits, sizeof it.num);
          it.kind = Item::number;
        }
        return it;
    }
  }
  Error err(const std::string& what) const { return bad_payload("", "CBOR at byte " + std::to_string(pos_) + ": " + what); }

 private:
  static double half(uint16_t h) {
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v = exp == 0 ? std::ldexp(mant, -24) : exp != 31 ? std::ldexp(mant + 1024, exp - 25) : mant == 0 ? INFINITY : NAN;
    return (h & 0x8000) ? -v : v;
  }
  std::string_view in_;
  size_t pos_ = 0;
};

Status cbor_record(Cbor& c, const std::string& where, Record& r) {
  FL_TRY(h, c.head());
  if (h.major != 5) return bad_payload(where, "expected a map (a SenML record)");
  uint64_t entries = 0;
  for (;;) {
    if (h.indefinite) {
      if (c.at_break()) {
        c.skip_break();
        break;
      }
    } else if (entries == h.arg) {
      break;
    }
    ++entries;
    FL_TRY(key, c.item(1));
    FL_TRY(val, c.item(1));
    if (key.kind == Cbor::Item::text) {
      // Labels of extensions are text; one ending in '_' must be understood.
      if (!key.str.empty() && key.str.back() == '_') return bad_payload(where + "." + key.str, "mandatory extension field is not supported");
      continue;
    }
    if (key.kind != Cbor::Item::number || !key.is_integer) return bad_payload(where, "record labels must be integers or text");
    auto want_number = [&](const char* label) -> Result<double> {
      if (val.kind != Cbor::Item::number) return bad_payload(where + "." + label, "expected a number");
      return val.num;
    };
    auto want_text = [&](const char* label) -> Result<std::string> {
      if (val.kind != Cbor::Item::text) return bad_payload(where + "." + label, "expected a text string");
      return val.str;
    };
    switch (key.integer) {
      case -1:
        if (val.kind != Cbor::Item::number || !val.is_integer) return bad_payload(where + ".bver", "expected an integer");
        r.bver = val.integer;
        break;
      case -2: { FL_TRY(x, want_text("bn")); r.bn = x; break; }
      case -3: { FL_TRY(x, want_number("bt")); r.bt = x; break; }
      case -4: { FL_TRY(x, want_text("bu")); r.bu = x; break; }
      case -5: { FL_TRY(x, want_number("bv")); r.bv = x; break; }
      case -6: { FL_TRY(x, want_number("bs")); r.bs = x; break; }
      case 0: { FL_TRY(x, want_text("n")); r.n = x; break; }
      case 1: { FL_TRY(x, want_text("u")); r.u = x; break; }
      case 2: { FL_TRY(x, want_number("v")); r.v = x; break; }
      case 3: { FL_TRY(x, want_text("vs")); r.vs = x; break; }
      case 4:
        if (val.kind != Cbor::Item::boolean) return bad_payload(where + ".vb", "expected true or false");
        r.vb = val.b;
        break;
      case 5: { FL_TRY(x, want_number("s")); r.s = x; break; }
      case 6: { FL_TRY(x, want_number("t")); r.t = x; break; }
      case 7: break;  // update time: not used
      case 8: r.vd = true; break;
      default:
        if (key.integer < -6 && key.integer > -256) break;  // base extension labels: ignorable
        break;
    }
  }
  return {};
}

}  // namespace

Result<std::vector<Point>> decode_senml_json(std::string_view payload, int64_t receipt_ns, const DecodeLimits& limits) {
  json::parse_options opts;
  opts.max_depth = 4;
  boost::system::error_code ec;
  json::monotonic_resource mr;
  auto root = core::parse_json(payload, ec, &mr, opts);
  if (ec) return bad_payload("", "invalid JSON: " + ec.message());
  if (!root.is_array()) return bad_payload("", "SenML is an array of records");
  const auto& arr = root.get_array();
  if (arr.empty()) return bad_payload("", "empty SenML pack");
  std::vector<Point> out;
  Resolver res{receipt_ns, limits, out, {}, {}};
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string where = "[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) return bad_payload(where, "expected a record (object)");
    Record r;
    FL_TRY_STATUS(json_record(arr[i].get_object(), where, r));
    FL_TRY_STATUS(res.add(r, where));
  }
  if (out.empty()) return bad_payload("", "no values");
  return out;
}

Result<std::vector<Point>> decode_senml_cbor(std::string_view payload, int64_t receipt_ns, const DecodeLimits& limits) {
  Cbor c(payload);
  FL_TRY(h, c.head());
  if (h.major != 4) return bad_payload("", "SenML CBOR is an array of records");
  std::vector<Point> out;
  Resolver res{receipt_ns, limits, out, {}, {}};
  for (uint64_t i = 0;; ++i) {
    if (h.indefinite ? c.at_break() : i == h.arg) break;
    if (c.done()) return c.err("unexpected end of data");
    Record r;
    std::string where = "[" + std::to_string(i) + "]";
    FL_TRY_STATUS(cbor_record(c, where, r));
    FL_TRY_STATUS(res.add(r, where));
  }
  if (h.indefinite) c.skip_break();
  if (!c.done()) return c.err("data after the SenML pack");
  if (out.empty()) return bad_payload("", "no values");
  return out;
}

}  // namespace fieldline::ingest
