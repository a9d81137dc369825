// NAB's scoring: faithful to the published results (fed the Numenta HTM detector's published
// anomaly scores and thresholds, it gives the published per-file scores and row counts for all
// 24 shared files and the three profiles, and their normalised totals), plus the edge cases
// of the scoring rules on small made-up series.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fieldline/analytics/nab.h"

namespace fieldline::analytics::nab {
namespace {

const std::string kNab = std::string(FIELDLINE_DATASETS) + "/nab";

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string cell;
  while (std::getline(in, cell, ',')) out.push_back(cell);
  return out;
}

// A published detections file: (times, anomaly scores).
std::pair<std::vector<int64_t>, std::vector<double>> read_detections(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::string line;
  std::getline(in, line);
  std::vector<int64_t> times;
  std::vector<double> scores;
  while (std::getline(in, line)) {
    auto cells = split(line);
    auto t = parse_time(cells.at(0));
    EXPECT_TRUE(t) << line;
    times.push_back(t ? *t : 0);
    scores.push_back(std::stod(cells.at(2)));
  }
  return {times, scores};
}

TEST(NabScorer, ReproducesThePublishedPerFileScoresOfTheNumentaDetector) {
  // The benchmark data lives beside the checkout, not in it; a clone without it says so.
  if (!std::filesystem::exists(kNab)) GTEST_SKIP() << "the shared datasets are not at " << kNab;
  auto windows = load_windows(kNab + "/labels/combined_windows.json");
  ASSERT_TRUE(windows) << windows.error().message();
  ASSERT_EQ(windows->size(), 24u);
  std::ifstream tf(kNab + "/results/thresholds.json");
  std::stringstream tt;
  tt << tf.rdbuf();
  auto thresholds = boost::json::parse(tt.str()).at("numenta");
  // Published rows: profile|file -> cells.
  std::map<std::string, std::vector<std::string>> published;
  std::ifstream pf(kNab + "/results/per_file_scores.csv");
  std::string line;
  while (std::getline(pf, line)) {
    auto cells = split(line);
    if (cells.at(0) == "numenta") published[cells.at(1) + "|" + cells.at(2)] = cells;
  }
  ASSERT_EQ(published.size(), 72u);
  std::map<std::string, std::pair<double, size_t>> totals;  // profile -> raw sum, windows
  for (const auto& [file, wins] : *windows) {
    auto slash = file.find('/');
    std::string path = kNab + "/results/detections/numenta/" + file.substr(0, slash) + "/numenta_" + file.substr(slash + 1);
    auto [times, scores] = read_detections(path);
    for (const auto& profile : profiles()) {
      auto scored = ScoredFile::make(times, scores, wins, profile);
      ASSERT_TRUE(scored) << file << ": " << scored.error().message();
      const double threshold = thresholds.at(profile.name).at("threshold").to_number<double>();
      auto c = scored->at(threshold);
      const auto& row = published.at(profile.name + "|" + file);
      EXPECT_NEAR(c.score, std::stod(row.at(4)), 1e-6) << profile.name << " " << file;
      EXPECT_EQ(c.tp, std::stoull(row.at(5))) << profile.name << " " << file;
      EXPECT_EQ(c.tn, std::stoull(row.at(6))) << profile.name << " " << file;
      EXPECT_EQ(c.fp, std::stoull(row.at(7))) << profile.name << " " << file;
      EXPECT_EQ(c.fn, std::stoull(row.at(8))) << profile.name << " " << file;
      totals[profile.name].first += c.score;
      totals[profile.name].second += scored->scored_windows();
    }
  }
  // Normalised over the 24 files: the subset scores the datasets' README derives (2 decimals).
  EXPECT_EQ(totals["standard"].second, 49u);
  EXPECT_NEAR(normalized(totals["standard"].first, 49, profiles()[0]), 66.46, 0.005);
  EXPECT_NEAR(normalized(totals["reward_low_FP_rate"].first, 49, profiles()[1]), 59.38, 0.005);
  EXPECT_NEAR(normalized(totals["reward_low_FN_rate"].first, 49, profiles()[2]), 70.84, 0.005);
}

// 100 rows a minute apart (15 probationary), one window over rows 50..59.
struct Small {
  std::vector<int64_t> times;
  std::vector<Window> windows;
  Small() {
    for (int i = 0; i < 100; ++i) times.push_back(int64_t{1'400'000'000'000'000} + i * 60'000'000LL);
    windows.push_back({times[50], times[59]});
  }
  ScoredFile::Counts score(std::vector<int> detect_rows, const CostProfile& p = profiles()[0]) {
    std::vector<double> scores(times.size(), 0.0);
    for (int r : detect_rows) scores[static_cast<size_t>(r)] = 1.0;
    auto f = ScoredFile::make(times, scores, windows, p);
    EXPECT_TRUE(f);
    return f->at(0.5);
  }
};

TEST(NabScorer, RulesOnASmallSeries) {
  Small s;
  // Never firing: the window costs fnWeight.
  EXPECT_DOUBLE_EQ(s.score({}).score, -1.0);
  EXPECT_DOUBLE_EQ(s.score({}, profiles()[2]).score, -2.0);
  // At the window's left edge: the full tpWeight, so a perfect detector normalises to 100.
  auto perfect = s.score({50});
  EXPECT_NEAR(perfect.score, 1.0, 1e-12);
  EXPECT_NEAR(normalized(perfect.score, 1, profiles()[0]), 100.0, 1e-9);
  EXPECT_NEAR(normalized(-1.0, 1, profiles()[0]), 0.0, 1e-12);
  // Later in the window earns less; only the first detection counts, however many follow.
  auto late = s.score({58});
  EXPECT_GT(late.score, 0.0);
  EXPECT_LT(late.score, perfect.score);
  EXPECT_NEAR(s.score({50, 51, 52, 58}).score, perfect.score, 1e-12);
  EXPECT_EQ(s.score({50, 51, 52, 58}).tp, 4u);
  // Before any window a false positive costs the whole fpWeight; right after one, less.
  EXPECT_NEAR(s.score({20}).score, -1.0 - 0.11, 1e-12);
  EXPECT_NEAR(s.score({20}, profiles()[1]).score, -1.0 - 0.22, 1e-12);
  const double just_after = s.score({61}).score + 1.0;
  EXPECT_LT(just_after, 0.0);
  EXPECT_GT(just_after, -0.11);
  // The probationary period is not scored at all.
  auto early = s.score({5});
  EXPECT_DOUBLE_EQ(early.score, -1.0);
  EXPECT_EQ(early.tp + early.tn + early.fp + early.fn, 85u);
}

TEST(NabScorer, TheCorpusSweepFindsTheBestThreshold) {
  Small s;
  std::vector<double> scores(s.times.size(), 0.1);
  scores[30] = 0.9;  // a false positive scored above the true one
  scores[52] = 0.8;
  scores[70] = 0.3;
  auto f = ScoredFile::make(s.times, scores, s.windows, profiles()[0]);
  ASSERT_TRUE(f);
  auto sweep = best_threshold({&*f});
  // 0.8 catches the window at the cost of one false positive; 0.3 adds another; 0.1 all rows.
  EXPECT_DOUBLE_EQ(sweep.threshold, 0.8);
  EXPECT_NEAR(sweep.raw, f->at(0.8).score, 1e-12);
  EXPECT_GT(sweep.raw, f->at(0.3).score);
  EXPECT_GT(sweep.raw, f->at(1.0).score);
}

TEST(NabScorer, ClearErrors) {
  EXPECT_FALSE(parse_time("2014-13-01 00:00:00"));
  EXPECT_FALSE(parse_time("yesterday"));
  EXPECT_EQ(*parse_time("1970-01-01 00:00:01.5"), 1'500'000);
  Small s;
  std::vector<double> scores(s.times.size(), 0.0);
  auto mismatch = ScoredFile::make(s.times, {0.1}, s.windows, profiles()[0]);
  EXPECT_FALSE(mismatch);
  auto off_grid = ScoredFile::make(s.times, scores, {{s.times[50], s.times[59] + 1}}, profiles()[0]);
  ASSERT_FALSE(off_grid);
  EXPECT_NE(off_grid.error().message().find("no row at the end of window 1"), std::string::npos);
}

}  // namespace
}  // namespace fieldline::analytics::nab

namespace fieldline::analytics::nab {
namespace {

// What `fieldline eval nab` runs: the default detectors over the shared NAB files.
TEST(NabEvaluation, TheDefaultDetectorsBeatNeverFiringOnTheSharedFiles) {
  // The benchmark data lives beside the checkout, not in it; a clone without it says so.
  if (!std::filesystem::exists(kNab)) GTEST_SKIP() << "the shared datasets are not at " << kNab;
  auto ev = evaluate(kNab, [] { return std::make_unique<Ensemble>(); });
  ASSERT_TRUE(ev) << ev.error().message();
  EXPECT_EQ(ev->files.size(), 24u);
  EXPECT_EQ(ev->windows, 49u);
  EXPECT_EQ(ev->rows, 137301u);
  ASSERT_EQ(ev->profiles.size(), 3u);
  for (const auto& p : ev->profiles) {
    EXPECT_GT(p.normalized, 0.0) << p.name << ": no better than a detector that never fires";
    EXPECT_LE(p.normalized, 100.0) << p.name;
    EXPECT_LT(p.threshold, 1.1) << p.name;
  }
  auto missing = evaluate("/nonexistent", [] { return std::make_unique<Ensemble>(); });
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("combined_windows.json"), std::string::npos);
}

}  // namespace
}  // namespace fieldline::analytics::nab
