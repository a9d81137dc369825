#include "fieldline/tsdb/query.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {

Result<Matcher> Matcher::make(std::string label, Op op, std::string value) {
  Matcher m{std::move(label), op, std::move(value), nullptr};
  if (op == Op::re || op == Op::nre) {
    try {
      m.regex = std::make_shared<const std::regex>(m.value, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      return make_error(Errc::invalid_query, "bad regular expression '" + m.value + "': " + e.what());
    }
  }
  return m;
}

bool Matcher::matches(SeriesLabels key) const {
  const std::string* v = key.label(label);
  static const std::string kEmpty;
  const std::string& actual = v ? *v : kEmpty;
  switch (op) {
    case Op::eq: return actual == value;
    case Op::neq: return actual != value;
    case Op::re: return std::regex_match(actual, *regex);
    case Op::nre: return !std::regex_match(actual, *regex);
  }
  return false;
}

bool Selector::matches(SeriesLabels key) const {
  return std::all_of(matchers.begin(), matchers.end(), [&](const Matcher& m) { return m.matches(key); });
}

const std::string* Selector::pinned_device() const {
  for (const auto& m : matchers) {
    if (m.label == "device" && m.op == Matcher::Op::eq) return &m.value;
  }
  return nullptr;
}

Result<Selector> Selector::parse(std::string_view text) {
  Selector sel;
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  auto brace = text.find('{');
  std::string_view head = trim(text.substr(0, brace));
  if (!head.empty()) {
    auto slash = head.find('/');
    if (slash != std::string_view::npos) {
      FL_TRY(d, Matcher::make("device", Matcher::Op::eq, std::string(head.substr(0, slash))));
      sel.matchers.push_back(std::move(d));
      head = head.substr(slash + 1);
    }
    if (!head.empty()) {
      FL_TRY(m, Matcher::make("metric", Matcher::Op::eq, std::string(head)));
      sel.matchers.push_back(std::move(m));
    }
  }
  if (brace == std::string_view::npos) return sel;
  if (text.back() != '}') return make_error(Errc::invalid_query, "selector: missing '}'");
  std::string_view body = text.substr(brace + 1, text.size() - brace - 2);
  size_t pos = 0;
  while (pos < body.size()) {
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == ',')) ++pos;
    if (pos >= body.size()) break;
    size_t name_end = body.find_first_of("=!", pos);
    if (name_end == std::string_view::npos) {
      return make_error(Errc::invalid_query, "selector: expected an operator after '" + std::string(body.substr(pos)) + "'");
    }
    std::string label(trim(body.substr(pos, name_end - pos)));
    Matcher::Op op;
    if (body.substr(name_end, 2) == "=~") { op = Matcher::Op::re; pos = name_end + 2; }
    else if (body.substr(name_end, 2) == "!~") { op = Matcher::Op::nre; pos = name_end + 2; }
    else if (body.substr(name_end, 2) == "!=") { op = Matcher::Op::neq; pos = name_end + 2; }
    else if (body[name_end] == '=') { op = Matcher::Op::eq; pos = name_end + 1; }
    else return make_error(Errc::invalid_query, "selector: bad operator at offset " + std::to_string(name_end));
    while (pos < body.size() && body[pos] == ' ') ++pos;
    std::string value;
    if (pos < body.size() && body[pos] == '"') {
      ++pos;
      while (pos < body.size() && body[pos] != '"') {
        if (body[pos] == '\\' && pos + 1 < body.size()) ++pos;
        value.push_back(body[pos++]);
      }
      if (pos >= body.size()) return make_error(Errc::invalid_query, "selector: unterminated string for '" + label + "'");
      ++pos;
    } else {
      size_t end = body.find(',', pos);
      value = std::string(trim(body.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos)));
      pos = end == std::string_view::npos ? body.size() : end;
    }
    if (label.empty()) return make_error(Errc::invalid_query, "selector: empty label name");
    FL_TRY(m, Matcher::make(std::move(label), op, std::move(value)));
    sel.matchers.push_back(std::move(m));
  }
  return sel;
}

Result<Agg> parse_agg(std::string_view n) {
  static const std::pair<const char*, Agg> kNames[] = {
      {"none", Agg::none}, {"raw", Agg::none}, {"avg", Agg::avg}, {"mean", Agg::avg}, {"min", Agg::min},
      {"max", Agg::max}, {"sum", Agg::sum}, {"count", Agg::count}, {"first", Agg::first}, {"last", Agg::last},
      {"stddev", Agg::stddev}, {"p50", Agg::p50}, {"median", Agg::p50}, {"p90", Agg::p90}, {"p99", Agg::p99}};
  for (const auto& [name, agg] : kNames) {
    if (n == name) return agg;
  }
  return make_error(Errc::invalid_query, "unknown aggregate '" + std::string(n) +
                                             "' (use avg, min, max, sum, count, first, last, stddev, p50, p90, p99)");
}

const char* to_string(Agg a) {
  switch (a) {
    case Agg::none: return "none";
    case Agg::avg: return "avg";
    case Agg::min: return "min";
    case Agg::max: return "max";
    case Agg::sum: return "sum";
    case Agg::count: return "count";
    case Agg::first: return "first";
    case Agg::last: return "last";
    case Agg::stddev: return "stddev";
    case Agg::p50: return "p50";
    case Agg::p90: return "p90";
    case Agg::p99: return "p99";
  }
  return "?";
}

namespace {
constexpr double kAccuracy = 0.01;
const double kGamma = (1 + kAccuracy) / (1 - kAccuracy);
const double kLogGamma = std::log(kGamma);
constexpr double kMinIndexable = 1e-300;
}  // namespace

