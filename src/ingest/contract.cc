#include "fieldline/ingest/contract.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include <boost/json.hpp>
#include <toml++/toml.h>

#include "fieldline/core/ids.h"
#include "fieldline/core/json.h"
#include "fieldline/ingest/decode.h"
#include "fieldline/ingest/units.h"

namespace fieldline::ingest {
namespace json = boost::json;

const char* to_string(MetricType t) {
  switch (t) {
    case MetricType::float64: return "float";
    case MetricType::int64: return "int";
    case MetricType::boolean: return "bool";
    case MetricType::string: return "string";
  }
  return "?";
}

const MetricSpec* Contract::metric(std::string_view name) const {
  auto it = std::lower_bound(metrics.begin(), metrics.end(), name, [](const MetricSpec& m, std::string_view n) { return m.name < n; });
  return it != metrics.end() && it->name == name ? &*it : nullptr;
}

// ---- Parsing --------------------------------------------------------------------------------

namespace {

// A number as people write it (150, -40, 0.5); "none" for an absent bound.
std::string show(const std::optional<double>& d) {
  if (!d) return "none";
  std::ostringstream s;
  s << *d;
  return s.str();
}

// TOML documents become JSON values; where each field came from is kept for the messages.
using Lines = std::map<std::string, int64_t>;

json::value from_toml(const toml::node& node, const std::string& path, Lines& lines) {
  if (node.source().begin.line > 0) lines[path] = node.source().begin.line;
  if (const auto* t = node.as_table()) {
    json::object o;
    for (const auto& [k, v] : *t) {
      std::string key(k.str());
      o[key] = from_toml(v, path.empty() ? key : path + "." + key, lines);
    }
    return o;
  }
  if (const auto* a = node.as_array()) {
    json::array out;
    for (size_t i = 0; i < a->size(); ++i) out.push_back(from_toml(*a->get(i), path + "[" + std::to_string(i) + "]", lines));
    return out;
  }
  if (const auto* s = node.as_string()) return json::value(s->get());
  if (const auto* i = node.as_integer()) return json::value(i->get());
  if (const auto* f = node.as_floating_point()) return json::value(f->get());
  if (const auto* b = node.as_boolean()) return json::value(b->get());
  return json::value("<a date or time>");  // no contract field takes one; the type check says so
}

class ContractReader {
 public:
  explicit ContractReader(const Lines& lines) : lines_(lines) {}

  Result<Contract> read(const json::value& root) {
    if (!root.is_object()) return bad("", "a contract is an object (a TOML document or a JSON object)");
    const auto& o = root.get_object();
    FL_TRY_STATUS(only(o, "", {"profile", "description", "required_tags", "metrics", "decoder"}));
    Contract c;
    FL_TRY(profile, string_field(o, "", "profile", true));
    if (auto st = core::validate_device_id(profile); !st || profile.size() > 64) {
      return bad("profile", "'" + profile + "' is not a profile name (1-64 characters from [A-Za-z0-9._:-])");
    }
    c.profile = profile;
    FL_TRY(description, string_field(o, "", "description", false));
    c.description = description;
    if (const auto* tags = o.if_contains("required_tags")) {
      if (!tags->is_array()) return bad("required_tags", "expected an array of tag names");
      for (size_t i = 0; i < tags->get_array().size(); ++i) {
        const auto& t = tags->get_array()[i];
        std::string where = "required_tags[" + std::to_string(i) + "]";
        if (!t.is_string()) return bad(where, "expected a tag name");
        std::string name(t.get_string());
        if (auto st = core::validate_metric_name(name); !st) return bad(where, st.error().context());
        c.required_tags.push_back(name);
      }
      std::sort(c.required_tags.begin(), c.required_tags.end());
      if (std::adjacent_find(c.required_tags.begin(), c.required_tags.end()) != c.required_tags.end()) {
        return bad("required_tags", "a tag is listed twice");
      }
    }
    const auto* metrics = o.if_contains("metrics");
    if (!metrics || !metrics->is_object() || metrics->get_object().empty()) {
      return bad("metrics", "expected a table of metrics ([metrics.<name>] with at least a type)");
    }
    for (const auto& [k, v] : metrics->get_object()) {
      FL_TRY(m, read_metric(std::string(k), v));
      c.metrics.push_back(std::move(m));
    }
    std::sort(c.metrics.begin(), c.metrics.end(), [](const MetricSpec& a, const MetricSpec& b) { return a.name < b.name; });
    if (const auto* d = o.if_contains("decoder")) FL_TRY_STATUS(read_decoder(*d, c));
    return c;
  }

