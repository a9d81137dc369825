#include "fieldline/ml/feature_view.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "fieldline/core/errc.h"
#include "fieldline/core/toml_document.h"
#include "fieldline/core/time.h"

namespace fieldline::ml {

namespace {

Error bad(const toml::node& at, const std::string& key, const std::string& what) { return core::document_error(at, key, what); }

bool valid_name(std::string_view s) { return core::valid_document_name(s); }

Result<std::string> name_at(const toml::node& node, const std::string& key) {
  auto v = node.value<std::string>();
  if (!v || !valid_name(*v)) return bad(node, key, "expected a name (letters, digits, _ . -; at most 128)");
  return *v;
}

// A window or half-life: a duration from one second to 400 days.
Result<int64_t> duration_at(const toml::node& node, const std::string& key, std::string& written) {
  auto v = node.value<std::string>();
  if (!v) return bad(node, key, "expected a duration such as \"10m\", \"1h\" or \"24h\"");
  auto ns = core::parse_duration(*v);
  if (!ns || *ns < 1'000'000'000LL || *ns > 400LL * 86'400'000'000'000LL) {
    return bad(node, key, "'" + v->substr(0, 40) + "' is not a duration from 1s to 400d");
  }
  written = *v;
  return *ns;
}

Result<AggregateSpec> aggregate_at(const toml::node& node, const std::string& key) {
  auto v = node.value<std::string>();
  const std::string known = "mean, std, min, max, slope, count, p1 to p99";
  if (!v) return bad(node, key, "expected aggregate names (" + known + ")");
  AggregateSpec a;
  a.name = *v;
  if (*v == "mean") a.kind = Aggregate::mean;
  else if (*v == "std") a.kind = Aggregate::std;
  else if (*v == "min") a.kind = Aggregate::min;
  else if (*v == "max") a.kind = Aggregate::max;
  else if (*v == "slope") a.kind = Aggregate::slope;
  else if (*v == "count") a.kind = Aggregate::count;
  else if (v->size() >= 2 && v->size() <= 3 && (*v)[0] == 'p' &&
           std::all_of(v->begin() + 1, v->end(), [](char c) { return c >= '0' && c <= '9'; }) && std::stoi(v->substr(1)) >= 1 &&
           std::stoi(v->substr(1)) <= 99) {
    a.kind = Aggregate::percentile;
    a.quantile = std::stoi(v->substr(1)) / 100.0;
  } else {
    return bad(node, key, "unknown aggregate '" + v->substr(0, 40) + "' (" + known + ")");
  }
  return a;
}

Result<MetricFeatures> read_metric(const toml::table& t, const std::string& where) {
  MetricFeatures m;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const std::string at = where + "." + k;
    if (k == "metric") {
      FL_TRY(name, name_at(node, at));
      m.metric = std::move(name);
    } else if (k == "windows" || k == "aggregates") {
      const auto* list = node.as_array();
      if (!list || list->empty()) return bad(node, at, "expected a non-empty list");
      for (const auto& item : *list) {
        if (k == "windows") {
          std::string written;
          FL_TRY(ns, duration_at(item, at, written));
          if (std::find(m.windows_ns.begin(), m.windows_ns.end(), ns) != m.windows_ns.end()) return bad(item, at, "'" + written + "' is listed twice");
          m.windows_ns.push_back(ns);
          m.window_names.push_back(written);
        } else {
          FL_TRY(a, aggregate_at(item, at));
          if (std::any_of(m.aggregates.begin(), m.aggregates.end(), [&](const AggregateSpec& x) { return x.name == a.name; })) {
            return bad(item, at, "'" + a.name + "' is listed twice");
          }
          m.aggregates.push_back(std::move(a));
        }
      }
    } else if (k == "last") {
      auto v = node.value<bool>();
      if (!v) return bad(node, at, "expected true or false");
      m.last = *v;
    } else if (k == "ewma") {
      FL_TRY(ns, duration_at(node, at, m.ewma_name));
      m.ewma_half_life_ns = ns;
    } else {
      return bad(node, at, "unknown setting (metric, windows, aggregates, last, ewma)");
    }
  }
  if (m.metric.empty()) return bad(t, where + ".metric", "missing");
  if (m.windows_ns.empty() != m.aggregates.empty()) {
    return bad(t, where, m.windows_ns.empty() ? "aggregates need windows" : "windows need aggregates");
  }
  if (m.windows_ns.empty() && !m.last && m.ewma_half_life_ns == 0) return bad(t, where, "no features (windows and aggregates, last or ewma)");
  return m;
}

}  // namespace

