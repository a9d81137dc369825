#include "fieldline/ops/metrics.h"

#include <cmath>
#include <cstdio>

namespace fieldline::ops {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<uint64_t>(std::llround(std::max(v, 0.0) * 1e6)), std::memory_order_relaxed);
}

double Histogram::quantile(double q) const {
  uint64_t total = count();
  if (total == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    seen += bucket(i);
    if (seen >= rank) return bounds_[i];
  }
  return INFINITY;
}

std::vector<double> Metrics::latency_bounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string format_labels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

Counter& Metrics::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "counter";
  auto& c = f.counters[labels];
  if (!c) c = std::make_unique<Counter>();
  return *c;
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "gauge";
  auto& g = f.gauges[labels];
  if (!g) g = std::make_unique<Gauge>();
  return *g;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help, const Labels& labels,
                              std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "histogram";
  auto& h = f.histograms[labels];
  if (!h) h = std::make_unique<Histogram>(std::move(bounds));
  return *h;
}

void Metrics::add_collector(std::function<void(std::string&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  char num[64];
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) out += name + format_labels(labels) + " " + std::to_string(c->value()) + "\n";
    for (const auto& [labels, g] : f.gauges) out += name + format_labels(labels) + " " + std::to_string(g->value()) + "\n";
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cum = 0;
      for (size_t i = 0; i <= h->bounds().size(); ++i) {
        cum += h->bucket(i);
        Labels l = labels;
        if (i < h->bounds().size()) {
          std::snprintf(num, sizeof num, "%g", h->bounds()[i]);
          l.emplace_back("le", num);
        } else {
          l.emplace_back("le", "+Inf");
        }
        out += name + "_bucket" + format_labels(l) + " " + std::to_string(cum) + "\n";
      }
      std::snprintf(num, sizeof num, "%.6f", h->sum());
      out += name + "_sum" + format_labels(labels) + " " + num + "\n";
      out += name + "_count" + format_labels(labels) + " " + std::to_string(h->count()) + "\n";
    }
  }
  for (const auto& c : collectors_) c(out);
  return out;
}

}  // namespace fieldline::ops