void QuantileSketch::add(double v, uint64_t n) {
  if (std::isnan(v)) return;
  count_ += n;
  double a = std::fabs(v);
  if (a < kMinIndexable) {
    zeros_ += n;
    return;
  }
  int idx = static_cast<int>(std::ceil(std::log(a) / kLogGamma));
  (v > 0 ? positive_ : negative_)[idx] += n;
}

void QuantileSketch::merge(const QuantileSketch& o) {
  for (const auto& [k, n] : o.positive_) positive_[k] += n;
  for (const auto& [k, n] : o.negative_) negative_[k] += n;
  zeros_ += o.zeros_;
  count_ += o.count_;
}

double QuantileSketch::quantile(double q) const {
  if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
  auto rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1));
  uint64_t seen = 0;
  auto value_of = [](int idx) { return 2 * std::pow(kGamma, idx) / (kGamma + 1); };
  for (auto it = negative_.rbegin(); it != negative_.rend(); ++it) {
    seen += it->second;
    if (seen > rank) return -value_of(it->first);
  }
  seen += zeros_;
  if (seen > rank) return 0;
  for (const auto& [k, n] : positive_) {
    seen += n;
    if (seen > rank) return value_of(k);
  }
  return positive_.empty() ? 0 : value_of(positive_.rbegin()->first);
}

void AggState::add_to_sketch(double v) {
  if (!sketch) sketch = std::make_unique<QuantileSketch>();
  sketch->add(v);
}

void AggState::add_rollup(int64_t ts, double mn, double mx, double sm, uint64_t n) {
  if (n == 0) return;
  // The variance within a rollup is unknown: it counts as n samples at its mean, added to
  // the shifted sums directly (a long-range query adds millions of rollup points).
  const double weight = static_cast<double>(n), mean = sm / weight;
  observe(ts, mn, mx, mean);
  count += n;
  sum += sm;
  const double d = mean - shift;
  dsum += weight * d;
  dsum2 += weight * d * d;
}

void AggState::merge(const AggState& o) {
  if (o.count == 0) return;
  if (count == 0) {
    count = o.count;
    sum = o.sum;
    min = o.min;
    max = o.max;
    shift = o.shift;
    dsum = o.dsum;
    dsum2 = o.dsum2;
    first_ts = o.first_ts;
    first = o.first;
    last_ts = o.last_ts;
    last = o.last;
    if (o.sketch) sketch = std::make_unique<QuantileSketch>(*o.sketch);
    return;
  }
  // Chan et al.: combine (n, mean, M2) of both sides.
  double n1 = static_cast<double>(count), n2 = static_cast<double>(o.count);
  double mean1 = shift + dsum / n1, mean2 = o.shift + o.dsum / n2;
  double m2a = std::max(0.0, dsum2 - dsum * dsum / n1), m2b = std::max(0.0, o.dsum2 - o.dsum * o.dsum / n2);
  double delta = mean2 - mean1;
  double mean = (mean1 * n1 + mean2 * n2) / (n1 + n2);
  double m2 = m2a + m2b + delta * delta * n1 * n2 / (n1 + n2);
  shift = mean;
  dsum = 0;
  dsum2 = m2;
  count += o.count;
  sum += o.sum;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  if (o.first_ts < first_ts) {
    first_ts = o.first_ts;
    first = o.first;
  }
  if (o.last_ts >= last_ts) {
    last_ts = o.last_ts;
    last = o.last;
  }
  if (o.sketch) {
    if (!sketch) sketch = std::make_unique<QuantileSketch>();
    sketch->merge(*o.sketch);
  }
}

double AggState::result(Agg agg) const {
  switch (agg) {
    case Agg::avg: return count ? sum / static_cast<double>(count) : std::nan("");
    case Agg::min: return min;
    case Agg::max: return max;
    case Agg::sum: return sum;
    case Agg::count: return static_cast<double>(count);
    case Agg::first: return first;
    case Agg::last: return last;
    case Agg::stddev: {
      if (count < 2) return 0.0;
      double n = static_cast<double>(count);
      return std::sqrt(std::max(0.0, dsum2 - dsum * dsum / n) / n);
    }
    case Agg::p50: return sketch ? sketch->quantile(0.5) : std::nan("");
    case Agg::p90: return sketch ? sketch->quantile(0.9) : std::nan("");
    case Agg::p99: return sketch ? sketch->quantile(0.99) : std::nan("");
    case Agg::none: return std::nan("");
  }
  return std::nan("");
}

void AggregateResult::merge(AggregateResult&& other) {
  samples_read += other.samples_read;
  rollup_points_read += other.rollup_points_read;
  for (auto& [key, group] : other.groups) {
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) {
      it->second = std::move(group);
      continue;
    }
    for (auto& [ts, state] : group.buckets) it->second.buckets[ts].merge(state);
  }
}

std::vector<std::pair<std::string, std::string>> group_labels(SeriesLabels key,
                                                              const std::vector<std::string>& group_by) {
  std::vector<std::pair<std::string, std::string>> out;
  if (group_by.empty()) {
    out.emplace_back("device", *key.device);
    out.emplace_back("metric", *key.metric);
    for (const auto& t : *key.tags) out.push_back(t);
    return out;
  }
  for (const auto& name : group_by) {
    const std::string* v = key.label(name);
    out.emplace_back(name, v ? *v : std::string());
  }
  return out;
}

}  // namespace fieldline::tsdb
