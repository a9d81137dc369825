#include "fieldline/analytics/detector_document.h"

#include <toml++/toml.h>

#include <algorithm>

#include "fieldline/core/errc.h"
#include "fieldline/core/toml_document.h"

namespace fieldline::analytics {

namespace {

Error bad(const toml::node& at, const std::string& key, const std::string& what) { return core::document_error(at, key, what); }

// Reads the settings of one table into `c` (starting from `c`'s values).
Status read_settings(const toml::table& t, const std::string& where, EnsembleConfig& c, bool allow_enabled) {
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const std::string at = where + "." + k;
    if (k == "detectors") {
      const auto* list = node.as_array();
      if (!list) return bad(node, at, "expected a list of detector names");
      c.members.clear();
      for (const auto& item : *list) {
        const auto* name = item.as_string();
        if (!name) return bad(item, at, "expected detector names as strings");
        const std::string n(name->get());
        const auto& known = detector_names();
        if (std::find(known.begin(), known.end(), n) == known.end()) {
          std::string all;
          for (const auto& x : known) all += (all.empty() ? "" : ", ") + x;
          return bad(item, at, "unknown detector '" + n.substr(0, 40) + "' (" + all + ")");
        }
        if (std::find(c.members.begin(), c.members.end(), n) == c.members.end()) c.members.push_back(n);
      }
    } else if (k == "alarm") {
      auto v = node.value<double>();
      if (!v || !(*v >= 0.05 && *v <= 1.0)) return bad(node, at, "expected a score from 0.05 to 1");
      c.alarm = *v;
    } else if (k == "window" || k == "refractory") {
      auto v = node.value<int64_t>();
      const int64_t lo = k == "window" ? 16 : 0;
      if (!v || *v < lo || *v > 100000) return bad(node, at, "expected a whole number from " + std::to_string(lo) + " to 100000");
      (k == "window" ? c.window : c.refractory) = static_cast<size_t>(*v);
    } else if (k == "enabled" && allow_enabled) {
      if (!node.is_boolean()) return bad(node, at, "expected true or false");
    } else {
      return bad(node, at, std::string("unknown setting (detectors, alarm, window, refractory") + (allow_enabled ? ", enabled)" : ")"));
    }
  }
  return {};
}

Status read_alarm(const toml::table& t, DetectorDocument& doc) {
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const std::string at = "alarm." + k;
    if (k == "severity") {
      auto v = node.value<std::string>();
      auto s = v ? alarms::parse_severity(*v) : Result<alarms::Severity>(core::make_error(core::Errc::invalid_argument, ""));
      if (!s) return bad(node, at, "expected info, warning, minor, major or critical");
      doc.severity = *s;
    } else if (k == "runbook") {
      auto v = node.value<std::string>();
      if (!v || v->size() > 4096) return bad(node, at, "expected text or a link (at most 4096 bytes)");
      doc.runbook = *v;
    } else if (k == "clear_after") {
      auto v = node.value<int64_t>();
      if (!v || *v < 1 || *v > 100000) return bad(node, at, "expected a whole number from 1 to 100000");
      doc.clear_after = static_cast<size_t>(*v);
    } else {
      return bad(node, at, "unknown setting (severity, runbook, clear_after)");
    }
  }
  return {};
}

Status read_multivariate(const toml::table& t, DetectorDocument& doc) {
  DetectorDocument::Multivariate mv;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const std::string at = "multivariate." + k;
    if (k == "metrics") {
      const auto* list = node.as_array();
      if (!list) return bad(node, at, "expected a list of metric names");
      for (const auto& item : *list) {
        auto name = item.value<std::string>();
        if (!name || name->empty()) return bad(item, at, "expected metric names as strings");
        if (std::find(mv.metrics.begin(), mv.metrics.end(), *name) != mv.metrics.end()) {
          return bad(item, at, "'" + name->substr(0, 40) + "' is listed twice");
        }
        mv.metrics.push_back(*name);
      }
      if (mv.metrics.size() < 2 || mv.metrics.size() > 64) return bad(node, at, "expected 2 to 64 metrics");
    } else if (k == "reference" || k == "persistence" || k == "window") {
      const int64_t most = k == "reference" ? 100000 : 1000, least = k == "reference" ? 10 : 1;
      auto v = node.value<int64_t>();
      if (!v || *v < least || *v > most) {
        return bad(node, at, "expected a whole number of rows from " + std::to_string(least) + " to " + std::to_string(most));
      }
      (k == "reference" ? mv.reference : k == "persistence" ? mv.persistence : mv.window) = static_cast<size_t>(*v);
    } else if (k == "limit") {
      auto v = node.value<double>();
      if (!v || !(*v >= 0.5 && *v <= 0.9999)) return bad(node, at, "expected a quantile of the reference from 0.5 to 0.9999");
      mv.limit = *v;
    } else {
      return bad(node, at, "unknown setting (metrics, reference, persistence, window, limit)");
    }
  }
  if (mv.window != 0 && mv.window < mv.persistence) {
    return bad(t, "multivariate.window", "is shorter than persistence (" + std::to_string(mv.persistence) + " rows)");
  }
  if (mv.metrics.empty()) return bad(t, "multivariate.metrics", "missing: the metrics the detector watches together");
  if (mv.reference < mv.metrics.size() + 2) {
    return bad(t, "multivariate.reference", "needs at least " + std::to_string(mv.metrics.size() + 2) + " rows for " +
                                                std::to_string(mv.metrics.size()) + " metrics");
  }
  doc.multivariate = std::move(mv);
  return {};
}

