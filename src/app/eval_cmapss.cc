// fieldline eval cmapss: remaining useful life on NASA C-MAPSS through the whole platform. A
// server of this binary starts on a data directory of its own; each engine unit becomes a
// device that posts its cycles as telemetry (a cycle a minute); the feature view is applied;
// the model is trained through the registry from the stored samples and promoted; the test
// units post their cycles and the shards' serving predicts each one at its last cycle. The
// training set built from the store is checked against the one built in memory from the
// files (the same SHA-256: nothing is lost or changed on the way).
#include "eval_cmapss.h"

#include <boost/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "embedded.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/json.h"
#include "fieldline/core/time.h"
#include "fieldline/ml/cmapss.h"

namespace fieldline::app {

namespace json = boost::json;
namespace cmapss = ml::cmapss;

namespace {

constexpr const char* kModel = "rul_cycles";

// A device's cycles as one telemetry array: the sensors and the cycle at each cycle's time,
// and the label (when given) 1 ms later, so a row's features read its cycle.
std::string telemetry(const ml::DeviceData& d, const std::vector<ml::Label>* labels) {
  json::array out;
  const auto& cycles = d.metrics.back().second;  // "cycle" comes last
  for (size_t i = 0; i < cycles.size(); ++i) {
    json::object values;
    for (const auto& [metric, samples] : d.metrics) {
      // A value of a regime the training units never ran in is missing: not sent.
      if (std::isfinite(samples[i].value)) values[metric] = samples[i].value;
    }
    out.push_back(json::object{{"ts", cycles[i].ts_ns / 1'000'000}, {"values", std::move(values)}});
  }
  if (labels) {
    for (const auto& l : *labels) out.push_back(json::object{{"ts", l.ts_ns / 1'000'000}, {"values", json::object{{"rul", l.value}}}});
  }
  return core::to_json(out);
}

class Progress {
 public:
  explicit Progress(bool on) : on_(on) {}
  void operator()(const std::string& step) const {
    if (on_) std::fprintf(stderr, "%s\n", step.c_str());
  }

