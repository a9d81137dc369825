// Reprocessing end to end: a device's messages stored under a wrong decoder setting, the
// contract fixed, `fieldline reprocess` run over part of the time — values replaced exactly
// once in blocks and head, the rest and other devices untouched, the same after a re-run and
// after kill -9; refused (nothing changed) when the contract would now reject the messages.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "contract_fixture.h"
#include "fieldline/core/time.h"

namespace fieldline::itest {
namespace {

using namespace std::chrono_literals;

// A vendor layout read by the mapping decoder; the first version forgot that t_raw is in
// tenths of a degree.
std::string meter_contract(const char* scale, const char* extra = "") {
  return std::string(R"(profile = "pump"
required_tags = ["site"]

[metrics.temperature]
type = "float"
unit = "Cel"
min = -50
max = 150
required = true
)") + extra + R"(
[decoder]
format = "mapping"
time = "/time"
[decoder.fields.temperature]
pointer = "/t_raw"
scale = )" + scale + "\n";
}

class Reprocess : public ContractFixture {
 protected:
  void SetUp() override {
    // Hour-long blocks: four hours of data leave two of them cut while the rest is in the head.
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", std::vector<std::string>{"tsdb.block_range=1h"});
    server_->start();
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    t0_ms_ = (now_ms - 6 * 3'600'000) / 3'600'000 * 3'600'000;
  }
  // One message a minute for four hours, t_raw = 300 + minute.
  void feed(const std::string& device, const std::string& token) {
    std::string path = dir_.path() + "/" + device + ".txt";
    {
      std::ofstream out(path);
      for (int i = 0; i < 240; ++i) out << "{\"time\": " << t0_ms_ + i * 60'000LL << ", \"t_raw\": " << 300 + i << "}\n";
    }
    auto r = run("mosquitto_pub " + server_->mosquitto_args(device, token) + " -q 1 -i " + device + " -t devices/" + device +
                 "/telemetry -l < " + path);
    ASSERT_EQ(r.status, 0) << r.output;
  }
  // The device's temperatures as (minute, value, flagged), all of them.
  std::vector<std::tuple<int, double, bool>> temperatures(const std::string& device) {
    std::vector<std::tuple<int, double, bool>> out;
    for (const auto& p : server_->query(device, "temperature")) {
      const auto& o = p.as_object();
      auto ts = core::parse_rfc3339(std::string(o.at("ts").as_string()));
      EXPECT_TRUE(ts);
      const int64_t ms = ts ? *ts / 1'000'000 : 0;
      out.emplace_back(static_cast<int>((ms - t0_ms_) / 60'000), o.at("value").to_number<double>(), o.contains("quality"));
    }
    return out;
  }
  // Minutes [30, 210) read with the fixed scale, the others as first stored; each minute once.
  void expect_fixed_in_range_only(const std::string& device) {
    auto temps = temperatures(device);
    ASSERT_EQ(temps.size(), 240u);
    for (int i = 0; i < 240; ++i) {
      auto [minute, value, flagged] = temps[static_cast<size_t>(i)];
      ASSERT_EQ(minute, i);
      const bool in_range = i >= 30 && i < 210;
      EXPECT_NEAR(value, in_range ? (300 + i) * 0.1 : 300.0 + i, 1e-9) << "minute " << i;
      EXPECT_EQ(flagged, !in_range) << "minute " << i << ": out of range only with the wrong scale";
    }
  }
  std::string range() const {
    return "--from " + std::to_string(t0_ms_ + 30 * 60'000LL) + " --to " + std::to_string(t0_ms_ + 210 * 60'000LL);
  }
  int64_t t0_ms_ = 0;
};

}  // namespace

TEST_F(Reprocess, AContractFixReplacesTheRangeExactlyOnceInBlocksAndHeadAndSurvivesKill9) {
  apply(meter_contract("1"));
  std::string token = add_pump("r1", "north"), other = add_pump("r2", "north");
  feed("r1", token);
  feed("r2", other);
  ASSERT_EQ(temperatures("r1").size(), 240u);
  // Wait for the older hours to be cut into blocks.
  for (int i = 0; i < 100 && server_->metric("fieldline_tsdb_blocks") < 2; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_GE(server_->metric("fieldline_tsdb_blocks"), 2);

  apply(meter_contract("0.1"));
  // A dry run says what would change and changes nothing.
  auto dry = run(cli("reprocess --device r1 " + range() + " --dry-run --format json"));
  ASSERT_EQ(dry.status, 0) << dry.output;
  auto d = json_of(dry.output);
  EXPECT_FALSE(d.at("applied").as_bool());
  EXPECT_EQ(d.at("messages").as_int64(), 180) << dry.output;
  EXPECT_EQ(d.at("samples_before").as_int64(), 180) << dry.output;
  EXPECT_EQ(d.at("samples_after").as_int64(), 180) << dry.output;
  EXPECT_EQ(d.at("contract_version").as_int64(), 2);
  EXPECT_EQ(std::get<1>(temperatures("r1")[100]), 400.0);

  auto done = run(cli("reprocess --device r1 " + range() + " --reason 't_raw is in tenths' --format json"));
  ASSERT_EQ(done.status, 0) << done.output;
  auto r = json_of(done.output);
  EXPECT_TRUE(r.at("applied").as_bool()) << done.output;
  EXPECT_EQ(r.at("samples_before").as_int64(), 180) << done.output;
  EXPECT_EQ(r.at("samples_after").as_int64(), 180) << done.output;
  EXPECT_GE(r.at("blocks_rewritten").as_int64(), 1) << "the range reaches persisted blocks";
  expect_fixed_in_range_only("r1");
  ASSERT_EQ(temperatures("r2").size(), 240u);
  for (const auto& [minute, value, flagged] : temperatures("r2")) EXPECT_EQ(value, 300.0 + minute) << "another device is untouched";
  // The replaced values are tagged with the contract version that derived them.
  auto count_of = [&](const char* version) {
    auto [code, body] = server_->http("GET", "/api/v1/query?selector=temperature%7Bdevice%3D%22r1%22,contract_version%3D%22" +
                                                 std::string(version) + "%22%7D&from=" + std::to_string(t0_ms_) + "&to=" +
                                                 std::to_string(t0_ms_ + 240 * 60'000LL) + "&agg=count");
    EXPECT_EQ(code, 200) << body;
    double n = 0;
    const auto doc = json_of(body);
    for (const auto& series : doc.at("series").as_array()) {
      for (const auto& p : series.at("points").as_array()) n += p.at("value").to_number<double>();
    }
    return n;
  };
  EXPECT_EQ(count_of("2"), 180);
  EXPECT_EQ(count_of("1"), 60);

  // Lineage says which values were derived again, by which job and contract version.
  auto traced = run(cli("lineage --device r1 --metric temperature --at " + std::to_string(t0_ms_ + 100 * 60'000LL) + " --format json"));
  ASSERT_EQ(traced.status, 0) << traced.output;
  auto message = json_of(traced.output).at("messages").at(0);
  EXPECT_EQ(message.at("contract_version").as_int64(), 1) << "as first decoded";
  EXPECT_EQ(message.at("series_tags").at("contract_version").as_string(), "2") << traced.output;
  EXPECT_EQ(message.at("reprocessed").at(0).at("job").as_string(), r.at("job").as_string()) << traced.output;
  auto untouched = run(cli("lineage --device r1 --metric temperature --at " + std::to_string(t0_ms_ + 10 * 60'000LL) + " --format json"));
  EXPECT_FALSE(json_of(untouched.output).at("messages").at(0).as_object().contains("reprocessed")) << untouched.output;

  // Again: the same data, nothing doubled.
  auto again = run(cli("reprocess --device r1 " + range() + " --format json"));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_EQ(json_of(again.output).at("samples_before").as_int64(), 180);
  expect_fixed_in_range_only("r1");
  server_->kill9();
  server_->start();
  expect_fixed_in_range_only("r1");

  // Audited with who, why and what it did.
  auto audit = run(cli("audit --format json"));
  ASSERT_EQ(audit.status, 0) << audit.output;
  EXPECT_NE(audit.output.find("reprocess.started"), std::string::npos);
  EXPECT_NE(audit.output.find("reprocess.done"), std::string::npos);
  EXPECT_NE(audit.output.find("t_raw is in tenths"), std::string::npos);

  // A contract the messages no longer meet: refused, nothing changes.
  apply(meter_contract("0.1", "\n[metrics.pressure]\ntype = \"float\"\nunit = \"bar\"\nrequired = true\n"),
        " --force --reason 'pressure sensor fitted'");
  auto refused = run(cli("reprocess --device r1 " + range()));
  EXPECT_EQ(refused.status, 1) << refused.output;
  EXPECT_NE(refused.output.find("would now be rejected"), std::string::npos) << refused.output;
  expect_fixed_in_range_only("r1");
}

TEST_F(Reprocess, AJobAStopInterruptedIsRunAgainAtStart) {
  apply(meter_contract("1"));
  std::string token = add_pump("r4", "east");
  feed("r4", token);
  apply(meter_contract("0.1"));
  // What kill -9 in the middle of a job leaves: its start in the audit log, no end.
  ASSERT_EQ(server_->terminate().first, 0);
  const std::string detail = "{\"job\": \"rp-interrupted\", \"from_ns\": " + std::to_string((t0_ms_ + 30 * 60'000LL) * 1'000'000) +
                             ", \"to_ns\": " + std::to_string((t0_ms_ + 210 * 60'000LL) * 1'000'000) +
                             ", \"quarantine_rejected\": false, \"force\": false}";
  const std::string sql = dir_.path() + "/interrupted.sql";
  std::ofstream(sql) << "INSERT INTO audit_log (at_ns, actor, action, subject, detail) VALUES (1, 'admin', 'reprocess.started', "
                        "'device:r4', '" << detail << "');\n";
  auto inserted = run("sqlite3 " + server_->data_dir() + "/registry.db < " + sql);
  ASSERT_EQ(inserted.status, 0) << inserted.output;
  server_->start();
  bool done = false;
  for (int i = 0; i < 100 && !done; ++i) {
    auto audit = run(cli("audit --format json"));
    done = audit.output.find("reprocess.done") != std::string::npos && audit.output.find("rp-interrupted") != std::string::npos;
    if (!done) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(done) << server_->log();
  expect_fixed_in_range_only("r4");
  // Once done it is not run again at the next start.
  server_->kill9();
  server_->start();
  std::this_thread::sleep_for(500ms);
  auto audit = run(cli("audit --format json --limit 500"));
  size_t runs = 0;
  for (size_t at = 0; (at = audit.output.find("reprocess.done", at)) != std::string::npos; ++at) ++runs;
  EXPECT_EQ(runs, 1u) << audit.output;
  expect_fixed_in_range_only("r4");
}

TEST_F(Reprocess, RefusesUnknownDevicesBackwardRangesAndDeviceTokens) {
  apply(meter_contract("1"));
  std::string token = add_pump("r3", "south");
  auto no_device = run(cli("reprocess --device nobody --from -1h --to now"));
  EXPECT_EQ(no_device.status, 5) << no_device.output;
  auto backwards = run(cli("reprocess --device r3 --from now --to -1h"));
  EXPECT_NE(backwards.status, 0);
  EXPECT_NE(backwards.output.find("before"), std::string::npos) << backwards.output;
  auto [code, body] = server_->http("POST", "/api/v1/reprocess", R"({"device": "r3", "from": "-1h", "to": "now"})", token);
  EXPECT_EQ(code, 403) << "a device token may not reprocess: " << body;
}

}  // namespace fieldline::itest
