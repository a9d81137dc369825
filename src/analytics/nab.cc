#include "fieldline/analytics/nab.h"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"

namespace fieldline::analytics::nab {

namespace {

// 2·sigmoid(−5x) − 1: +0.987 at a window's left edge (x = −1), 0 at its right edge, −1 from
// three widths past it on.
double scaled_sigmoid(double x) {
  if (x >= 3.0) return -1.0;
  return 2.0 / (1.0 + std::exp(5.0 * x)) - 1.0;
}

Error bad(const std::string& what) { return core::make_error(core::Errc::invalid_argument, what); }

}  // namespace

const std::vector<CostProfile>& profiles() {
  static const std::vector<CostProfile> all{{"standard", 1.0, 0.11, 1.0},
                                            {"reward_low_FP_rate", 1.0, 0.22, 1.0},
                                            {"reward_low_FN_rate", 1.0, 0.11, 2.0}};
  return all;
}

Result<int64_t> parse_time(std::string_view t) {
  auto digits = [&](size_t at, size_t n, int64_t& out) {
    if (at + n > t.size()) return false;
    out = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int64_t y, mo, d, h, mi, s, frac = 0;
  if (t.size() < 19 || t[4] != '-' || t[7] != '-' || (t[10] != ' ' && t[10] != 'T') || t[13] != ':' || t[16] != ':' ||
      !digits(0, 4, y) || !digits(5, 2, mo) || !digits(8, 2, d) || !digits(11, 2, h) || !digits(14, 2, mi) ||
      !digits(17, 2, s) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return bad("'" + std::string(t.substr(0, 40)) + "' is not a time like 2014-02-19 10:50:00");
  }
  if (t.size() > 19) {
    const size_t n = t.size() - 20;
    if (t[19] != '.' || n == 0 || n > 6 || !digits(20, n, frac)) return bad("'" + std::string(t.substr(0, 40)) + "': bad fraction of a second");
    for (size_t i = n; i < 6; ++i) frac *= 10;
  }
  const int64_t days = core::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 24 + h) * 60 + mi) * 60'000'000 + s * 1'000'000 + frac;
}