 private:
  bool on_;
};

Result<cmapss::Evaluation> run_through_platform(const cmapss::Prepared& prepared, const cmapss::Options& options, const Progress& progress,
                                                std::string& platform_set_sha256) {
  cmapss::Evaluation ev = prepared.summary;
  // One block for the whole run (the units' cycles share a time base), predictions at every
  // cycle, no decision records.
  FL_TRY(server, EmbeddedServer::start({"", {"tsdb.block_range=7d", "ml.serving_interval=0s", "ml.decision_sample=0"}}));
  auto fail = [&server](const Error& e) { return core::make_error(core::Errc::io_error, e.message() + "\nserver log:\n" + server->log_tail()); };
  progress("server at " + server->url());
  std::vector<std::string> tokens;
  for (const auto* group : {&prepared.train, &prepared.test}) {
    for (const auto& d : *group) {
      auto added = server->call("POST", "/api/v1/devices", core::to_json(json::object{{"id", d.device}, {"profile", "turbofan"}}));
      if (!added) return fail(added.error());
      tokens.emplace_back(json::parse(*added).at("token").as_string());
    }
  }
  if (auto st = server->call("POST", "/api/v1/features/views", ev.view_document, "text/plain"); !st) return fail(st.error());
  progress("registered " + std::to_string(tokens.size()) + " devices and the feature view; sending the training units' cycles");
  for (size_t i = 0; i < prepared.train.size(); ++i) {
    const auto& d = prepared.train[i];
    auto sent = server->call("POST", "/api/v1/devices/" + d.device + "/telemetry", telemetry(d, &prepared.train_labels[i]),
                             "application/json", tokens[i]);
    if (!sent) return fail(sent.error());
  }
  progress("training " + std::string(kModel) + " through the registry");
  auto trained = server->call("POST", std::string("/api/v1/models/") + kModel + "/train",
                              core::to_json(json::object{{"profile", "turbofan"}, {"label", "rul"}, {"hold_out", false}}));
  if (!trained) return fail(trained.error());
  const auto model = json::parse(*trained);
  const int64_t version = model.at("version").as_int64();
  platform_set_sha256 = std::string(model.at("training_set_sha256").as_string());
  ev.training_set_sha256 = platform_set_sha256;
  ev.train_rows = static_cast<size_t>(model.at("metrics").at("rows").to_number<double>());
  ev.train_seconds = model.at("metrics").at("training_seconds").to_number<double>();
  auto promoted = server->call("POST", std::string("/api/v1/models/") + kModel + "/versions/" + std::to_string(version) + "/promote",
                               R"({"stage": "production", "reason": "fieldline eval cmapss"})");
  if (!promoted) return fail(promoted.error());
  progress("version " + std::to_string(version) + " in production; sending the test units' cycles");
  for (size_t i = 0; i < prepared.test.size(); ++i) {
    const auto& d = prepared.test[i];
    auto sent = server->call("POST", "/api/v1/devices/" + d.device + "/telemetry", telemetry(d, nullptr), "application/json",
                             tokens[prepared.train.size() + i]);
    if (!sent) return fail(sent.error());
  }
  // Each test unit's prediction at its last cycle, as serving made it in the shard.
  std::vector<double> predicted;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (size_t i = 0; i < prepared.test.size(); ++i) {
    const auto& d = prepared.test[i];
    const std::string last = core::format_rfc3339(d.metrics.back().second.back().ts_ns);
    for (;;) {
      auto answer = server->call("GET", "/api/v1/devices/" + d.device + "/predictions");
      if (!answer) return fail(answer.error());
      const auto predictions = json::parse(*answer).at("predictions").as_array();
      if (!predictions.empty() && predictions[0].at("as_of").as_string() == last && predictions[0].at("version").as_int64() == version) {
        predicted.push_back(predictions[0].at("value").to_number<double>());
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return fail(core::make_error(core::Errc::io_error, d.device + " has no prediction at its last cycle (" + last + ") after 60 s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ev.actual.push_back(prepared.test_labels[i].value);
  }
  cmapss::score(ev, predicted, options.cap);
  return ev;
}

}  // namespace

int eval_cmapss(const std::string& dir, const std::string& subset, const std::string& format) {
  cmapss::Options options;
  options.subset = subset;
  auto prepared = cmapss::prepare(dir, options);
  if (!prepared) {
    std::fprintf(stderr, "error: %s\n", prepared.error().message().c_str());
    return 2;
  }
  // The same training set built in memory from the files, to check the platform's against.
  auto offline = ml::build_training_set(prepared->view, 1, prepared->train, prepared->train_labels);
  if (!offline) {
    std::fprintf(stderr, "error: %s\n", offline.error().message().c_str());
    return 2;
  }
  std::string platform_sha256;
  const Progress progress(format != "json" && isatty(STDERR_FILENO));
  auto ev = run_through_platform(*prepared, options, progress, platform_sha256);
  if (!ev) {
    std::fprintf(stderr, "error: %s\n", ev.error().message().c_str());
    return 1;
  }
  const bool same_set = platform_sha256 == offline->sha256;
  if (format == "json") {
    json::object o{{"subset", ev->subset}, {"rmse", ev->rmse}, {"score", ev->score}, {"cap", options.cap},
                   {"train_units", ev->train_units}, {"test_units", ev->test_units}, {"train_rows", ev->train_rows},
                   {"regimes", ev->regimes}, {"features", ev->features.size()}, {"train_seconds", ev->train_seconds},
                   {"training_set_sha256", ev->training_set_sha256}, {"training_set_matches_files", same_set}};
    std::printf("%s\n", core::to_json(o).c_str());
    return same_set ? 0 : 1;
  }
  std::printf("C-MAPSS %s through the platform: %zu training units (%zu rows, %zu regime(s)), %zu test units; %zu features from %zu sensors\n",
              ev->subset.c_str(), ev->train_units, ev->train_rows, ev->regimes, ev->test_units, ev->features.size(), ev->sensors.size());
  std::printf("training set %s (%s the one built in memory from the files)\n", ev->training_set_sha256.substr(0, 16).c_str(),
              same_set ? "the same as" : "NOT the same as");
  std::printf("XGBoost, %d trees, trained through the registry in %.1f s; each test unit predicted by serving at its last cycle\n\n",
              options.model.rounds, ev->train_seconds);
  std::printf("%-40s %s\n", "RMSE / score", "method");
  char ours[64];
  std::snprintf(ours, sizeof ours, "%.2f / %.1f", ev->rmse, ev->score);
  std::printf("%-40s fieldline (this run; RUL capped at %.0f cycles)\n", ours, options.cap);
  // The published tables of the folder's README: rows whose first column after the method
  // reads "RMSE / Score" for the subsets in order FD001..FD004.
  std::ifstream readme(dir + "/README.md");
  const int column = subset.size() == 5 ? subset[4] - '0' : 1;
  for (std::string line; std::getline(readme, line);) {
    if (line.rfind("| ", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream in(line);
    for (std::string cell; std::getline(in, cell, '|');) cells.push_back(cell);
    if (cells.size() < 6 || column < 1 || static_cast<size_t>(column + 1) >= cells.size()) continue;
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" *"));
      s.erase(s.find_last_not_of(" *") + 1);
      return s;
    };
    const std::string method = trim(cells[1]), result = trim(cells[static_cast<size_t>(column + 1)]);
    if (result.find(" / ") == std::string::npos || !std::isdigit(static_cast<unsigned char>(result[0]))) continue;
    std::printf("%-40s %s\n", result.c_str(), (method + " (published)").c_str());
  }
  return same_set ? 0 : 1;
}

}  // namespace fieldline::app