 private:
  Result<MetricSpec> read_metric(const std::string& name, const json::value& v) {
    const std::string path = "metrics." + name;
    if (auto st = core::validate_metric_name(name); !st) return bad(path, st.error().context());
    if (!v.is_object()) return bad(path, "expected a table of the metric's fields");
    const auto& o = v.get_object();
    FL_TRY_STATUS(only(o, path, {"type", "unit", "min", "max", "required", "max_rate_hz", "expected_interval_s", "description"}));
    MetricSpec m;
    m.name = name;
    FL_TRY(type, string_field(o, path, "type", true));
    if (type == "float" || type == "float64" || type == "double") m.type = MetricType::float64;
    else if (type == "int" || type == "int64" || type == "integer") m.type = MetricType::int64;
    else if (type == "bool" || type == "boolean") m.type = MetricType::boolean;
    else if (type == "string") m.type = MetricType::string;
    else return bad(path + ".type", "'" + type + "' is not a type (float, int, bool or string)");
    FL_TRY(unit, string_field(o, path, "unit", false));
    if (!unit.empty()) {
      if (auto st = validate_ucum(unit); !st) return bad(path + ".unit", st.error().context());
      if (m.type == MetricType::boolean || m.type == MetricType::string) return bad(path + ".unit", "only numbers have a unit");
    }
    m.unit = unit;
    FL_TRY(min, number_field(o, path, "min"));
    FL_TRY(max, number_field(o, path, "max"));
    if ((min || max) && (m.type == MetricType::boolean || m.type == MetricType::string)) {
      return bad(path + (min ? ".min" : ".max"), "only numbers have a range");
    }
    if (min && max && *min > *max) return bad(path + ".min", "min " + show(min) + " is above max " + show(max));
    m.min = min;
    m.max = max;
    if (const auto* r = o.if_contains("required")) {
      if (!r->is_bool()) return bad(path + ".required", "expected true or false");
      m.required = r->get_bool();
    }
    FL_TRY(rate, number_field(o, path, "max_rate_hz"));
    if (rate && !(*rate > 0)) return bad(path + ".max_rate_hz", "expected a rate above 0");
    m.max_rate_hz = rate;
    FL_TRY(interval, number_field(o, path, "expected_interval_s"));
    if (interval && !(*interval > 0)) return bad(path + ".expected_interval_s", "expected seconds above 0");
    m.expected_interval_s = interval;
    FL_TRY(description, string_field(o, path, "description", false));
    m.description = description;
    return m;
  }

  Status read_decoder(const json::value& v, Contract& c) {
    if (!v.is_object()) return bad("decoder", "expected a table ([decoder] with a format)");
    const auto& o = v.get_object();
    FL_TRY_STATUS(only(o, "decoder", {"format", "time", "records", "fields"}));
    FL_TRY(format, string_field(o, "decoder", "format", true));
    auto& d = c.decoder;
    if (format == "json") d.kind = DecoderSpec::Kind::json;
    else if (format == "senml") d.kind = DecoderSpec::Kind::senml;
    else if (format == "mapping") d.kind = DecoderSpec::Kind::mapping;
    else return bad("decoder.format", "'" + format + "' is not a decoder (json, senml or mapping)");
    auto pointer = [&](const std::string& where, const std::string& p) -> Status {
      if (!p.empty() && p[0] != '/') return bad(where, "'" + p + "' is not a JSON pointer (it starts with '/', e.g. \"/data/temp\")");
      return {};
    };
    FL_TRY(time, string_field(o, "decoder", "time", false));
    FL_TRY_STATUS(pointer("decoder.time", time));
    FL_TRY(records, string_field(o, "decoder", "records", false));
    FL_TRY_STATUS(pointer("decoder.records", records));
    d.time_pointer = time;
    d.records_pointer = records;
    const auto* fields = o.if_contains("fields");
    if (d.kind != DecoderSpec::Kind::mapping) {
      if (fields || !time.empty() || !records.empty()) return bad("decoder", "time, records and fields belong to the mapping decoder");
      return {};
    }
    if (!fields || !fields->is_object() || fields->get_object().empty()) {
      return bad("decoder.fields", "a mapping decoder needs fields ([decoder.fields.<metric>] with a pointer)");
    }
    for (const auto& [k, fv] : fields->get_object()) {
      const std::string path = "decoder.fields." + std::string(k);
      const MetricSpec* spec = c.metric(std::string(k));
      if (!spec) return bad(path, "'" + std::string(k) + "' is not a metric of this contract");
      if (!fv.is_object()) return bad(path, "expected a table with a pointer");
      const auto& fo = fv.get_object();
      FL_TRY_STATUS(only(fo, path, {"pointer", "scale", "offset", "unit"}));
      FieldMapping m;
      m.metric = std::string(k);
      FL_TRY(ptr, string_field(fo, path, "pointer", true));
      if (ptr.empty()) return bad(path + ".pointer", "empty: point at the value, e.g. \"/data/temp\"");
      FL_TRY_STATUS(pointer(path + ".pointer", ptr));
      m.pointer = ptr;
      FL_TRY(scale, number_field(fo, path, "scale"));
      FL_TRY(offset, number_field(fo, path, "offset"));
      if (scale && *scale == 0) return bad(path + ".scale", "a scale of 0 loses the value");
      if ((scale || offset) && spec->type != MetricType::float64 && spec->type != MetricType::int64) {
        return bad(path + (scale ? ".scale" : ".offset"), "only numbers are scaled");
      }
      m.scale = scale ? *scale : 1;
      m.offset = offset ? *offset : 0;
      FL_TRY(unit, string_field(fo, path, "unit", false));
      if (!unit.empty()) {
        if (auto st = validate_ucum(unit); !st) return bad(path + ".unit", st.error().context());
        if (spec->unit.empty()) return bad(path + ".unit", "metric '" + spec->name + "' has no unit to convert to");
        if (auto conv = unit_conversion(unit, spec->unit); !conv) return bad(path + ".unit", conv.error().context());
      }
      m.unit = unit;
      d.fields.push_back(std::move(m));
    }
    std::sort(d.fields.begin(), d.fields.end(), [](const auto& a, const auto& b) { return a.metric < b.metric; });
    return {};
  }