Status read_rule(const toml::table& t, DetectorDocument& doc) {
  std::string name, when, clear, severity = "warning", runbook;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    auto v = node.value<std::string>();
    if (k != "name" && k != "when" && k != "clear" && k != "severity" && k != "runbook") {
      return bad(node, "rules." + k, "unknown setting (name, when, clear, severity, runbook)");
    }
    if (!v) return bad(node, "rules." + k, "expected a string");
    (k == "name" ? name : k == "when" ? when : k == "clear" ? clear : k == "severity" ? severity : runbook) = *v;
  }
  if (name.empty() || name.size() > 64) return bad(t, "rules.name", "expected a name of 1-64 characters");
  for (const auto& r : doc.rules) {
    if (r.rule.name == name) return bad(t, "rules.name", "'" + name + "' is defined twice");
  }
  if (when.empty()) return bad(t, "rules." + name + ".when", "missing: the condition that fires the rule");
  if (!alarms::parse_severity(severity)) return bad(t, "rules." + name + ".severity", "expected info, warning, minor, major or critical");
  auto rule = rules::make_rule(name, when, clear, severity);
  if (!rule) return bad(t, "rules." + name, rule.error().message());
  doc.rules.push_back({std::move(*rule), std::move(runbook)});
  return {};
}

}  // namespace

std::optional<EnsembleConfig> DetectorDocument::for_metric(std::string_view metric) const {
  auto it = metrics.find(metric);
  return it == metrics.end() ? std::optional<EnsembleConfig>(defaults) : it->second;
}

Result<DetectorDocument> parse_detector_document(std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return core::make_error(core::Errc::invalid_argument, "line " + std::to_string(e.source().begin.line) + ", column " +
                                                              std::to_string(e.source().begin.column) + ": " +
                                                              std::string(e.description()));
  }
  DetectorDocument doc;
  for (const auto& [key, node] : root) {
    const std::string k(key.str());
    if (k == "profile") {
      auto v = node.value<std::string>();
      if (!v || v->empty()) return bad(node, k, "expected the profile's name");
      doc.profile = *v;
    } else if (k == "defaults") {
      const auto* t = node.as_table();
      if (!t) return bad(node, k, "expected a table");
      FL_TRY_STATUS(read_settings(*t, k, doc.defaults, false));
    } else if (k == "alarm") {
      const auto* t = node.as_table();
      if (!t) return bad(node, k, "expected a table");
      FL_TRY_STATUS(read_alarm(*t, doc));
    } else if (k == "multivariate") {
      const auto* t = node.as_table();
      if (!t) return bad(node, k, "expected a table");
      FL_TRY_STATUS(read_multivariate(*t, doc));
    } else if (k == "rules") {
      const auto* list = node.as_array();
      if (!list) return bad(node, k, "expected [[rules]] entries");
      for (const auto& item : *list) {
        const auto* t = item.as_table();
        if (!t) return bad(item, k, "expected [[rules]] entries");
        FL_TRY_STATUS(read_rule(*t, doc));
      }
    } else if (k != "metrics") {
      return bad(node, k, "unknown key (profile, defaults, metrics, alarm, multivariate, rules)");
    }
  }
  if (const auto* metrics = root["metrics"].as_table()) {
    for (const auto& [name, node] : *metrics) {
      const std::string at = "metrics." + std::string(name.str());
      const auto* t = node.as_table();
      if (!t) return bad(node, at, "expected a table of settings");
      auto enabled = (*t)["enabled"].value<bool>();
      EnsembleConfig c = doc.defaults;  // a metric's settings start from the defaults
      FL_TRY_STATUS(read_settings(*t, at, c, true));
      doc.metrics.emplace(std::string(name.str()), enabled.value_or(true) ? std::optional<EnsembleConfig>(c) : std::nullopt);
    }
  } else if (root.contains("metrics")) {
    return bad(*root.get("metrics"), "metrics", "expected a table of metrics");
  }
  return doc;
}

}  // namespace fieldline::analytics
