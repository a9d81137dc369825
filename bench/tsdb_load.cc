// tsdb_load: loads a dataset straight into the engine (no network) and reports the write rate
// and the bytes per sample on disk after the head is persisted. Used by bench/tsdb_vs_influxdb.sh.
//   --input FILE --format nab|skab     real data from ../shared/datasets
//   --synthetic N --points P           N simulated 1 Hz sensors with P samples each
// It also writes the same data as InfluxDB line protocol (--lp-out) so both engines get
// identical input.

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "fieldline/core/time.h"
#include "fieldline/tsdb/db.h"

using namespace fieldline;

struct Row {
  std::string device, metric;
  int64_t ts;
  double value;
};

static int64_t parse_local(const std::string& s) {
  // "YYYY-MM-DD HH:MM:SS" (naive; treated as UTC)
  std::string iso = s;
  if (iso.size() >= 19) iso[10] = 'T';
  auto r = core::parse_rfc3339(iso.substr(0, 19) + "Z");
  return r ? *r : 0;
}

int main(int argc, char** argv) {
  std::string dir, input, format = "nab", lp_out;
  int synthetic = 0, points = 3600;
  size_t batch_size = 5000;
  CLI::App app{"Load a dataset into the Fieldline engine"};
  app.add_option("--dir", dir)->required();
  app.add_option("--input", input);
  app.add_option("--format", format)->check(CLI::IsMember({"nab", "skab"}));
  app.add_option("--synthetic", synthetic);
  app.add_option("--points", points);
  app.add_option("--batch", batch_size);
  app.add_option("--lp-out", lp_out, "Also write the rows as line protocol here");
  CLI11_PARSE(app, argc, argv);

  std::vector<Row> rows;
  if (!input.empty()) {
    std::ifstream in(input);
    std::string line;
    std::getline(in, line);  // header
    std::vector<std::string> header;
    {
      std::stringstream hs(line);
      std::string h;
      while (std::getline(hs, h, format == "skab" ? ';' : ',')) header.push_back(h);
    }
    std::string device = std::filesystem::path(input).stem().string();
    for (auto& c : device) {
      if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
    }
    while (std::getline(in, line)) {
      std::stringstream ls(line);
      std::string cell;
      std::vector<std::string> cells;
      while (std::getline(ls, cell, format == "skab" ? ';' : ',')) cells.push_back(cell);
      if (cells.size() < 2) continue;
      int64_t ts = parse_local(cells[0]);
      for (size_t i = 1; i < cells.size() && i < header.size(); ++i) {
        std::string metric = format == "nab" ? "value" : header[i];
        for (auto& c : metric) {
          if (!isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
        }
        if (format == "skab" && (metric == "anomaly" || metric == "changepoint")) continue;
        rows.push_back({device, metric, ts, std::strtod(cells[i].c_str(), nullptr)});
      }
    }
  } else {
    // Simulated 1 Hz sensors: slow drift plus noise at 0.01 resolution, like a real transmitter.
    std::mt19937 rng(42);
    std::normal_distribution<double> noise(0, 0.05);
    const int64_t t0 = 1'700'000'000LL * core::kNsPerSecond;
    std::vector<double> level(synthetic, 20.0);
    rows.reserve(static_cast<size_t>(synthetic) * points);
    for (int p = 0; p < points; ++p) {
      for (int s = 0; s < synthetic; ++s) {
        level[s] += noise(rng) * 0.1;
        double v = std::round((level[s] + 2 * std::sin(p / 600.0) + noise(rng)) * 100) / 100;
        rows.push_back({"sensor-" + std::to_string(s), "temp", t0 + p * core::kNsPerSecond, v});
      }
    }
  }
  if (!lp_out.empty()) {
    std::ofstream out(lp_out);
    for (const auto& r : rows) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", r.value);
      out << r.metric << ",device=" << r.device << " value=" << buf << " " << r.ts << "\n";
    }
  }
  std::filesystem::remove_all(dir);
  auto env = core::make_posix_env();
  tsdb::DbOptions opts;
  opts.retention_ns = 100LL * 365 * core::kNsPerDay;
  opts.rollup_retention_ns = 100LL * 365 * core::kNsPerDay;
  auto db = tsdb::Db::open(*env, dir, opts, nullptr);
  if (!db) {
    std::fprintf(stderr, "error: %s\n", db.error().message().c_str());
    return 1;
  }
  std::vector<tsdb::SampleIn> batch;
  std::unordered_map<std::string, tsdb::SeriesRef> refs;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < rows.size(); i += batch_size) {
    batch.clear();
    for (size_t j = i; j < std::min(rows.size(), i + batch_size); ++j) {
      const auto& r = rows[j];
      auto key = r.device + "\n" + r.metric;
      auto it = refs.find(key);
      if (it == refs.end()) it = refs.emplace(key, *(*db)->series({r.device, r.metric, {}}, tsdb::ValueType::float64)).first;
      batch.push_back({it->second, r.ts, r.value});
    }
    auto res = (*db)->append(batch);
    if (!res) {
      std::fprintf(stderr, "error: %s\n", res.error().message().c_str());
      return 1;
    }
  }
  (void)(*db)->sync_wal();
  double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (void)(*db)->flush_head();
  (void)(*db)->maintain(env->now_ns());
  auto stats = (*db)->stats();
  db->reset();
  uint64_t bytes = *env->disk_usage(dir);
  std::printf("{\"samples\":%zu,\"series\":%zu,\"write_seconds\":%.3f,\"samples_per_second\":%.0f,\"bytes_on_disk\":%llu,"
              "\"block_bytes\":%llu,\"bytes_per_sample\":%.3f}\n",
              rows.size(), refs.size(), write_s, static_cast<double>(rows.size()) / write_s,
              static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(stats.block_bytes),
              static_cast<double>(stats.block_bytes) / static_cast<double>(rows.size()));
  return 0;
}