  Status only(const json::object& o, const std::string& path, std::initializer_list<std::string_view> allowed) {
    for (const auto& [k, v] : o) {
      if (std::find(allowed.begin(), allowed.end(), std::string_view(k)) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return bad(path.empty() ? std::string(k) : path + "." + std::string(k), "unknown field (expected one of " + list + ")");
      }
    }
    return {};
  }
  Result<std::string> string_field(const json::object& o, const std::string& path, const char* key, bool required) {
    std::string where = path.empty() ? key : path + "." + key;
    const auto* v = o.if_contains(key);
    if (!v) {
      if (required) return bad(where, "missing");
      return std::string();
    }
    if (!v->is_string()) return bad(where, "expected a string");
    return std::string(v->get_string());
  }
  Result<std::optional<double>> number_field(const json::object& o, const std::string& path, const char* key) {
    const auto* v = o.if_contains(key);
    if (!v) return std::optional<double>();
    double d;
    if (v->is_double()) d = v->get_double();
    else if (v->is_int64()) d = static_cast<double>(v->get_int64());
    else if (v->is_uint64()) d = static_cast<double>(v->get_uint64());
    else return bad(path + "." + key, "expected a number");
    if (!std::isfinite(d)) return bad(path + "." + key, "expected a finite number");
    return std::optional<double>(d);
  }
  Error bad(const std::string& field, const std::string& why) const {
    std::string where;
    // The line of the field, or of the nearest enclosing table that has one.
    for (std::string p = field;; ) {
      if (auto it = lines_.find(p); it != lines_.end()) {
        where = "line " + std::to_string(it->second) + ": ";
        break;
      }
      auto cut = p.find_last_of(".[");
      if (cut == std::string::npos) break;
      p.resize(cut);
    }
    return make_error(Errc::bad_contract, where + (field.empty() ? "" : field + ": ") + why);
  }