std::vector<std::string> FeatureView::feature_names() const {
  std::vector<std::string> out;
  for (const auto& m : metrics) {
    for (size_t w = 0; w < m.windows_ns.size(); ++w) {
      for (const auto& a : m.aggregates) out.push_back(m.metric + "_" + a.name + "_" + m.window_names[w]);
    }
    if (m.last) out.push_back(m.metric + "_last");
    if (m.ewma_half_life_ns) out.push_back(m.metric + "_ewma_" + m.ewma_name);
  }
  for (const auto& r : ratios) out.push_back(r.name);
  for (const auto& e : since) out.push_back("since_" + e + "_s");
  return out;
}

std::vector<std::string> FeatureView::inputs() const {
  std::vector<std::string> out;
  auto add = [&](const std::string& m) {
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  };
  for (const auto& m : metrics) add(m.metric);
  for (const auto& r : ratios) {
    add(r.numerator);
    add(r.denominator);
  }
  for (const auto& e : since) add(e);
  return out;
}

int64_t FeatureView::memory_ns(std::string_view metric) const {
  int64_t memory = 0;
  for (const auto& m : metrics) {
    if (m.metric != metric) continue;
    for (int64_t w : m.windows_ns) memory = std::max(memory, w);
    if (m.ewma_half_life_ns > 0) memory = std::max(memory, m.ewma_half_life_ns > INT64_MAX / 20 ? INT64_MAX : 20 * m.ewma_half_life_ns);
  }
  return memory;
}

Result<FeatureView> parse_feature_view(std::string_view text) {
  toml::table doc;
  try {
    doc = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return core::make_error(core::Errc::invalid_argument, "line " + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  FeatureView v;
  for (const auto& [key, node] : doc) {
    const std::string k(key.str());
    if (k == "view" || k == "profile") {
      FL_TRY(name, name_at(node, k));
      (k == "view" ? v.name : v.profile) = std::move(name);
    } else if (k == "metrics") {
      const auto* list = node.as_array();
      if (!list) return bad(node, k, "expected [[metrics]] tables");
      for (size_t i = 0; i < list->size(); ++i) {
        const auto* t = (*list)[i].as_table();
        const std::string where = "metrics[" + std::to_string(i) + "]";
        if (!t) return bad((*list)[i], where, "expected a table");
        FL_TRY(m, read_metric(*t, where));
        if (std::any_of(v.metrics.begin(), v.metrics.end(), [&](const MetricFeatures& x) { return x.metric == m.metric; })) {
          return bad(*t, where + ".metric", "'" + m.metric + "' has features already; list them in one table");
        }
        v.metrics.push_back(std::move(m));
      }
    } else if (k == "ratios") {
      const auto* list = node.as_array();
      if (!list) return bad(node, k, "expected [[ratios]] tables");
      for (size_t i = 0; i < list->size(); ++i) {
        const auto* t = (*list)[i].as_table();
        const std::string where = "ratios[" + std::to_string(i) + "]";
        if (!t) return bad((*list)[i], where, "expected a table");
        Ratio r;
        for (const auto& [rk, rn] : *t) {
          const std::string key2(rk.str());
          if (key2 != "name" && key2 != "numerator" && key2 != "denominator") {
            return bad(rn, where + "." + key2, "unknown setting (name, numerator, denominator)");
          }
          FL_TRY(name, name_at(rn, where + "." + key2));
          (key2 == "name" ? r.name : key2 == "numerator" ? r.numerator : r.denominator) = std::move(name);
        }
        if (r.name.empty() || r.numerator.empty() || r.denominator.empty()) {
          return bad(*t, where, "needs name, numerator and denominator");
        }
        v.ratios.push_back(std::move(r));
      }
    } else if (k == "since") {
      const auto* t = node.as_table();
      if (!t) return bad(node, k, "expected a table with events = [...]");
      for (const auto& [sk, sn] : *t) {
        if (sk.str() != "events") return bad(sn, "since." + std::string(sk.str()), "unknown setting (events)");
        const auto* list = sn.as_array();
        if (!list) return bad(sn, "since.events", "expected a list of event metrics");
        for (const auto& item : *list) {
          FL_TRY(name, name_at(item, "since.events"));
          if (std::find(v.since.begin(), v.since.end(), name) == v.since.end()) v.since.push_back(std::move(name));
        }
      }
    } else {
      return bad(node, k, "unknown key (view, profile, metrics, ratios, since)");
    }
  }
  if (v.name.empty()) return core::make_error(core::Errc::invalid_argument, "view: missing (the feature view's name)");
  if (v.metrics.empty() && v.ratios.empty() && v.since.empty()) {
    return core::make_error(core::Errc::invalid_argument, "metrics: the view has no features");
  }
  auto names = v.feature_names();
  std::set<std::string> seen;
  for (const auto& n : names) {
    if (!seen.insert(n).second) return core::make_error(core::Errc::invalid_argument, "feature '" + n + "' is defined twice");
  }
  return v;
}

}  // namespace fieldline::ml
