#include "fieldline/analytics/skab.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "fieldline/analytics/nab.h"
#include "fieldline/core/errc.h"

namespace fieldline::analytics::skab {

namespace {

Error bad(const std::string& what) { return core::make_error(core::Errc::invalid_argument, what); }

}  // namespace

Result<Experiment> parse_experiment(std::string_view text, const std::string& path) {
  auto cells = [](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string> out;
    while (true) {
      const size_t semi = line.find(';');
      out.emplace_back(line.substr(0, semi));
      if (semi == std::string_view::npos) break;
      line.remove_prefix(semi + 1);
    }
    return out;
  };
  auto next_line = [&text]() {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    return line;
  };
  auto header = cells(next_line());
  auto anomaly = std::find(header.begin(), header.end(), "anomaly");
  if (header.size() < 3 || header.front() != "datetime" || anomaly == header.end()) {
    return bad(path + ": expected a header datetime;<sensors...>;anomaly[;changepoint]");
  }
  Experiment e;
  const size_t anomaly_col = static_cast<size_t>(anomaly - header.begin());
  const auto changepoint = std::find(header.begin(), header.end(), "changepoint");
  const size_t changepoint_col = changepoint == header.end() ? 0 : static_cast<size_t>(changepoint - header.begin());
  e.metrics.assign(header.begin() + 1, anomaly);
  size_t row = 1;
  while (!text.empty()) {
    ++row;
    std::string_view line = next_line();
    if (line.empty() || line == "\r") continue;
    auto c = cells(line);
    if (c.size() <= anomaly_col) return bad(path + ":" + std::to_string(row) + ": expected " + std::to_string(header.size()) + " columns");
    std::vector<double> values;
    for (size_t j = 1; j < anomaly_col; ++j) {
      char* end = nullptr;
      double v = std::strtod(c[j].c_str(), &end);
      if (end == c[j].c_str()) return bad(path + ":" + std::to_string(row) + ": '" + c[j].substr(0, 40) + "' in " + header[j] + " is not a number");
      values.push_back(v);
    }
    e.rows.push_back(std::move(values));
    e.anomalous.push_back(std::strtod(c[anomaly_col].c_str(), nullptr) >= 0.5);
    if (changepoint_col > 0) e.changepoint.push_back(changepoint_col < c.size() && std::strtod(c[changepoint_col].c_str(), nullptr) >= 0.5);
    auto t = nab::parse_time(c[0]);
    e.times_us.push_back(t ? *t : (e.times_us.empty() ? 0 : e.times_us.back() + 1'000'000));
  }
  return e;
}

Result<Evaluation> evaluate(const std::string& dir, const Options& options) {
  namespace fs = std::filesystem;
  const fs::path data = fs::path(dir) / "data";
  std::error_code ec;
  if (!fs::is_directory(data, ec)) return core::make_error(core::Errc::not_found, data.string() + ": no such folder");
  std::vector<fs::path> files;
  for (const auto& group : fs::directory_iterator(data)) {
    if (!group.is_directory() || group.path().filename() == "anomaly-free") continue;
    for (const auto& f : fs::directory_iterator(group.path())) {
      if (f.path().extension() == ".csv") files.push_back(f.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return bad(data.string() + ": no experiments (data/<group>/*.csv)");
  Evaluation ev;
  std::map<std::string, uint64_t> contributors;
  std::vector<double> changepoint_raw(nab::profiles().size(), 0.0);
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return core::make_error(core::Errc::not_found, "cannot read " + path.string());
    std::stringstream text;
    text << in.rdbuf();
    FL_TRY(e, parse_experiment(text.str(), path.string()));
    if (e.rows.size() <= options.train_rows) continue;
    std::vector<std::vector<double>> reference(e.rows.begin(), e.rows.begin() + static_cast<std::ptrdiff_t>(options.train_rows));
    FL_TRY(monitor, PcaMonitor::fit(reference, options.pca));
    ++ev.files;
    std::deque<bool> recent;
    size_t above = 0;
    std::vector<int64_t> times;
    std::vector<double> predicted;  // 1 at the first row of each alarm
    bool alarming = false;
    for (size_t i = options.train_rows; i < e.rows.size(); ++i) {
      auto s = monitor.observe(e.rows[i]);
      const bool out = s.t2_ratio > 1 || s.q_ratio > 1;
      recent.push_back(out);
      above += out;
      if (recent.size() > options.of) {
        above -= recent.front();
        recent.pop_front();
      }
      const bool alarm = above >= options.confirm;
      times.push_back(e.times_us[i]);
      predicted.push_back(alarm && !alarming ? 1.0 : 0.0);
      alarming = alarm;
      const bool truth = e.anomalous[i];
      ++ev.rows;
      if (alarm && truth) {
        ++ev.tp;
        auto top = std::max_element(s.contributions.begin(), s.contributions.end()) - s.contributions.begin();
        ++contributors[e.metrics[static_cast<size_t>(top)]];
      } else if (alarm) {
        ++ev.fp;
      } else if (truth) {
        ++ev.fn;
      } else {
        ++ev.tn;
      }
    }
    // Changepoint windows: 60 s from each true changepoint in the scored part, merged where
    // they overlap; each ends on the last row inside it (rows come every 1-2 s).
    std::vector<nab::Window> windows;
    for (size_t i = options.train_rows; i < e.changepoint.size(); ++i) {
      if (!e.changepoint[i]) continue;
      const int64_t start = e.times_us[i];
      size_t j = i;
      while (j + 1 < e.times_us.size() && e.times_us[j + 1] <= start + 60'000'000) ++j;
      if (!windows.empty() && start <= windows.back().end_us) windows.back().end_us = std::max(windows.back().end_us, e.times_us[j]);
      else windows.push_back({start, e.times_us[j]});
    }
    for (size_t p = 0; p < nab::profiles().size(); ++p) {
      FL_TRY(scored, nab::ScoredFile::make(times, predicted, windows, nab::profiles()[p], 0));
      auto c = scored.at(0.5);
      changepoint_raw[p] += c.score;
      if (p == 0) {
        ev.changepoint_windows += scored.scored_windows();
        std::set<int32_t> hit;
        for (const auto& r : scored.rows()) {
          if (r.anomaly >= 0.5 && r.window >= 0) hit.insert(r.window);
          if (r.anomaly >= 0.5 && r.window == -1) ++ev.changepoint_false_positives;
        }
        ev.missed_changepoints += scored.scored_windows() - hit.size();
      }
    }
  }
  ev.nab_standard = nab::normalized(changepoint_raw[0], ev.changepoint_windows, nab::profiles()[0]);
  ev.nab_low_fp = nab::normalized(changepoint_raw[1], ev.changepoint_windows, nab::profiles()[1]);
  ev.nab_low_fn = nab::normalized(changepoint_raw[2], ev.changepoint_windows, nab::profiles()[2]);
  const double tp = static_cast<double>(ev.tp), fp = static_cast<double>(ev.fp), fn = static_cast<double>(ev.fn),
               tn = static_cast<double>(ev.tn);
  ev.f1 = tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
  ev.far = fp + tn > 0 ? 100 * fp / (fp + tn) : 0.0;
  ev.mar = fn + tp > 0 ? 100 * fn / (fn + tp) : 0.0;
  ev.top_contributors.assign(contributors.begin(), contributors.end());
  std::sort(ev.top_contributors.begin(), ev.top_contributors.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return ev;
}

}  // namespace fieldline::analytics::skab