  const Lines& lines_;
};

}  // namespace

Result<Contract> parse_contract(std::string_view text) {
  Lines lines;
  json::value root;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = 16;
    root = core::parse_json(text, ec, {}, opts);  // numbers to the nearest double: canonical_json reads back the same
    if (ec) return make_error(Errc::bad_contract, "invalid JSON: " + ec.message());
  } else {
    try {
      auto table = toml::parse(text);
      root = from_toml(table, "", lines);
    } catch (const toml::parse_error& e) {
      return make_error(Errc::bad_contract, "line " + std::to_string(e.source().begin.line) + ", column " +
                                               std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
    }
  }
  return ContractReader(lines).read(root);
}

std::string canonical_json(const Contract& c) {
  json::object o;
  o["profile"] = c.profile;
  if (!c.description.empty()) o["description"] = c.description;
  json::array tags;
  for (const auto& t : c.required_tags) tags.push_back(json::value(t));
  o["required_tags"] = std::move(tags);
  json::object metrics;
  for (const auto& m : c.metrics) {
    json::object mo;
    mo["type"] = to_string(m.type);
    if (!m.unit.empty()) mo["unit"] = m.unit;
    if (m.min) mo["min"] = *m.min;
    if (m.max) mo["max"] = *m.max;
    mo["required"] = m.required;
    if (m.max_rate_hz) mo["max_rate_hz"] = *m.max_rate_hz;
    if (m.expected_interval_s) mo["expected_interval_s"] = *m.expected_interval_s;
    if (!m.description.empty()) mo["description"] = m.description;
    metrics[m.name] = std::move(mo);
  }
  o["metrics"] = std::move(metrics);
  if (c.decoder != DecoderSpec{}) {
    json::object d;
    d["format"] = to_string(c.decoder.kind);
    if (!c.decoder.time_pointer.empty()) d["time"] = c.decoder.time_pointer;
    if (!c.decoder.records_pointer.empty()) d["records"] = c.decoder.records_pointer;
    if (!c.decoder.fields.empty()) {
      json::object fields;
      for (const auto& f : c.decoder.fields) {
        json::object fo;
        fo["pointer"] = f.pointer;
        if (f.scale != 1) fo["scale"] = f.scale;
        if (f.offset != 0) fo["offset"] = f.offset;
        if (!f.unit.empty()) fo["unit"] = f.unit;
        fields[f.metric] = std::move(fo);
      }
      d["fields"] = std::move(fields);
    }
    o["decoder"] = std::move(d);
  }
  return json::serialize(o);
}

const char* to_string(DecoderSpec::Kind k) {
  switch (k) {
    case DecoderSpec::Kind::json: return "json";
    case DecoderSpec::Kind::senml: return "senml";
    case DecoderSpec::Kind::mapping: return "mapping";
  }
  return "?";
}

// ---- Differences ----------------------------------------------------------------------------

std::vector<ContractChange> diff_contracts(const Contract& from, const Contract& to) {
  std::vector<ContractChange> out;
  auto add = [&out](std::string field, std::string detail, bool breaking) { out.push_back({std::move(field), std::move(detail), breaking}); };
  if (from.description != to.description) add("description", "changed", false);
  for (const auto& t : to.required_tags) {
    if (!std::binary_search(from.required_tags.begin(), from.required_tags.end(), t)) add("required_tags", "added '" + t + "'", true);
  }
  for (const auto& t : from.required_tags) {
    if (!std::binary_search(to.required_tags.begin(), to.required_tags.end(), t)) add("required_tags", "removed '" + t + "'", false);
  }
  for (const auto& m : from.metrics) {
    if (!to.metric(m.name)) add("metrics." + m.name, std::string("removed (was ") + (m.required ? "required" : "optional") + ")", m.required);
  }
  for (const auto& n : to.metrics) {
    const MetricSpec* o = from.metric(n.name);
    const std::string f = "metrics." + n.name;
    if (!o) {
      add(f, std::string("added (") + (n.required ? "required" : "optional") + ")", n.required);
      continue;
    }
    if (o->type != n.type) add(f + ".type", std::string(to_string(o->type)) + " -> " + to_string(n.type), true);
    if (o->unit != n.unit) add(f + ".unit", "'" + o->unit + "' -> '" + n.unit + "'", true);
    if (o->min != n.min) {
      // Widening: the new lower bound is absent or lower.
      bool narrower = n.min && (!o->min || *n.min > *o->min);
      add(f + ".min", show(o->min) + " -> " + show(n.min), narrower);
    }
    if (o->max != n.max) {
      bool narrower = n.max && (!o->max || *n.max < *o->max);
      add(f + ".max", show(o->max) + " -> " + show(n.max), narrower);
    }
    if (o->required != n.required) add(f + ".required", o->required ? "required -> optional" : "optional -> required", n.required);
    if (o->max_rate_hz != n.max_rate_hz) {
      bool lower = n.max_rate_hz && (!o->max_rate_hz || *n.max_rate_hz < *o->max_rate_hz);
      add(f + ".max_rate_hz", show(o->max_rate_hz) + " -> " + show(n.max_rate_hz), lower);
    }
    if (o->expected_interval_s != n.expected_interval_s) {
      add(f + ".expected_interval_s", show(o->expected_interval_s) + " -> " + show(n.expected_interval_s), false);
    }
    if (o->description != n.description) add(f + ".description", "changed", false);
  }
  // How payloads are read changes no promise about the values: compatible, but listed (a
  // reprocess or replay may be due).
  if (from.decoder.kind != to.decoder.kind) {
    add("decoder.format", std::string(to_string(from.decoder.kind)) + " -> " + to_string(to.decoder.kind), false);
  } else if (from.decoder != to.decoder) {
    add("decoder", "changed", false);
  }
  return out;
}

bool any_breaking(const std::vector<ContractChange>& changes) {
  return std::any_of(changes.begin(), changes.end(), [](const ContractChange& c) { return c.breaking; });
}

}  // namespace fieldline::ingest