namespace {
Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::make_error(core::Errc::not_found, "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

Result<std::map<std::string, std::vector<Window>>> load_windows(const std::string& path) {
  FL_TRY(text, read_text(path));
  return parse_windows(text, path);
}

Result<std::map<std::string, std::vector<Window>>> parse_windows(std::string_view json, const std::string& path) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(json, ec);
  if (ec || !doc.is_object()) return bad(path + ": not a JSON object of file -> windows");
  std::map<std::string, std::vector<Window>> out;
  for (const auto& [file, list] : doc.as_object()) {
    const std::string where = path + ": " + std::string(file);
    if (!list.is_array()) return bad(where + ": expected a list of [start, end] pairs");
    auto& windows = out[std::string(file)];
    for (const auto& pair : list.as_array()) {
      if (!pair.is_array() || pair.as_array().size() != 2 || !pair.as_array()[0].is_string() || !pair.as_array()[1].is_string()) {
        return bad(where + ": expected [start, end] time strings");
      }
      FL_TRY(start, parse_time(pair.as_array()[0].as_string()));
      FL_TRY(end, parse_time(pair.as_array()[1].as_string()));
      if (end < start) return bad(where + ": a window ends before it starts");
      windows.push_back({start, end});
    }
  }
  return out;
}

Result<Series> parse_series(std::string_view csv, const std::string& path) {
  Series out;
  size_t row = 0;
  while (!csv.empty()) {
    const size_t eol = csv.find('\n');
    std::string_view line = csv.substr(0, eol);
    csv = eol == std::string_view::npos ? std::string_view{} : csv.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (++row == 1) {
      if (!line.starts_with("timestamp,value")) return bad(path + ": expected the header timestamp,value");
      continue;
    }
    if (line.empty()) continue;
    const size_t comma = line.find(',');
    if (comma == std::string_view::npos) return bad(path + ":" + std::to_string(row) + ": expected timestamp,value");
    FL_TRY(t, parse_time(line.substr(0, comma)));
    const std::string cell(line.substr(comma + 1));
    char* end = nullptr;
    const double v = std::strtod(cell.c_str(), &end);
    if (end == cell.c_str()) return bad(path + ":" + std::to_string(row) + ": '" + cell.substr(0, 40) + "' is not a number");
    out.times_us.push_back(t);
    out.values.push_back(v);
  }
  if (row == 0) return bad(path + ": empty");
  return out;
}

Result<ScoredFile> ScoredFile::make(std::vector<int64_t> times, std::vector<double> scores, const std::vector<Window>& windows,
                                    const CostProfile& profile, std::optional<size_t> probation_rows) {
  if (times.size() != scores.size()) return bad("one anomaly score per row, please");
  ScoredFile f;
  f.fn_weight_ = profile.fn_weight;
  const double probation = probation_rows ? static_cast<double>(*probation_rows)
                                          : std::min(std::floor(0.15 * static_cast<double>(times.size())), 0.15 * 5000);
  const double max_tp = scaled_sigmoid(-1.0);
  auto first_row_at = [&](int64_t t) -> int64_t {
    auto it = std::find(times.begin(), times.end(), t);
    return it == times.end() ? -1 : it - times.begin();
  };
  size_t next = 0;           // the next window to enter
  int32_t current = -1;      // the window the row is in
  int64_t right = 0, width = 0;
  int64_t previous_right = -1, previous_width = 0;
  std::vector<char> window_scored(windows.size(), 0);
  f.rows_.reserve(times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    if (current < 0 && next < windows.size() && times[i] == windows[next].start_us) {
      current = static_cast<int32_t>(next++);
      const int64_t left = first_row_at(windows[current].start_us);
      right = first_row_at(windows[current].end_us);
      if (right < 0) return bad("no row at the end of window " + std::to_string(current + 1));
      width = right - left + 1;
    }
    Row row;
    row.anomaly = scores[i];
    const auto at = static_cast<int64_t>(i);
    if (current >= 0) {
      const double position = -static_cast<double>(right - at + 1) / static_cast<double>(width);
      row.sweep = scaled_sigmoid(position) * profile.tp_weight / max_tp;
      row.window = current;
    } else {
      const double past = previous_right < 0 ? 3.0
                                             : static_cast<double>(std::llabs(previous_right - at)) /
                                                   static_cast<double>(previous_width - 1);
      row.sweep = scaled_sigmoid(past) * profile.fp_weight;
    }
    if (static_cast<double>(i) < probation) {
      row.window = -2;
    } else if (row.window >= 0) {
      window_scored[static_cast<size_t>(row.window)] = 1;
    }
    f.rows_.push_back(row);
    if (current >= 0 && times[i] == windows[static_cast<size_t>(current)].end_us) {
      previous_right = at;
      previous_width = width;
      current = -1;
    }
  }
  f.window_count_ = static_cast<size_t>(std::count(window_scored.begin(), window_scored.end(), 1));
  return f;
}

ScoredFile::Counts ScoredFile::at(double threshold) const {
  Counts c;
  std::map<int32_t, double> best;  // window -> its first detection's (the highest) sweep score
  for (const auto& r : rows_) {
    if (r.window >= 0) best.try_emplace(r.window, -fn_weight_);
  }
  for (const auto& r : rows_) {
    if (r.window == -2) continue;
    const bool detected = r.anomaly >= threshold;
    if (r.window >= 0) {
      if (detected) {
        ++c.tp;
        best[r.window] = std::max(best[r.window], r.sweep);
      } else {
        ++c.fn;
      }
    } else if (detected) {
      ++c.fp;
      c.score += r.sweep;
    } else {
      ++c.tn;
    }
  }
  for (const auto& [w, s] : best) c.score += s;
  return c;
}

double normalized(double raw, size_t windows, const CostProfile& profile) {
  const double null_score = -profile.fn_weight * static_cast<double>(windows);
  const double perfect = profile.tp_weight * static_cast<double>(windows);
  return perfect == null_score ? 0.0 : 100.0 * (raw - null_score) / (perfect - null_score);
}

Sweep best_threshold(const std::vector<const ScoredFile*>& files) {
  struct Point {
    double anomaly, sweep;
    size_t window;  // into `parts`; SIZE_MAX outside windows
  };
  std::vector<Point> points;
  std::vector<double> parts;  // each scored window's part of the total
  double total = 0;
  for (const auto* f : files) {
    std::map<int32_t, size_t> slot;
    for (const auto& r : f->rows()) {
      if (r.window >= 0 && !slot.count(r.window)) {
        slot[r.window] = parts.size();
        parts.push_back(-f->fn_weight());
        total -= f->fn_weight();
      }
    }
    for (const auto& r : f->rows()) {
      if (r.window == -2) continue;
      points.push_back({r.anomaly, r.sweep, r.window >= 0 ? slot[r.window] : SIZE_MAX});
    }
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.anomaly > b.anomaly; });
  Sweep best{1.1, total};
  for (size_t i = 0; i < points.size();) {
    const double threshold = points[i].anomaly;
    for (; i < points.size() && points[i].anomaly == threshold; ++i) {
      const auto& p = points[i];
      if (p.window == SIZE_MAX) {
        total += p.sweep;
      } else if (p.sweep > parts[p.window]) {
        total += p.sweep - parts[p.window];
        parts[p.window] = p.sweep;
      }
    }
    if (total > best.raw) best = {threshold, total};
  }
  return best;
}

Result<Evaluation> evaluate(const std::string& dir, const std::function<std::unique_ptr<Detector>()>& make) {
  FL_TRY(windows, load_windows(dir + "/labels/combined_windows.json"));
  Evaluation ev;
  std::vector<std::vector<ScoredFile>> scored(profiles().size());
  for (const auto& [name, wins] : windows) {
    const std::string path = dir + "/data/" + name;
    auto text = read_text(path);
    if (!text) return core::make_error(core::Errc::not_found, "cannot read " + path + " (listed in the labels)");
    FL_TRY(series, parse_series(*text, path));
    auto& times = series.times_us;
    auto& values = series.values;
    auto detector = make();
    std::vector<double> scores(values.size());
    const auto started = std::chrono::steady_clock::now();
    for (size_t i = 0; i < values.size(); ++i) scores[i] = detector->update(times[i] * 1000, values[i]).score;
    ev.detect_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    Evaluation::File file{name, values.size(), 0, {}};
    for (size_t p = 0; p < profiles().size(); ++p) {
      FL_TRY(f, ScoredFile::make(times, scores, wins, profiles()[p]));
      file.windows = f.scored_windows();
      scored[p].push_back(std::move(f));
    }
    ev.windows += file.windows;
    ev.rows += file.rows;
    ev.files.push_back(std::move(file));
  }
  for (size_t p = 0; p < profiles().size(); ++p) {
    std::vector<const ScoredFile*> all;
    for (const auto& f : scored[p]) all.push_back(&f);
    Sweep best = best_threshold(all);
    ev.profiles.push_back({profiles()[p].name, best.threshold, best.raw, normalized(best.raw, ev.windows, profiles()[p])});
    for (size_t i = 0; i < all.size(); ++i) ev.files[i].raw.push_back(all[i]->at(best.threshold).score);
  }
  return ev;
}

}  // namespace fieldline::analytics::nab
