#include <charconv>
#include <cmath>

#include "fieldline/core/ids.h"
#include "fieldline/ingest/decode.h"
#include "decode_internal.h"

namespace fieldline::ingest {
namespace {

struct Cursor {
  std::string_view line;
  size_t pos = 0;
  size_t line_no = 0;
  Error error(const std::string& what) const {
    return make_error(Errc::bad_payload, "line " + std::to_string(line_no) + ", column " + std::to_string(pos + 1) + ": " + what);
  }
};

// Reads up to an unescaped delimiter; backslash escapes the next character.
std::string read_token(Cursor& c, std::string_view delims) {
  std::string out;
  while (c.pos < c.line.size()) {
    char ch = c.line[c.pos];
    if (ch == '\\' && c.pos + 1 < c.line.size()) {
      out.push_back(c.line[c.pos + 1]);
      c.pos += 2;
      continue;
    }
    if (delims.find(ch) != std::string_view::npos) break;
    out.push_back(ch);
    ++c.pos;
  }
  return out;
}

Result<tsdb::Value> read_field_value(Cursor& c, const DecodeLimits& limits) {
  if (c.pos >= c.line.size()) return c.error("missing field value");
  if (c.line[c.pos] == '"') {
    ++c.pos;
    std::string s;
    while (c.pos < c.line.size() && c.line[c.pos] != '"') {
      if (c.line[c.pos] == '\\' && c.pos + 1 < c.line.size()) ++c.pos;
      s.push_back(c.line[c.pos++]);
    }
    if (c.pos >= c.line.size()) return c.error("unterminated string");
    ++c.pos;
    if (s.size() > limits.max_string_bytes) return c.error("string field too long");
    return tsdb::Value(std::move(s));
  }
  size_t start = c.pos;
  while (c.pos < c.line.size() && c.line[c.pos] != ',' && c.line[c.pos] != ' ') ++c.pos;
  std::string_view tok = c.line.substr(start, c.pos - start);
  if (tok.empty()) return c.error("missing field value");
  if (tok == "t" || tok == "T" || tok == "true" || tok == "True" || tok == "TRUE") return tsdb::Value(true);
  if (tok == "f" || tok == "F" || tok == "false" || tok == "False" || tok == "FALSE") return tsdb::Value(false);
  char last = tok.back();
  if (last == 'i' || last == 'u') {
    int64_t v = 0;
    auto digits = tok.substr(0, tok.size() - 1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || p != digits.data() + digits.size() || (last == 'u' && v < 0)) {
      c.pos = start;
      return c.error("bad integer '" + std::string(tok) + "'");
    }
    return tsdb::Value(static_cast<double>(v));  // stored as float: a metric keeps one type
  }
  double d = 0;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), d);
  if (ec != std::errc() || p != tok.data() + tok.size()) {
    c.pos = start;
    return c.error("bad field value '" + std::string(tok) + "'");
  }
  if (!std::isfinite(d)) {
    c.pos = start;
    return c.error("number is not finite");
  }
  return tsdb::Value(d);
}

}  // namespace

Result<std::vector<Point>> decode_line_protocol(std::string_view body, core::EpochUnit precision, int64_t receipt_ns,
                                                const DecodeLimits& limits, std::vector<std::pair<uint32_t, uint32_t>>* lines) {
  std::vector<Point> out;
  size_t line_no = 0;
  size_t start = 0;
  while (start < body.size()) {
    size_t nl = body.find('\n', start);
    const size_t line_begin = start;
    std::string_view line = body.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? body.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    Cursor c{line, first, line_no};
    std::string measurement = read_token(c, ", ");
    if (measurement.empty()) return c.error("missing measurement");
    std::vector<std::pair<std::string, std::string>> tags;
    while (c.pos < line.size() && line[c.pos] == ',') {
      ++c.pos;
      std::string key = read_token(c, "=, ");
      if (c.pos >= line.size() || line[c.pos] != '=') return c.error("expected '=' after tag key '" + key + "'");
      ++c.pos;
      std::string value = read_token(c, ", ");
      if (key.empty() || value.empty()) return c.error("empty tag key or value");
      if (auto st = core::validate_metric_name(key); !st) return make_error(Errc::bad_metric, "line " + std::to_string(line_no) + ": tag " + st.error().context());
      tags.emplace_back(std::move(key), std::move(value));
    }
    if (c.pos >= line.size() || line[c.pos] != ' ') return c.error("expected a space before the fields");
    while (c.pos < line.size() && line[c.pos] == ' ') ++c.pos;
    std::vector<std::pair<std::string, tsdb::Value>> fields;
    for (;;) {
      std::string key = read_token(c, "=, ");
      if (key.empty()) return c.error("empty field key");
      if (c.pos >= line.size() || line[c.pos] != '=') return c.error("expected '=' after field key '" + key + "'");
      ++c.pos;
      FL_TRY(value, read_field_value(c, limits));
      fields.emplace_back(std::move(key), std::move(value));
      if (c.pos < line.size() && line[c.pos] == ',') {
        ++c.pos;
        continue;
      }
      break;
    }
    int64_t ts = receipt_ns;
    while (c.pos < line.size() && line[c.pos] == ' ') ++c.pos;
    if (c.pos < line.size()) {
      std::string_view tok = line.substr(c.pos);
      while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
      int64_t raw = 0;
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), raw);
      if (ec != std::errc() || p != tok.data() + tok.size()) return c.error("bad timestamp '" + std::string(tok) + "'");
      auto t = core::epoch_to_ns(raw, precision);
      if (!t) return c.error(t.error().context());
      ts = *t;
    }
    for (auto& [key, value] : fields) {
      std::string metric = key == "value" ? measurement : measurement + "_" + key;
      if (auto st = core::validate_metric_name(metric); !st) {
        return make_error(Errc::bad_metric, "line " + std::to_string(line_no) + ": " + st.error().context());
      }
      if (out.size() >= limits.max_values) {
        return detail::too_many_values(limits.max_values, "request");
      }
      out.push_back(Point{std::move(metric), ts, std::move(value), tags, {}});
      if (lines) lines->emplace_back(static_cast<uint32_t>(line_begin), static_cast<uint32_t>(start));
    }
  }
  if (out.empty()) return make_error(Errc::bad_payload, "no lines");
  return out;
}

}  // namespace fieldline::ingest
